"""OpenAPI building blocks shared by every API view: the error shape and paginated lists.

Every error the API returns is ``{"code", "detail", "fields"}`` (see ``scf.api``). Views declare
the statuses they really return with ``errors(401, 403, 404, ...)``, and paginated lists with
``paginated(Serializer)``, so the schema at ``/api/schema/`` is what clients get (the schema
fuzzing test holds every response to it).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

# A serializer class cannot declare a field named "fields" as an attribute, so it is built.
ErrorOutput = inline_serializer(
    name="Error",
    fields={
        "code": serializers.CharField(help_text="Stable machine-readable code."),
        "detail": serializers.CharField(help_text="What went wrong, for people."),
        "fields": serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()),
            help_text="Field name to messages; empty when no field is at fault.",
        ),
    },
)

ERROR_MEANINGS = {
    400: "Malformed request or invalid fields.",
    401: "Missing or invalid credentials.",
    403: "The caller's role may not use this operation.",
    404: "No such object for this caller (another party's objects are 404 too).",
    409: "Conflicts with the object's current state.",
    413: "The body is above this operation's byte cap (request_too_large); nothing was read.",
    415: "The body's content type is not one the operation accepts.",
    422: "Well-formed but unacceptable: field errors or a business rule.",
    429: "Too many requests: retry after the Retry-After header's seconds.",
}
# A money amount as clients must send it: a decimal string, at most two places, never a number.
AMOUNT_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": r"^[0-9]{1,16}(\.[0-9]{1,2})?$",
    "example": "1234.50",
}


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """``responses=`` entries for the error statuses an operation really returns."""
    return {
        status: OpenApiResponse(response=ErrorOutput, description=ERROR_MEANINGS[status])
        for status in statuses
    }


@cache
def _page(serializer_class: type[serializers.Serializer], name: str) -> Any:
    return inline_serializer(
        name=name,
        fields={
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer_class(many=True),
        },
    )


def paginated(serializer_class: type[serializers.Serializer]) -> Any:
    """The page shape of ``scf.api.Pagination`` around ``serializer_class`` rows."""
    return _page(serializer_class, f"Paginated{serializer_class.__name__}List")


def document_body_limits(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Postprocessing hook: every operation that takes a body may answer 413
    ``request_too_large`` (``scf.middleware.RequestBodyLimitMiddleware``, before the view)."""
    too_large = {
        "description": ERROR_MEANINGS[413],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    for path in result.get("paths", {}).values():
        for operation in path.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                operation.setdefault("responses", {}).setdefault("413", too_large)
    return result
