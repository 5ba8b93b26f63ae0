"""An agent's margin: balance and movements, deposits by operations, withdrawals.

- ``GET /api/v1/agents/{id}/margin/?program=`` -> ``{"currency", "free", "committed",
  "security", "movements": [...]}`` (the agent itself and bank staff; 404 otherwise). Without a
  ``program`` it is the agent's first margin account; with none yet, zeros.
- ``POST /api/v1/agents/{id}/margin/deposits/`` ``{"amount", "value_date", "reference",
  "program"}`` (operations): 201 the first time, 200 with the same body for a repeated reference.
- ``POST /api/v1/agents/{id}/margin/withdrawals/`` ``{"amount", "program", "reason"}``
  (operations): 201 ``pending`` (paid at once) or ``awaiting_approval`` (above the threshold);
  ``POST /api/v1/margin-withdrawals/{id}/approve/`` (another person) and ``/reject/``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction
from django.urls import URLPattern, path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.models import Role
from orders.permissions import api_user, role_permission
from scf.errors import NotFound, ValidationFailed
from scf.schema import errors

from ..models import MarginAccount, MarginMovement, MarginSource, MarginWithdrawal
from ..selectors.tripartite import (
    agent_for_staff,
    margin_account_by_id,
    margin_account_get,
    margin_movements,
    margin_withdrawal_get,
    program_for_staff,
)
from ..services.agreements import check_agent_in_program
from ..services.margin import (
    margin_account_get_or_create,
    margin_deposit,
    margin_withdraw_approve,
    margin_withdraw_reject,
    margin_withdraw_request,
)
from .repayments import AmountField
from .tripartite import ReasonInput, _valid

OpsOnly = role_permission(Role.OPS_ADMIN)
ZERO = Decimal("0.00")
BIGINT_MAX = 2**63 - 1


class MovementOutput(serializers.ModelSerializer):
    class Meta:
        model = MarginMovement
        fields = ["id", "kind", "amount", "loan", "value_date", "reference", "source", "created_at"]


class MarginOutput(serializers.Serializer):
    program = serializers.IntegerField(allow_null=True)
    reference = serializers.CharField(allow_null=True)
    currency = serializers.CharField(allow_null=True)
    free = serializers.DecimalField(max_digits=18, decimal_places=2)
    committed = serializers.DecimalField(max_digits=18, decimal_places=2)
    security = serializers.DecimalField(max_digits=18, decimal_places=2)
    movements = MovementOutput(many=True)


def _margin_reply(account: MarginAccount | None) -> dict[str, Any]:
    if account is None:
        empty: dict[str, Any] = {
            "program": None,
            "reference": None,
            "currency": None,
            "movements": [],
        }
        return MarginOutput({**empty, "free": ZERO, "committed": ZERO, "security": ZERO}).data
    return MarginOutput(
        {
            "program": account.program_id,
            "reference": account.reference,
            "currency": account.currency,
            "free": account.free,
            "committed": account.committed,
            "security": account.security,
            "movements": margin_movements(account),
        }
    ).data


def _program_param(raw: Any) -> int | None:
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise ValidationFailed("Send a program id.", fields={"program": ["Not an id."]}) from None


class MarginApi(APIView):
    @extend_schema(
        operation_id="agents_margin",
        parameters=[OpenApiParameter("program", int)],
        responses={200: MarginOutput, **errors(401, 404, 422)},
    )
    def get(self, request: Request, agent_id: int) -> Response:
        user = api_user(request)
        program_id = _program_param(request.query_params.get("program"))
        if not 0 < agent_id <= BIGINT_MAX:
            raise NotFound("No such agent.")
        account = margin_account_get(user=user, agent_id=agent_id, program_id=program_id)
        if account is None:  # an agent without margin yet: zeros, for itself and bank staff
            own = user.agent_id == agent_id
            if not own and agent_for_staff(user=user, agent_id=agent_id) is None:
                raise NotFound("No such agent.")
        return Response(_margin_reply(account))


class DepositInput(serializers.Serializer):
    amount = AmountField()
    value_date = serializers.DateField()
    reference = serializers.CharField(max_length=64)
    program = serializers.IntegerField()
    currency = serializers.RegexField(r"^[A-Z]{3}$", required=False)


def _account(request: Request, agent_id: int, program_id: int) -> MarginAccount:
    user = api_user(request)
    agent = agent_for_staff(user=user, agent_id=agent_id)
    if agent is None:
        raise NotFound("No such agent.")
    program = program_for_staff(user=user, program_id=program_id)
    if program is None:
        raise ValidationFailed("No such program.", fields={"program": ["No such program."]})
    check_agent_in_program(program, agent)
    return margin_account_get_or_create(program=program, agent=agent)


class MarginDepositApi(APIView):
    permission_classes = [OpsOnly]

    @extend_schema(
        operation_id="agents_margin_deposit",
        request=DepositInput,
        responses={201: MarginOutput, 200: MarginOutput, **errors(400, 401, 403, 404, 409, 422)},
    )
    def post(self, request: Request, agent_id: int) -> Response:
        data = _valid(DepositInput(data=request.data))
        with transaction.atomic():
            account = _account(request, agent_id, data["program"])
            _movement, created = margin_deposit(
                account=account,
                amount=data["amount"],
                value_date=data["value_date"],
                reference=data["reference"],
                source=MarginSource.API,
                actor=api_user(request),
                currency=data.get("currency"),
            )
        return Response(
            _margin_reply(margin_account_by_id(account.pk)), status=201 if created else 200
        )


class WithdrawalOutput(serializers.ModelSerializer):
    class Meta:
        model = MarginWithdrawal
        fields = [
            "id",
            "account",
            "amount",
            "currency",
            "end_to_end_id",
            "status",
            "requested_at",
            "approved_at",
            "bank_reason_code",
            "settled_at",
        ]


class WithdrawalInput(serializers.Serializer):
    amount = AmountField()
    program = serializers.IntegerField()
    reason = serializers.CharField(required=False, max_length=500, allow_blank=True)


class MarginWithdrawalApi(APIView):
    permission_classes = [OpsOnly]

    @extend_schema(
        operation_id="agents_margin_withdraw",
        request=WithdrawalInput,
        responses={201: WithdrawalOutput, **errors(400, 401, 403, 404, 409, 422)},
    )
    def post(self, request: Request, agent_id: int) -> Response:
        data = _valid(WithdrawalInput(data=request.data))
        with transaction.atomic():
            account = _account(request, agent_id, data["program"])
            withdrawal = margin_withdraw_request(
                actor=api_user(request),
                account=account,
                amount=data["amount"],
                reason=data.get("reason", ""),
            )
        return Response(WithdrawalOutput(withdrawal).data, status=201)


class WithdrawalApproveApi(APIView):
    permission_classes = [OpsOnly]

    @extend_schema(
        operation_id="margin_withdrawals_approve",
        request=None,
        responses={200: WithdrawalOutput, **errors(401, 403, 404, 409)},
    )
    def post(self, request: Request, withdrawal_id: int) -> Response:
        if margin_withdrawal_get(user=api_user(request), withdrawal_id=withdrawal_id) is None:
            raise NotFound("No such withdrawal.")
        withdrawal = margin_withdraw_approve(actor=api_user(request), withdrawal_id=withdrawal_id)
        return Response(WithdrawalOutput(withdrawal).data)


class WithdrawalRejectApi(APIView):
    permission_classes = [OpsOnly]

    @extend_schema(
        operation_id="margin_withdrawals_reject",
        request=ReasonInput,
        responses={200: WithdrawalOutput, **errors(400, 401, 403, 404, 409, 422)},
    )
    def post(self, request: Request, withdrawal_id: int) -> Response:
        data = _valid(ReasonInput(data=request.data))
        if margin_withdrawal_get(user=api_user(request), withdrawal_id=withdrawal_id) is None:
            raise NotFound("No such withdrawal.")
        withdrawal = margin_withdraw_reject(
            actor=api_user(request), withdrawal_id=withdrawal_id, reason=data["reason"]
        )
        return Response(WithdrawalOutput(withdrawal).data)


urlpatterns: list[URLPattern] = [
    path("agents/<int:agent_id>/margin/", MarginApi.as_view(), name="agents-margin"),
    path(
        "agents/<int:agent_id>/margin/deposits/",
        MarginDepositApi.as_view(),
        name="agents-margin-deposits",
    ),
    path(
        "agents/<int:agent_id>/margin/withdrawals/",
        MarginWithdrawalApi.as_view(),
        name="agents-margin-withdrawals",
    ),
    path(
        "margin-withdrawals/<int:withdrawal_id>/approve/",
        WithdrawalApproveApi.as_view(),
        name="margin-withdrawals-approve",
    ),
    path(
        "margin-withdrawals/<int:withdrawal_id>/reject/",
        WithdrawalRejectApi.as_view(),
        name="margin-withdrawals-reject",
    ),
]
