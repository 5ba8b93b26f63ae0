"""Role-based permissions for people using the API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

if TYPE_CHECKING:
    from .models import User


class HasRole(BasePermission):
    """Allow authenticated users whose role is one of ``roles``."""

    roles: tuple[str, ...] = ()
    message = "Your role does not allow this."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and getattr(user, "role", None) in self.roles)


def role_permission(*roles: str) -> type[HasRole]:
    return type(f"HasRole_{'_'.join(roles)}", (HasRole,), {"roles": tuple(roles)})


def api_user(request: Request) -> User:
    """The signed-in user of a request that a role permission (or IsAuthenticated) let through."""
    return cast("User", request.user)
