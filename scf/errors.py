"""Domain errors: every service raises an ``ApplicationError`` subclass with a stable ``code``.

The API layer maps them to ``{"code", "detail", "fields"}`` with the error's HTTP status.
"""

from typing import Any


class ApplicationError(Exception):
    code = "application_error"
    status_code = 400

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        fields: dict[str, list[str]] | None = None,
        status_code: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.fields = fields or {}
        self.extra = extra or {}


class ValidationFailed(ApplicationError):
    code = "validation_error"
    status_code = 422


class NotFound(ApplicationError):
    code = "not_found"
    status_code = 404


class PermissionDenied(ApplicationError):
    code = "permission_denied"
    status_code = 403


class Conflict(ApplicationError):
    code = "conflict"
    status_code = 409


class Unauthorized(ApplicationError):
    code = "unauthorized"
    status_code = 401
