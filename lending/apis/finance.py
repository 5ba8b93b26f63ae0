"""Quote and finance: the agent's endpoints on an order.

The per-user rate limits are counted by the services themselves (``scf.throttling``), so the
portal shares them; over a limit, ``scf.api`` answers 429 with ``Retry-After``.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.models import Role
from orders.permissions import api_user, role_permission
from scf.errors import ValidationFailed
from scf.schema import errors

from ..serializers import FinanceOutput, QuoteOutput
from ..services.finance import loan_finance_once, loan_quote

AgentOnly = role_permission(Role.AGENT)


class OrderQuoteApi(APIView):
    permission_classes = [AgentOnly]

    @extend_schema(
        operation_id="orders_quote",
        request=None,
        responses={200: QuoteOutput, **errors(401, 403, 404, 409, 422, 429)},
    )
    def post(self, request: Request, order_id: int) -> Response:
        quote = loan_quote(user=api_user(request), order_id=order_id)
        return Response(QuoteOutput(quote).data)


class FinanceInput(serializers.Serializer):
    """Optional: the program whose offer the agent takes (the quote's ``offers``); without it,
    the first offer's. Read by the service (``program_choice.program_param``)."""

    program = serializers.IntegerField(required=False, min_value=1)


class OrderFinanceApi(APIView):
    permission_classes = [AgentOnly]

    @extend_schema(
        operation_id="orders_finance",
        request=FinanceInput,
        parameters=[
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=True)
        ],
        responses={201: FinanceOutput, **errors(400, 401, 403, 404, 409, 415, 422, 429)},
    )
    def post(self, request: Request, order_id: int) -> Response:
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            raise ValidationFailed(
                "Send an Idempotency-Key header.",
                code="idempotency_key_required",
                fields={"Idempotency-Key": ["This header is required."]},
            )
        body = request.data if isinstance(request.data, dict) else {}
        reply = loan_finance_once(user=api_user(request), order_id=order_id, key=key, body=body)
        return Response(reply.body, status=reply.status)
