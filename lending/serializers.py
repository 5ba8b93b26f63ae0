"""Output shapes of loans and decisions for the API (the stored finance reply, built without DRF
from the same fields, is ``lending.replies``)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from .models import Decision, Loan
from .replies import MOMENT_FIELDS, MONEY_FIELDS, loan_schedule


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
            *MONEY_FIELDS,
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
            *MOMENT_FIELDS,
            "schedule",
        ]

    def get_schedule(self, loan: Loan) -> list[dict[str, Any]]:
        return [_SCHEDULE_ITEM.to_representation(item) for item in loan_schedule(loan)]


_SCHEDULE_ITEM = ScheduleItem()


class FinanceDecisionOutput(serializers.Serializer):
    outcome = serializers.CharField()
    reasons = ReasonOutput(many=True)


class FinanceOutput(serializers.Serializer):
    loan = LoanOutput()
    decision = FinanceDecisionOutput()


class QuoteTermsOutput(serializers.Serializer):
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
    # Under a tripartite program: the margin (and security deposit) this order needs lodged, and
    # what the agent has free; null otherwise.
    margin_required = serializers.DecimalField(max_digits=18, decimal_places=2, allow_null=True)
    margin_free = serializers.DecimalField(max_digits=18, decimal_places=2, allow_null=True)
    eligible = serializers.SerializerMethodField()
    expected_outcome = serializers.CharField(source="decision.outcome")
    reasons = ReasonOutput(many=True, source="agent_reasons")

    def get_eligible(self, quote: Any) -> bool:
        return bool(quote.decision.outcome != "declined")


class OfferBankOutput(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()


class QuoteOfferOutput(QuoteTermsOutput):
    """One program's offer: its bank, its terms and the engine's decision on it now."""

    bank = OfferBankOutput(source="program.bank")


class QuoteOutput(QuoteTermsOutput):
    """The quote of the default choice (the first offer); with several programs able to finance
    the order, also ``offers``, one per program (the first is the default), to choose from with
    ``finance``'s ``{"program": id}``."""

    offers = QuoteOfferOutput(many=True, required=False)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        if not instance.offers:
            data.pop("offers")
        return dict(data)
