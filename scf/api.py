"""Shared API plumbing: pagination and the one exception handler behind the error shape.

Every error leaves the API as ``{"code": ..., "detail": ..., "fields": {...}}``.

A database that cannot be reached or refuses transiently (down, restarting, failing over, a
deadlock victim or a lock timeout: ``OperationalError`` or ``InterfaceError``) is a 503
``service_unavailable`` with ``Retry-After``, not a 500: the request's transaction was rolled
back, so the client may safely retry (with the same Idempotency-Key, where the endpoint takes
one). Other database errors (integrity, data) are bugs and stay 500s.
"""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from scf.errors import ApplicationError
from scf.throttling import RateLimited

logger = logging.getLogger(__name__)

DATABASE_RETRY_AFTER_SECONDS = 5


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


def error_response(
    code: str, detail: str, http_status: int, fields: dict[str, Any] | None = None
) -> Response:
    return Response({"code": code, "detail": detail, "fields": fields or {}}, status=http_status)


def _flatten(detail: Any) -> dict[str, Any]:
    if isinstance(detail, dict):
        return {str(k): v for k, v in detail.items()}
    if isinstance(detail, list):
        return {"non_field_errors": detail}
    return {"non_field_errors": [detail]}


def _database_unavailable(exc: Exception) -> Response:
    logger.warning("database unavailable: %s: %s", type(exc).__name__, exc)
    response = error_response(
        "service_unavailable",
        "The service is briefly unavailable. Retry later (with the same Idempotency-Key).",
        status.HTTP_503_SERVICE_UNAVAILABLE,
    )
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, OperationalError | InterfaceError):
        return _database_unavailable(exc)
    if isinstance(exc, ApplicationError):
        reply = error_response(exc.code, exc.detail, exc.status_code, exc.fields)
        reply.data.update(exc.extra)
        if isinstance(exc, RateLimited):
            reply["Retry-After"] = str(exc.retry_after)
        return reply
    if isinstance(exc, Http404):
        return error_response("not_found", "Not found.", status.HTTP_404_NOT_FOUND)
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.ValidationError):
        return error_response(
            "validation_error",
            "The request has invalid fields.",
            status.HTTP_400_BAD_REQUEST,
            _flatten(exc.detail),
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        if isinstance(codes, str):
            code = codes
    detail = response.data.get("detail", str(exc)) if isinstance(response.data, dict) else str(exc)
    data: dict[str, Any] = {"code": code, "detail": str(detail), "fields": {}}
    response.data = data
    return response
