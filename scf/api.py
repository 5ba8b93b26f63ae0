"""Shared API plumbing: pagination and the one exception handler behind the error shape.

Every error leaves the API as ``{"code": ..., "detail": ..., "fields": {...}}``.
"""

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from scf.errors import ApplicationError


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


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        response = error_response(exc.code, exc.detail, exc.status_code, exc.fields)
        response.data.update(exc.extra)
        return response
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
    data = {"code": code, "detail": str(detail), "fields": {}}
    response.data = data
    return response
