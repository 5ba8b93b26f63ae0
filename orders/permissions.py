"""Role-based permissions for people using the API."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request


class HasRole(BasePermission):
    """Allow authenticated users whose role is one of ``roles``."""

    roles: tuple[str, ...] = ()
    message = "Your role does not allow this."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and getattr(user, "role", None) in self.roles)


def role_permission(*roles: str) -> type[HasRole]:
    return type(f"HasRole_{'_'.join(roles)}", (HasRole,), {"roles": tuple(roles)})
