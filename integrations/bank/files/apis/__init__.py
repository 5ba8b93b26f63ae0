"""The unapplied-credit queue for operations (``ops_admin``; every other role gets 403):
``GET /api/v1/unapplied-credits/`` (``?status=open|applied|refunding|refunded``),
``POST /api/v1/unapplied-credits/{id}/apply/`` ``{"loan": id}`` or ``{"margin_account": id}`` (a
loan or margin account of another bank: 422 ``loan_not_applicable`` /
``margin_account_not_applicable``), and
``POST /api/v1/unapplied-credits/{id}/refund/`` (the refund goes out in the bank's next
pain.001), and ``GET /api/v1/unapplied-credits/{id}/audit/`` (``apis.audit``: its audit
trail, for any bank staff of the credit's bank). A credit that is not open any more: 409 ``unapplied_credit_not_open``. Operations
see and act on their own bank's credits only: another bank's id is a 404, nothing written."""

from __future__ import annotations

from typing import Any

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.models import Role
from orders.permissions import role_permission
from scf.api import Pagination
from scf.errors import NotFound, ValidationFailed
from scf.schema import errors, paginated

from ....bank_models import UnappliedCredit, UnappliedStatus
from ..selectors import unapplied_credit_get, unapplied_credits
from ..unapplied import unapplied_apply, unapplied_refund
from .audit import UnappliedCreditAuditApi

OpsOnly = role_permission(Role.OPS_ADMIN)


class UnappliedCreditOutput(serializers.ModelSerializer):
    amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    bank = serializers.CharField(source="bank.code")
    entry_reference = serializers.CharField(source="entry.entry_reference")
    booking_date = serializers.DateField(source="entry.booking_date")
    value_date = serializers.DateField(source="entry.value_date")
    remittance = serializers.CharField(source="entry.remittance")
    creditor_reference = serializers.CharField(source="entry.creditor_reference")
    debtor_name = serializers.CharField(source="entry.debtor_name")
    debtor_account = serializers.CharField(source="entry.debtor_account")
    loan_reference = serializers.CharField(source="loan.reference", allow_null=True, default=None)
    margin_account_reference = serializers.CharField(
        source="margin_account.reference", allow_null=True, default=None
    )
    refund_end_to_end_id = serializers.CharField(
        source="refund_payment.end_to_end_id", allow_null=True, default=None
    )

    class Meta:
        model = UnappliedCredit
        fields = [
            "id",
            "bank",
            "amount",
            "currency",
            "status",
            "target",
            "reason",
            "loan",
            "loan_reference",
            "margin_account",
            "margin_account_reference",
            "entry_reference",
            "booking_date",
            "value_date",
            "remittance",
            "creditor_reference",
            "debtor_name",
            "debtor_account",
            "refund_end_to_end_id",
            "created_at",
            "resolved_at",
            "resolved_by",
        ]


class ApplyInput(serializers.Serializer):
    loan = serializers.IntegerField(required=False, min_value=1)
    margin_account = serializers.IntegerField(required=False, min_value=1)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("loan" in attrs) == ("margin_account" in attrs):
            raise serializers.ValidationError("Give exactly one of loan or margin_account.")
        return attrs


def _visible(user: Any, credit_id: int) -> UnappliedCredit:
    """The credit of the user's bank; another bank's is missing, as a credit that does not
    exist."""
    credit = unapplied_credit_get(user=user, credit_id=credit_id)
    if credit is None:
        raise NotFound(f"No unapplied credit {credit_id}.")
    return credit


def _output(user: Any, credit_id: int) -> dict[str, Any]:
    return dict(UnappliedCreditOutput(_visible(user, credit_id)).data)


class UnappliedCreditListApi(APIView):
    permission_classes = [OpsOnly]

    @extend_schema(
        operation_id="unapplied_credits_list",
        parameters=[
            OpenApiParameter("status", str, enum=UnappliedStatus.values),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses={200: paginated(UnappliedCreditOutput), **errors(401, 403, 404)},
    )
    def get(self, request: Request) -> Response:
        rows = unapplied_credits(user=request.user, status=request.query_params.get("status"))
        paginator = Pagination()
        page = paginator.paginate_queryset(rows, request, view=self) or []
        return paginator.get_paginated_response(UnappliedCreditOutput(page, many=True).data)


class UnappliedCreditApplyApi(APIView):
    permission_classes = [OpsOnly]

    @extend_schema(
        operation_id="unapplied_credits_apply",
        request=ApplyInput,
        responses={200: UnappliedCreditOutput, **errors(400, 401, 403, 404, 409, 422)},
    )
    def post(self, request: Request, credit_id: int) -> Response:
        _visible(request.user, credit_id)
        body = ApplyInput(data=request.data)
        if not body.is_valid():
            raise ValidationFailed("Invalid request.", fields=body.errors)
        unapplied_apply(
            credit_id=credit_id,
            actor=request.user,
            loan_id=body.validated_data.get("loan"),
            margin_account_id=body.validated_data.get("margin_account"),
        )
        return Response(_output(request.user, credit_id))


class UnappliedCreditRefundApi(APIView):
    permission_classes = [OpsOnly]

    @extend_schema(
        operation_id="unapplied_credits_refund",
        request=None,
        responses={200: UnappliedCreditOutput, **errors(401, 403, 404, 409, 422)},
    )
    def post(self, request: Request, credit_id: int) -> Response:
        _visible(request.user, credit_id)
        unapplied_refund(credit_id=credit_id, actor=request.user)
        return Response(_output(request.user, credit_id))


urlpatterns = [
    path("unapplied-credits/", UnappliedCreditListApi.as_view(), name="unapplied-credits-list"),
    path(
        "unapplied-credits/<int:credit_id>/apply/",
        UnappliedCreditApplyApi.as_view(),
        name="unapplied-credits-apply",
    ),
    path(
        "unapplied-credits/<int:credit_id>/refund/",
        UnappliedCreditRefundApi.as_view(),
        name="unapplied-credits-refund",
    ),
    path(
        "unapplied-credits/<int:credit_id>/audit/",
        UnappliedCreditAuditApi.as_view(),
        name="unapplied-credits-audit",
    ),
]
