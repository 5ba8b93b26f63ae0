"""Quote and finance: the agent's endpoints on an order."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.models import Role
from orders.permissions import api_user, role_permission
from scf.errors import ApplicationError, ValidationFailed
from scf.schema import errors
from scf.throttling import FinanceRateThrottle, QuoteRateThrottle

from ..serializers import FinanceOutput, QuoteOutput, finance_reply_body
from ..services.finance import loan_finance, loan_quote
from ..services.idempotency import StoredReply, idempotent, request_fingerprint

AgentOnly = role_permission(Role.AGENT)


class OrderQuoteApi(APIView):
    permission_classes = [AgentOnly]
    throttle_classes = [QuoteRateThrottle]

    @extend_schema(
        operation_id="orders_quote",
        request=None,
        responses={200: QuoteOutput, **errors(401, 403, 404, 409, 422, 429)},
    )
    def post(self, request: Request, order_id: int) -> Response:
        quote = loan_quote(user=api_user(request), order_id=order_id)
        return Response(QuoteOutput(quote).data)


class OrderFinanceApi(APIView):
    permission_classes = [AgentOnly]
    throttle_classes = [FinanceRateThrottle]

    @extend_schema(
        operation_id="orders_finance",
        request=None,
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
        scope = f"finance:{order_id}"

        def run() -> StoredReply:
            try:
                loan = loan_finance(user=api_user(request), order_id=order_id)
            except ApplicationError as exc:
                return StoredReply(
                    exc.status_code, {"code": exc.code, "detail": exc.detail, "fields": exc.fields}
                )
            return StoredReply(201, finance_reply_body(loan))

        reply = idempotent(
            user_id=api_user(request).pk,
            key=key,
            scope=scope,
            fingerprint=request_fingerprint(scope, dict(body)),
            run=run,
        )
        return Response(reply.body, status=reply.status)
