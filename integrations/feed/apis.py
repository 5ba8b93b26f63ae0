"""The order-feed endpoints: signed webhook, bulk, CSV upload, and the feed's own log.

Each view authenticates, hands the payload to ``orders.services.ingest`` and serialises the
result; none of them holds a rule of its own.
"""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lending.selectors.scope import scope_for
from orders.models import CoreEnterprise, FeedChannel, FeedEvent, FeedOutcome, OrderStatus, Role
from orders.permissions import api_user, role_permission
from orders.selectors import enterprise_get, feed_event_list, feed_health
from orders.services.ingest import orders_ingest
from orders.services.ingest_event import order_event_ingest
from scf.api import Pagination
from scf.errors import NotFound, PermissionDenied, ValidationFailed
from scf.parsers import MalformedJson, json_parse
from scf.schema import AMOUNT_SCHEMA, ErrorOutput, paginated

from .auth import ApiKeyAuthentication, IntegrationPrincipal
from .csv_upload import csv_orders
from .follow_up import feed_applied_follow_up
from .signing import webhook_authenticate
from .text import json_storable, storable

ERROR_SCHEMA = ErrorOutput
INGEST_RESULT = inline_serializer(
    "OrderBatchResult",
    {
        "created": serializers.IntegerField(),
        "updated": serializers.IntegerField(),
        "stale": serializers.IntegerField(),
        "rejected": serializers.IntegerField(),
        "errors": serializers.ListField(child=serializers.DictField()),
    },
)


# The shapes below document the feed for clients (and the schema fuzzing); the views parse the
# raw bytes themselves (order_parse), so that JSON numbers in money fields can be refused.
@extend_schema_field(AMOUNT_SCHEMA)
class AmountString(serializers.CharField):
    pass


class FeedOrderLineInput(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    quantity = serializers.IntegerField(
        min_value=1, help_text="A whole number, or a decimal string with at most four places."
    )
    unit_price = AmountString()


class FeedOrderInput(serializers.Serializer):
    external_id = serializers.CharField(max_length=64)
    agent_code = serializers.CharField(max_length=64)
    amount = AmountString(help_text="Equals the sum of the lines (quantity x unit price).")
    currency = serializers.RegexField(r"^[A-Z]{3}$", help_text="ISO 4217")
    status = serializers.ChoiceField(choices=OrderStatus.choices)
    order_date = serializers.DateField()
    version = serializers.IntegerField(min_value=1, max_value=2**31 - 1)
    lines = serializers.ListField(child=FeedOrderLineInput(), min_length=1, max_length=1000)
    enterprise_code = serializers.CharField(required=False)


class FeedEventInput(serializers.Serializer):
    event_id = serializers.CharField(max_length=128)
    type = serializers.ChoiceField(choices=["order.upserted", "order.cancelled"])
    order = FeedOrderInput()


class FeedBulkInput(serializers.Serializer):
    orders = serializers.ListField(child=FeedOrderInput(), min_length=1, max_length=10_000)
    atomic = serializers.BooleanField(required=False, default=True)
    enterprise = serializers.CharField(required=False)


def _json(body: bytes) -> Any:
    data = json_parse(body)
    if not json_storable(body, data):
        message = "Text may not contain NUL (\\u0000) or unpaired surrogate characters."
        raise MalformedJson(message, code="invalid_text", fields={"non_field_errors": [message]})
    return data


class OrderWebhookApi(APIView):
    """One signed order event from a core enterprise's sales system."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes: list[type] = []

    @extend_schema(
        operation_id="orders_webhook",
        parameters=[
            OpenApiParameter("X-SCF-Enterprise", str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter("X-SCF-Timestamp", str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter("X-SCF-Signature", str, OpenApiParameter.HEADER, required=True),
        ],
        request={"application/json": FeedEventInput},
        responses={
            200: inline_serializer("WebhookResult", {"status": serializers.CharField()}),
            400: ERROR_SCHEMA,
            401: ERROR_SCHEMA,
            403: ERROR_SCHEMA,
            422: ERROR_SCHEMA,
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        body = request.body
        enterprise = webhook_authenticate(
            enterprise_code=request.headers.get("X-SCF-Enterprise"),
            timestamp=request.headers.get("X-SCF-Timestamp"),
            signature=request.headers.get("X-SCF-Signature"),
            body=body,
            tolerance_seconds=settings.ORDER_WEBHOOK_TOLERANCE_SECONDS,
        )
        result = order_event_ingest(
            enterprise=enterprise, channel=FeedChannel.WEBHOOK, event=_json(body)
        )
        if result.order_id is not None and result.order_status:
            feed_applied_follow_up(applied=[(result.order_id, result.order_status)])
        return Response({"status": result.status})


def _batch_response(result: Any) -> Response:
    data = result.counts()
    data["errors"] = [e.as_dict() for e in result.errors]
    return Response(data)


class OrderBulkApi(APIView):
    """Up to 10,000 orders in one request, all-or-nothing unless ``"atomic": false``."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsAuthenticated]
    max_body_bytes_setting = "ORDER_BULK_MAX_BYTES"

    @extend_schema(
        operation_id="orders_bulk",
        request={"application/json": FeedBulkInput},
        responses={
            200: INGEST_RESULT,
            400: ERROR_SCHEMA,
            401: ERROR_SCHEMA,
            403: ERROR_SCHEMA,
            422: ERROR_SCHEMA,
        },
    )
    def post(self, request: Request) -> Response:
        principal = request.user
        assert isinstance(principal, IntegrationPrincipal)
        body = _json(request.body)
        if not isinstance(body, dict) or not isinstance(body.get("orders"), list):
            raise ValidationFailed(
                'Send {"orders": [...]}.',
                code="invalid_request",
                fields={"orders": ["A list of orders is required."]},
            )
        orders = body["orders"]
        if not orders:  # too many: orders_ingest refuses them, as for every channel
            raise ValidationFailed(
                "Send at least one order.",
                code="invalid_request",
                fields={"orders": ["At least one order is required."]},
            )
        enterprise_code = body.get("enterprise")
        if enterprise_code is not None and enterprise_code != principal.enterprise.code:
            raise PermissionDenied(
                "This key cannot send orders for another enterprise.", code="enterprise_mismatch"
            )
        atomic = body.get("atomic", True)
        if not isinstance(atomic, bool):
            raise ValidationFailed("atomic must be true or false.", fields={"atomic": ["Boolean."]})
        result = orders_ingest(
            enterprise=principal.enterprise,
            payloads=orders,
            channel=FeedChannel.BULK,
            atomic=atomic,
        )
        feed_applied_follow_up(applied=result.applied)
        return _batch_response(result)


class OrderCsvApi(APIView):
    """A CSV file of order lines (one row per line), uploaded by an enterprise or ops admin."""

    parser_classes = [MultiPartParser]
    permission_classes = [role_permission(Role.ENTERPRISE_ADMIN, Role.OPS_ADMIN)]
    max_body_bytes_setting = "ORDER_CSV_MAX_BYTES"

    @extend_schema(
        operation_id="orders_csv",
        request={
            "multipart/form-data": inline_serializer(
                "OrderCsvUpload",
                {
                    "file": serializers.FileField(),
                    "enterprise": serializers.CharField(required=False),
                },
            )
        },
        responses={
            200: INGEST_RESULT,
            400: ERROR_SCHEMA,
            401: ERROR_SCHEMA,
            403: ERROR_SCHEMA,
            415: ERROR_SCHEMA,
            422: ERROR_SCHEMA,
        },
    )
    def post(self, request: Request) -> Response:
        user = api_user(request)
        code = request.data.get("enterprise")
        enterprise: CoreEnterprise | None
        if user.role == Role.ENTERPRISE_ADMIN:
            enterprise = cast(CoreEnterprise, user.enterprise)  # an admin has one (a CHECK)
            if code and code != enterprise.code:
                raise PermissionDenied(
                    "You can only upload orders for your own enterprise.",
                    code="enterprise_mismatch",
                )
        else:
            known = isinstance(code, str) and storable(code)
            enterprise = enterprise_get(code=cast(str, code)) if known else None
            if enterprise is None:
                raise ValidationFailed(
                    "Name the enterprise the orders belong to.",
                    fields={"enterprise": ["A known enterprise code is required."]},
                )
        upload = request.data.get("file")
        if upload is None or isinstance(upload, str):
            raise ValidationFailed("Attach a CSV file.", fields={"file": ["A file is required."]})
        payloads = csv_orders(upload)
        result = orders_ingest(enterprise=enterprise, payloads=payloads, channel=FeedChannel.CSV)
        feed_applied_follow_up(applied=result.applied)
        return _batch_response(result)


class FeedEventSerializer(serializers.ModelSerializer):
    enterprise: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="code", read_only=True
    )

    class Meta:
        model = FeedEvent
        fields = [
            "id",
            "enterprise",
            "channel",
            "event_id",
            "event_type",
            "outcome",
            "error_code",
            "detail",
            "external_id",
            "order_version",
            "row_count",
            "counts",
            "errors",
            "received_at",
        ]


def _event_scope(request: Request) -> dict[str, Any]:
    """Whose events the caller reads: an enterprise admin its own, an ops admin all or one."""
    user = api_user(request)
    if user.role == Role.ENTERPRISE_ADMIN:
        return {"enterprise_id": user.enterprise_id}
    code = request.query_params.get("enterprise")
    if code and not storable(code):
        raise ValidationFailed("Not an enterprise code.", fields={"enterprise": ["Invalid text."]})
    return {"enterprise_code": code or ""}


def _bank_scoped(request: Request, events: QuerySet[FeedEvent]) -> QuerySet[FeedEvent]:
    """An ops admin reads the feeds of the enterprises its bank has a program with."""
    return scope_for(api_user(request), events, "enterprise__programs__bank")


class FeedEventListApi(APIView):
    """The order feed's log: every accepted or rejected event, newest first."""

    permission_classes = [role_permission(Role.ENTERPRISE_ADMIN, Role.OPS_ADMIN)]

    @extend_schema(
        operation_id="orders_feed_events",
        parameters=[
            OpenApiParameter("outcome", str, enum=FeedOutcome.values),
            OpenApiParameter("channel", str, enum=FeedChannel.values),
            OpenApiParameter("enterprise", str, description="Enterprise code (ops admins)"),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses={
            200: paginated(FeedEventSerializer),
            401: ERROR_SCHEMA,
            403: ERROR_SCHEMA,
            404: ERROR_SCHEMA,
            422: ERROR_SCHEMA,
        },
    )
    def get(self, request: Request) -> Response:
        scope = _event_scope(request)
        for name, choices in (("outcome", FeedOutcome.values), ("channel", FeedChannel.values)):
            value = request.query_params.get(name)
            if value and value not in choices:
                raise ValidationFailed(f"Unknown {name}.", fields={name: ["Unknown value."]})
            scope[name] = value or None
        events = _bank_scoped(request, feed_event_list(**scope))
        paginator = Pagination()
        page = paginator.paginate_queryset(events, request, view=self)
        return paginator.get_paginated_response(FeedEventSerializer(page, many=True).data)


class FeedHealthApi(APIView):
    """Health of an enterprise's order feed: last event, counts by outcome, recent rejections."""

    permission_classes = [role_permission(Role.ENTERPRISE_ADMIN, Role.OPS_ADMIN)]

    @extend_schema(
        operation_id="orders_feed_health",
        parameters=[OpenApiParameter("enterprise", str, description="Enterprise code (ops)")],
        responses={
            200: OpenApiTypes.OBJECT,
            401: ERROR_SCHEMA,
            403: ERROR_SCHEMA,
            404: ERROR_SCHEMA,
            422: ERROR_SCHEMA,
        },
    )
    def get(self, request: Request) -> Response:
        scope = _event_scope(request)
        if api_user(request).role == Role.OPS_ADMIN and not request.query_params.get("enterprise"):
            raise NotFound("Name an enterprise with ?enterprise=<code>.")
        health = feed_health(events=_bank_scoped(request, feed_event_list(**scope)))
        summary = {
            "last_event_at": health.last_event_at,
            "last_applied_at": health.last_applied_at,
            **{f"last_24h_{outcome}": n for outcome, n in health.last_24h.items()},
            "recent_rejections": FeedEventSerializer(health.rejections, many=True).data,
        }
        return Response(summary, status=status.HTTP_200_OK)
