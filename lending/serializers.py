"""Output shapes of loans and decisions, shared by the API and the stored idempotent replies."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rest_framework import serializers

from scf import clock

from .models import Decision, Loan
from .services.terms import interest_for


class DecisionOutput(serializers.ModelSerializer):
    class Meta:
        model = Decision
        fields = ["outcome", "reasons", "engine_version", "decided_at"]


class ReasonOutput(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()


class ScheduleItem(serializers.Serializer):
    due_date = serializers.DateField()
    principal = serializers.DecimalField(max_digits=18, decimal_places=2)
    interest = serializers.DecimalField(max_digits=18, decimal_places=2)
    total = serializers.DecimalField(max_digits=18, decimal_places=2)


def loan_schedule(loan: Loan) -> list[dict[str, Any]]:
    """The repayment schedule: one bullet instalment, principal plus interest to maturity.

    Before disbursement it is an estimate from today; after, accrued interest plus the interest
    still to accrue on the outstanding principal until the due date.
    """
    today = clock.business_date(loan.program.time_zone)
    if loan.value_date is None:
        principal, accrued, start = loan.principal, Decimal("0.00"), today
    else:
        principal, accrued = loan.outstanding_principal, loan.accrued_interest
        start = max(today, loan.value_date)
    days = max((loan.due_date - start).days, 0)
    interest = accrued + interest_for(principal, loan.annual_rate, days, loan.day_count)
    return [
        {
            "due_date": loan.due_date,
            "principal": principal,
            "interest": interest,
            "total": principal + interest,
        }
    ]


class LoanOutput(serializers.ModelSerializer):
    order_external_id = serializers.CharField(source="order.external_id", read_only=True)
    agent_code = serializers.CharField(source="agent.code", read_only=True)
    schedule = serializers.SerializerMethodField()

    class Meta:
        model = Loan
        fields = [
            "id",
            "order",
            "order_external_id",
            "agent",
            "agent_code",
            "program",
            "status",
            "currency",
            "order_amount",
            "principal",
            "outstanding_principal",
            "accrued_interest",
            "accrued_penalty",
            "reserved_amount",
            "advance_rate",
            "annual_rate",
            "penalty_rate",
            "day_count",
            "tenor_days",
            "grace_days",
            "value_date",
            "due_date",
            "days_past_due",
            "reference",
            "requested_at",
            "decided_at",
            "approved_at",
            "disbursed_at",
            "closed_at",
            "schedule",
        ]

    def get_schedule(self, loan: Loan) -> list[dict[str, Any]]:
        return [_SCHEDULE_ITEM.to_representation(item) for item in loan_schedule(loan)]


# Serializer instances build their fields once (DRF deep-copies ~30 field objects per new
# instance); these read-only ones are shared, so the finance reply costs no field building.
_SCHEDULE_ITEM = ScheduleItem()
_LOAN_OUTPUT = LoanOutput()


def loan_body(loan: Loan) -> dict[str, Any]:
    """``LoanOutput(loan).data`` without building the serializer again."""
    return dict(_LOAN_OUTPUT.to_representation(loan))


class FinanceDecisionOutput(serializers.Serializer):
    outcome = serializers.CharField()
    reasons = ReasonOutput(many=True)


class FinanceOutput(serializers.Serializer):
    loan = LoanOutput()
    decision = FinanceDecisionOutput()


def finance_reply_body(loan: Loan) -> dict[str, Any]:
    """The body ``FinanceOutput`` describes, built with the shared serializers."""
    decision = loan.decision
    reasons = [{"code": str(r["code"]), "detail": str(r["detail"])} for r in decision.reasons]
    return {"loan": loan_body(loan), "decision": {"outcome": decision.outcome, "reasons": reasons}}


class QuoteOutput(serializers.Serializer):
    order = serializers.IntegerField(source="order.pk")
    program = serializers.IntegerField(source="program.pk")
    currency = serializers.CharField(source="terms.currency")
    principal = serializers.DecimalField(max_digits=18, decimal_places=2, source="terms.principal")
    advance_rate = serializers.DecimalField(
        max_digits=5, decimal_places=4, source="terms.advance_rate"
    )
    annual_rate = serializers.DecimalField(
        max_digits=9, decimal_places=6, source="terms.annual_rate"
    )
    day_count = serializers.CharField(source="terms.day_count")
    tenor_days = serializers.IntegerField(source="terms.tenor_days")
    value_date = serializers.DateField(source="terms.value_date")
    due_date = serializers.DateField(source="terms.due_date")
    interest_to_maturity = serializers.DecimalField(
        max_digits=18, decimal_places=2, source="terms.interest_to_maturity"
    )
    total_repayable = serializers.DecimalField(
        max_digits=18, decimal_places=2, source="terms.total_repayable"
    )
    eligible = serializers.SerializerMethodField()
    expected_outcome = serializers.CharField(source="decision.outcome")
    reasons = ReasonOutput(many=True, source="decision.reasons")

    def get_eligible(self, quote: Any) -> bool:
        return bool(quote.decision.outcome != "declined")
