"""Lending: banks, programs, credit lines, loans, decisions, reviews, idempotency, audit.

Credit headroom lives on two rows, the credit line and the program, as ``outstanding_principal``
and ``reserved`` next to ``limit``. A CHECK constraint on each makes overdrawing impossible even
if application code is wrong: ``0 <= reserved``, ``0 <= outstanding``,
``outstanding + reserved <= limit``. Services change these columns only with conditional updates
or under row locks taken in a fixed order (order -> credit line -> program).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Round
from django.db.models.lookups import GreaterThanOrEqual
from django.utils.translation import gettext_lazy as _

from orders.models import Agent, CoreEnterprise, SalesOrder
from scf.money import MONEY_DIGITS, MONEY_PLACES


def money(**kwargs: Any) -> models.DecimalField:  # type: ignore[type-arg]
    return models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES, **kwargs)


def rate(**kwargs: Any) -> models.DecimalField:  # type: ignore[type-arg]
    return models.DecimalField(max_digits=9, decimal_places=6, **kwargs)


def numerator_column(**kwargs: Any) -> models.DecimalField:  # type: ignore[type-arg]
    """An exact accrual numerator: a sum over nights of base x rate (2 + 6 places), the interest
    times the day-count basis (``lending.services.interest``). A night is below 10^19 (a
    ``money`` base times a ``rate``), so 32 integer digits outlast any loan."""
    return models.DecimalField(max_digits=40, decimal_places=8, **kwargs)


class Grade(models.TextChoices):
    """Risk grades, A best. Comparison is alphabetical: a grade is 'below' B when it is > 'B'."""

    A = "A", "A"
    B = "B", "B"
    C = "C", "C"
    D = "D", "D"
    E = "E", "E"


class DayCount(models.TextChoices):
    ACT_360 = "ACT/360", "ACT/360"
    ACT_365F = "ACT/365F", "ACT/365F"

    @property
    def basis(self) -> Decimal:
        return Decimal(360) if self == DayCount.ACT_360 else Decimal(365)


class Bank(models.Model):
    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    settlement_account_no = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("bank")
        verbose_name_plural = _("banks")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


def in_cents(expression: Any) -> Round:
    """A sum or difference of money columns, rounded to the cent, for CHECK constraints.

    Exact on PostgreSQL's NUMERIC (the value already has two places); on SQLite (the demo) money
    columns are doubles, so ``0.10 + 0.20`` is not ``0.30`` until it is rounded.
    """
    return Round(expression, precision=MONEY_PLACES)


def headroom_constraints(prefix: str) -> list[models.BaseConstraint]:
    return [
        models.CheckConstraint(name=f"{prefix}_limit_nonneg", condition=Q(limit__gte=0)),
        models.CheckConstraint(name=f"{prefix}_reserved_nonneg", condition=Q(reserved__gte=0)),
        models.CheckConstraint(
            name=f"{prefix}_outstanding_nonneg", condition=Q(outstanding_principal__gte=0)
        ),
        models.CheckConstraint(
            name=f"{prefix}_within_limit",
            condition=GreaterThanOrEqual(
                in_cents(F("limit") - F("outstanding_principal") - F("reserved")), 0
            ),
        ),
    ]


class ProgramStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"


class Program(models.Model):
    """A bank's financing program with one core enterprise, and its terms."""

    bank = models.ForeignKey(Bank, on_delete=models.PROTECT, related_name="programs")
    enterprise = models.ForeignKey(
        CoreEnterprise, on_delete=models.PROTECT, related_name="programs"
    )
    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=ProgramStatus, default=ProgramStatus.ACTIVE)
    currency = models.CharField(max_length=3, default="CNY")
    advance_rate = models.DecimalField(max_digits=5, decimal_places=4)
    limit = money()
    outstanding_principal = money(default=Decimal("0.00"))
    reserved = money(default=Decimal("0.00"))
    min_principal = money(default=Decimal("1000.00"))
    max_principal = money()
    tenor_days = models.PositiveIntegerField(default=90)
    annual_rate = rate()
    day_count = models.CharField(max_length=8, choices=DayCount, default=DayCount.ACT_360)
    grace_days = models.PositiveIntegerField(default=3)
    penalty_rate = rate()
    max_order_age_days = models.PositiveIntegerField(default=90)
    max_dpd_tolerated = models.PositiveIntegerField(default=0)
    auto_approve_limit = money()
    auto_approve_grade = models.CharField(max_length=1, choices=Grade, default=Grade.C)
    maker_checker_threshold = money()
    review_hold_hours = models.PositiveIntegerField(default=48)
    # Rule codes this program sends to review instead of declining (lending.engine.REFERABLE_RULES).
    refer_rules = models.JSONField(default=list, blank=True)
    time_zone = models.CharField(max_length=64, default="Asia/Shanghai")
    holiday_country = models.CharField(max_length=2, default="CN")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("financing program")
        verbose_name_plural = _("financing programs")
        ordering = ["code"]
        constraints = [
            *headroom_constraints("program"),
            models.CheckConstraint(
                name="program_advance_rate_range",
                condition=Q(advance_rate__gt=0) & Q(advance_rate__lte=1),
            ),
            models.CheckConstraint(
                name="program_min_le_max", condition=Q(min_principal__lte=F("max_principal"))
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def available(self) -> Decimal:
        return self.limit - self.outstanding_principal - self.reserved


class CreditLine(models.Model):
    """An agent's line in a program."""

    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="credit_lines")
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="credit_lines")
    limit = money()
    outstanding_principal = money(default=Decimal("0.00"))
    reserved = money(default=Decimal("0.00"))
    frozen = models.BooleanField(default=False)
    frozen_reason = models.CharField(max_length=500, blank=True)
    risk_grade = models.CharField(max_length=1, choices=Grade, default=Grade.C)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("credit line")
        verbose_name_plural = _("credit lines")
        ordering = ["program_id", "agent_id"]
        constraints = [
            *headroom_constraints("line"),
            models.UniqueConstraint(fields=["agent", "program"], name="uniq_line_agent_program"),
        ]

    def __str__(self) -> str:
        return f"line {self.agent_id}@{self.program_id}"

    @property
    def available(self) -> Decimal:
        return self.limit - self.outstanding_principal - self.reserved


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


class ReviewKind(models.TextChoices):
    REFERRAL = "referral", "Referred request"
    DISBURSEMENT_FAILED = "disbursement_failed", "Failed disbursement"
    ACCELERATED = "accelerated", "Accelerated loan"
    CLAIM_DISPUTE = "claim_dispute", "Disputed guarantee claim"
    CLAIM_ESCALATED = "claim_escalated", "Guarantee claim unpaid past its window"
    CAP_EXHAUSTED = "cap_exhausted", "Guarantee cap exhausted"


class ReviewStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLAIMED = "claimed", "Claimed"
    AWAITING_SECOND_APPROVAL = "awaiting_second_approval", "Awaiting second approval"
    APPROVED = "approved", "Approved"
    DECLINED = "declined", "Declined"
    EXPIRED = "expired", "Expired"
    CLOSED = "closed", "Closed"


REVIEW_OPEN = [ReviewStatus.OPEN, ReviewStatus.CLAIMED, ReviewStatus.AWAITING_SECOND_APPROVAL]


class Review(models.Model):
    """A case on the risk review queue."""

    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="reviews")
    kind = models.CharField(max_length=24, choices=ReviewKind, default=ReviewKind.REFERRAL)
    status = models.CharField(max_length=32, choices=ReviewStatus, default=ReviewStatus.OPEN)
    requires_second_approval = models.BooleanField(default=False)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    first_approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    first_approved_at = models.DateTimeField(null=True, blank=True)
    second_approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    second_approved_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decline_reason = models.CharField(max_length=64, blank=True)
    notes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("review case")
        verbose_name_plural = _("review cases")
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["loan", "kind"],
                condition=Q(status__in=REVIEW_OPEN),
                name="uniq_open_review_per_loan_kind",
            ),
            models.CheckConstraint(
                name="review_second_approver_differs",
                condition=Q(second_approver__isnull=True) | ~Q(second_approver=F("first_approver")),
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="review_status_created_idx")]

    def __str__(self) -> str:
        return f"review {self.pk} ({self.kind}, {self.status})"


class AuditLog(models.Model):
    """Append-only record of who changed what: decisions, reviews, lines, programs, money."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=100)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("audit trail entry")
        verbose_name_plural = _("audit trail")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object_idx")]
        # Append-only on PostgreSQL: an UPDATE or DELETE of an audit row raises.
        triggers = [
            pgtrigger.Protect(name="audit_append_only_update", operation=pgtrigger.Update),
            pgtrigger.Protect(name="audit_append_only_delete", operation=pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.object_type}:{self.object_id}"
