"""Lending: loans (one order, one loan), the engine's decisions, and idempotency records."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from orders.models import Agent, SalesOrder

from .columns import money, numerator_column, rate
from .credit import CreditLine, DayCount, Program


class LoanStatus(models.TextChoices):
    DECLINED = "declined", "Declined"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"
    EXPIRED = "expired", "Expired"
    DISBURSING = "disbursing", "Disbursing"
    DISBURSEMENT_FAILED = "disbursement_failed", "Disbursement failed"
    ACTIVE = "active", "Active"
    OVERDUE = "overdue", "Overdue"
    REPAID = "repaid", "Repaid"
    WRITTEN_OFF = "written_off", "Written off"
    BOUGHT_BACK = "bought_back", "Bought back"


# A loan in one of these holds its order: no second loan may be made on it.
HOLDS_ORDER = [
    LoanStatus.IN_REVIEW,
    LoanStatus.APPROVED,
    LoanStatus.DISBURSING,
    LoanStatus.ACTIVE,
    LoanStatus.OVERDUE,
    LoanStatus.REPAID,
    LoanStatus.WRITTEN_OFF,
    LoanStatus.BOUGHT_BACK,
]
# A loan in one of these has credit reserved on its line and program.
RESERVES_CREDIT = [LoanStatus.IN_REVIEW, LoanStatus.APPROVED, LoanStatus.DISBURSING]
# A loan in one of these has principal outstanding (possibly zero after repayment).
OPEN = [LoanStatus.ACTIVE, LoanStatus.OVERDUE]


class LoanQuerySet(models.QuerySet["Loan"]):
    def visible_to(self, user: object) -> LoanQuerySet:
        role = getattr(user, "role", None)
        if role == "agent":
            return self.filter(agent_id=user.agent_id)  # type: ignore[attr-defined]
        if role == "enterprise_admin":
            return self.filter(program__enterprise_id=user.enterprise_id)  # type: ignore[attr-defined]
        if getattr(user, "is_bank_staff", False):
            return self
        return self.none()

    def open(self) -> LoanQuerySet:
        return self.filter(status__in=OPEN)


class Loan(models.Model):
    """One order, one loan: the request, its decision, and (later) the money it moves."""

    # No single-column indexes on program, line and agent: the (x, status) indexes below start
    # with them and serve the same lookups; every loan written maintains each index it has.
    program = models.ForeignKey(
        Program, on_delete=models.PROTECT, related_name="loans", db_index=False
    )
    credit_line = models.ForeignKey(
        CreditLine, on_delete=models.PROTECT, related_name="loans", db_index=False
    )
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="loans", db_index=False)
    order = models.ForeignKey(SalesOrder, on_delete=models.PROTECT, related_name="loans")
    status = models.CharField(max_length=24, choices=LoanStatus)
    currency = models.CharField(max_length=3)
    order_amount = money()
    principal = money()
    # Terms, copied from the program when the loan was decided.
    advance_rate = models.DecimalField(max_digits=5, decimal_places=4)
    annual_rate = rate()
    penalty_rate = rate()
    day_count = models.CharField(max_length=8, choices=DayCount)
    tenor_days = models.PositiveIntegerField()
    grace_days = models.PositiveIntegerField()
    # Credit reserved for this loan on its line and program (released or consumed later).
    reserved_amount = money(default=Decimal("0.00"))
    # Balances (moved by disbursement, accrual and repayment).
    outstanding_principal = money(default=Decimal("0.00"))
    accrued_interest = money(default=Decimal("0.00"))
    accrued_penalty = money(default=Decimal("0.00"))
    days_past_due = models.PositiveIntegerField(default=0)
    # The daily accrual's exact state (lending.services.accrual): the numerator, sum over the
    # nights of base x rate (interest x basis, exact at 8 places), and what has been posted,
    # round_half_even(numerator / basis) to the cent.
    interest_numerator = numerator_column(default=Decimal(0))
    interest_posted_cumulative = money(default=Decimal("0.00"))
    penalty_numerator = numerator_column(default=Decimal(0))
    penalty_posted_cumulative = money(default=Decimal("0.00"))
    accrued_through = models.DateField(null=True, blank=True)
    accelerated_at = models.DateTimeField(null=True, blank=True)
    value_date = models.DateField(null=True, blank=True)
    due_date = models.DateField()
    reference = models.CharField(max_length=32)  # unique: see Meta (no LIKE index needed)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    disbursed_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    objects = LoanQuerySet.as_manager()

    class Meta:
        verbose_name = _("loan")
        verbose_name_plural = _("loans")
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order"], condition=Q(status__in=HOLDS_ORDER), name="uniq_order_active_loan"
            ),
            models.UniqueConstraint(fields=["reference"], name="uniq_loan_reference"),
            models.CheckConstraint(name="loan_principal_positive", condition=Q(principal__gt=0)),
            models.CheckConstraint(
                name="loan_balances_nonneg",
                condition=Q(outstanding_principal__gte=0)
                & Q(accrued_interest__gte=0)
                & Q(accrued_penalty__gte=0)
                & Q(reserved_amount__gte=0),
            ),
            models.CheckConstraint(
                name="loan_reserved_le_principal", condition=Q(reserved_amount__lte=F("principal"))
            ),
        ]
        indexes = [
            models.Index(fields=["agent", "status"], name="loan_agent_status_idx"),
            models.Index(fields=["program", "status"], name="loan_program_status_idx"),
            models.Index(fields=["credit_line", "status"], name="loan_line_status_idx"),
            # COB's claim candidates: open loans due long enough ago (lending.services.claims_sql).
            # The due date never changes, so the nightly update stays HOT.
            models.Index(
                fields=["program", "due_date"],
                condition=Q(status__in=["active", "overdue"]),
                name="loan_program_due_open_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"loan {self.pk} ({self.status})"


class DecisionOutcome(models.TextChoices):
    APPROVED = "approved", "Approved"
    IN_REVIEW = "in_review", "In review"
    DECLINED = "declined", "Declined"


class Decision(models.Model):
    """Why a loan was approved, referred or declined: inputs, each rule's outcome, version."""

    loan = models.OneToOneField(Loan, on_delete=models.PROTECT, related_name="decision")
    outcome = models.CharField(max_length=16, choices=DecisionOutcome)
    reasons = models.JSONField(default=list)
    rules = models.JSONField(default=list)
    inputs = models.JSONField(default=dict)
    engine_version = models.CharField(max_length=32)
    decided_at = models.DateTimeField()

    class Meta:
        verbose_name = _("engine decision")
        verbose_name_plural = _("engine decisions")

    def __str__(self) -> str:
        return f"decision {self.loan_id}: {self.outcome}"


class IdempotencyRecord(models.Model):
    """The first reply to a client's ``Idempotency-Key``, replayed for the same key and body."""

    # No index of its own: the unique (user, key) constraint leads with the user.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    key = models.CharField(max_length=255)
    scope = models.CharField(max_length=64)
    request_hash = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="uniq_idempotency_user_key"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"
