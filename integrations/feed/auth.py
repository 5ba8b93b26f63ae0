"""``Authorization: Api-Key <key>`` for a core enterprise's sales system."""

from __future__ import annotations

from dataclasses import dataclass

from django.views.decorators.debug import sensitive_variables
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from orders.models import CoreEnterprise, PartyStatus
from orders.services.parties import enterprise_by_api_key
from scf.errors import Unauthorized

from .text import storable

KEYWORD = "Api-Key"


@dataclass(frozen=True)
class IntegrationPrincipal:
    """The caller of an integration endpoint: a core enterprise's system, not a person."""

    enterprise: CoreEnterprise
    is_authenticated: bool = True
    is_anonymous: bool = False
    role: str = "integration"

    @property
    def pk(self) -> None:
        return None

    def __str__(self) -> str:
        return f"integration:{self.enterprise.code}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    @sensitive_variables("header", "key")
    def authenticate(self, request: Request) -> tuple[IntegrationPrincipal, CoreEnterprise] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header.startswith(KEYWORD + " "):
            return None
        key = header[len(KEYWORD) + 1 :].strip()
        if not storable(key):  # a NUL would reach the database in the key's prefix
            raise exceptions.AuthenticationFailed("Invalid integration API key.")
        try:
            enterprise = enterprise_by_api_key(key)
        except Unauthorized:
            raise exceptions.AuthenticationFailed("Invalid integration API key.") from None
        if enterprise.status != PartyStatus.ACTIVE:
            raise exceptions.AuthenticationFailed("This enterprise is not active.")
        return IntegrationPrincipal(enterprise), enterprise

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD
