"""Repayments of a loan: bank operations record them, whoever may see the loan lists them.

``POST /api/v1/loans/{id}/repayments/`` (``ops_admin`` only; every other role gets 403 whatever
the loan, so the reply never confirms that someone else's loan exists) validates the body
(amounts are decimal strings with at most two places, never JSON numbers), calls
``repayment_record_outcome`` and replies with the allocation and the loan's new balances: 201 the
first time, 200 with the same body for a repeated reference (nothing is applied twice).
``GET`` lists the loan's repayments for anyone who may see the loan (404 otherwise).
"""

from __future__ import annotations

from typing import Any

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.models import Role
from orders.permissions import role_permission
from scf.api import Pagination
from scf.errors import NotFound
from scf.money import Money, is_iso_currency, parse_amount
from scf.schema import AMOUNT_SCHEMA, errors, paginated

from ..dpd import loan_dpd_bucket
from ..models import Loan, Repayment, RepaymentSource
from ..selectors.loans import loan_as_stored, loan_get, repayment_list
from ..services.repayments import Allocation, repayment_record_outcome

OpsOnly = role_permission(Role.OPS_ADMIN)


@extend_schema_field(AMOUNT_SCHEMA)
class AmountField(serializers.Field):
    """A money amount sent as a decimal string ("1234.50"); floats and NaN are refused."""

    def to_internal_value(self, data: Any) -> Any:
        try:
            return parse_amount(data)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def to_representation(self, value: Any) -> str:
        return f"{value:.2f}"


class RepaymentInput(serializers.Serializer):
    amount = AmountField()
    value_date = serializers.DateField()
    reference = serializers.CharField(max_length=64)
    currency = serializers.RegexField(
        r"^[A-Z]{3}$", required=False, help_text="ISO 4217; the loan's currency if omitted."
    )

    def validate_currency(self, value: str) -> str:
        # An unknown code is refused here; a known one that is not the loan's, by the service.
        if not is_iso_currency(value):
            raise serializers.ValidationError("Not an ISO 4217 currency code.")
        return value


class AllocationOutput(serializers.Serializer):
    penalty = serializers.DecimalField(max_digits=18, decimal_places=2)
    interest = serializers.DecimalField(max_digits=18, decimal_places=2)
    principal = serializers.DecimalField(max_digits=18, decimal_places=2)
    overpayment = serializers.DecimalField(max_digits=18, decimal_places=2)


class RepaymentLoanOutput(serializers.ModelSerializer):
    dpd_bucket = serializers.SerializerMethodField()

    class Meta:
        model = Loan
        fields = [
            "id",
            "reference",
            "status",
            "currency",
            "principal",
            "outstanding_principal",
            "accrued_interest",
            "accrued_penalty",
            "days_past_due",
            "dpd_bucket",
            "due_date",
            "accrued_through",
            "closed_at",
        ]

    def get_dpd_bucket(self, loan: Loan) -> str | None:
        return loan_dpd_bucket(status=loan.status, days_past_due=loan.days_past_due)


class RepaymentOutput(serializers.ModelSerializer):
    allocation = serializers.SerializerMethodField()

    class Meta:
        model = Repayment
        fields = [
            "id",
            "reference",
            "amount",
            "currency",
            "value_date",
            "source",
            "backdated",
            "allocation",
            "recorded_by",
            "received_at",
        ]

    @extend_schema_field(AllocationOutput)
    def get_allocation(self, repayment: Repayment) -> dict[str, Any]:
        return AllocationOutput(Allocation.of(repayment).as_dict()).data  # type: ignore[return-value]


class RepaymentRecordedOutput(RepaymentOutput):
    loan = RepaymentLoanOutput(read_only=True)

    class Meta(RepaymentOutput.Meta):
        fields = [*RepaymentOutput.Meta.fields, "loan"]


class LoanRepaymentsApi(APIView):
    def get_permissions(self) -> list[BasePermission]:
        if self.request.method == "POST":
            return [OpsOnly()]
        return [IsAuthenticated()]

    def _loan(self, request: Request, loan_id: int) -> Loan:
        loan = loan_get(user=request.user, loan_id=loan_id)  # type: ignore[arg-type]
        if loan is None:
            raise NotFound("No such loan.")
        return loan

    @extend_schema(
        operation_id="loans_repayments_list",
        parameters=[OpenApiParameter("page", int), OpenApiParameter("page_size", int)],
        responses={200: paginated(RepaymentOutput), **errors(401, 404)},
    )
    def get(self, request: Request, loan_id: int) -> Response:
        loan = self._loan(request, loan_id)
        paginator = Pagination()
        page = paginator.paginate_queryset(repayment_list(loan=loan), request, view=self)
        return paginator.get_paginated_response(RepaymentOutput(page, many=True).data)

    @extend_schema(
        operation_id="loans_repayments_create",
        request=RepaymentInput,
        responses={
            201: RepaymentRecordedOutput,
            200: RepaymentRecordedOutput,
            **errors(400, 401, 403, 404, 409, 415, 422),
        },
    )
    def post(self, request: Request, loan_id: int) -> Response:
        body = RepaymentInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        loan = self._loan(request, loan_id)
        repayment, created = repayment_record_outcome(
            loan=loan,
            amount=Money(data["amount"], data.get("currency") or loan.currency),
            value_date=data["value_date"],
            reference=data["reference"],
            source=RepaymentSource.API,
            actor=request.user,
        )
        repayment.loan = loan_as_stored(loan_id=repayment.loan_id)
        return Response(RepaymentRecordedOutput(repayment).data, status=201 if created else 200)


urlpatterns = [
    path(
        "loans/<int:loan_id>/repayments/",
        LoanRepaymentsApi.as_view(),
        name="loans-repayments",
    ),
]
