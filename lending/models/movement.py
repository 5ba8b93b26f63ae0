"""Money movement: disbursements (the outbox to the bank), repayments, daily accruals, COB runs.

- ``Disbursement`` is the durable record behind paying a loan out: a sweeper re-dispatches any
  that are not settled or failed, and its ``end_to_end_id`` makes the bank call idempotent.
- ``Accrual`` is the interest/penalty sub-ledger: one active row per (loan, date, kind), enforced
  by a partial unique index; a backdated repayment marks rows reversed and replays them. The
  general ledger gets one entry per (program, date, kind) from close of business.
- ``Repayment`` records money received against a loan and how it was allocated (waterfall:
  penalty, interest, principal, overpayment). Its ``reference`` is unique: a repeat is ignored.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.db.models.lookups import Exact
from django.utils.translation import gettext_lazy as _

from .columns import in_cents, money, numerator_column
from .credit import Program
from .ledger import JournalEntry
from .loans import Loan


class DisbursementStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # recorded, not yet sent
    SENT = "sent", "Sent"  # the bank accepted it (or may have): settle by querying
    SETTLED = "settled", "Settled"
    FAILED = "failed", "Failed"


class Disbursement(models.Model):
    loan = models.OneToOneField(Loan, on_delete=models.PROTECT, related_name="disbursement")
    end_to_end_id = models.CharField(max_length=35)  # unique: see Meta (no LIKE index needed)
    amount = money()
    currency = models.CharField(max_length=3)
    creditor_name = models.CharField(max_length=200)
    creditor_account = models.CharField(max_length=40)
    creditor_bank = models.CharField(max_length=200, blank=True)
    status = models.CharField(
        max_length=16, choices=DisbursementStatus, default=DisbursementStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    bank_reference = models.CharField(max_length=64, blank=True)
    bank_reason_code = models.CharField(max_length=16, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("disbursement")
        verbose_name_plural = _("disbursements")
        constraints = [
            models.CheckConstraint(name="disbursement_amount_positive", condition=Q(amount__gt=0)),
            models.UniqueConstraint(fields=["end_to_end_id"], name="uniq_disbursement_e2e"),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="disb_status_next_idx")]

    def __str__(self) -> str:
        return f"disbursement {self.end_to_end_id} ({self.status})"


class AccrualKind(models.TextChoices):
    INTEREST = "interest", "Interest"
    PENALTY = "penalty", "Penalty"


class Accrual(models.Model):
    # No index of its own on ``loan``: the partial unique index below starts with it and serves
    # every per-loan lookup (all of them ask for active rows); a million inserts a night pay for
    # each extra index.
    loan = models.ForeignKey(
        Loan, on_delete=models.PROTECT, related_name="accruals", db_index=False
    )
    business_date = models.DateField()
    kind = models.CharField(max_length=8, choices=AccrualKind)
    base = money()  # the principal the day's accrual was computed on
    annual_rate = models.DecimalField(max_digits=9, decimal_places=6)
    numerator = numerator_column()  # sum of base x annual_rate over the nights through this date
    amount = money()  # posted for this date: round(numerator / basis) - previously posted
    reversed_at = models.DateTimeField(null=True, blank=True)
    journal_entry = models.ForeignKey(
        JournalEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="accruals"
    )

    class Meta:
        verbose_name = _("accrual")
        verbose_name_plural = _("accruals")
        constraints = [
            models.UniqueConstraint(
                fields=["loan", "business_date", "kind"],
                condition=Q(reversed_at__isnull=True),
                name="uniq_active_accrual_per_loan_date_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.loan_id}@{self.business_date}: {self.amount}"


class CobRun(models.Model):
    """Close of business for one program and business date: runs once."""

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="cob_runs")
    business_date = models.DateField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    loans_accrued = models.PositiveIntegerField(default=0)
    interest_total = money(default=Decimal("0.00"))
    penalty_total = money(default=Decimal("0.00"))

    class Meta:
        verbose_name = _("close of business run")
        verbose_name_plural = _("close of business runs")
        ordering = ["program_id", "business_date"]
        constraints = [
            models.UniqueConstraint(
                fields=["program", "business_date"], name="uniq_cob_program_date"
            ),
        ]

    def __str__(self) -> str:
        return f"COB {self.program_id} {self.business_date}"


class RepaymentSource(models.TextChoices):
    API = "api", "Recorded through the API"
    BANK_STATEMENT = "bank_statement", "Bank statement"


class Repayment(models.Model):
    loan = models.ForeignKey(Loan, on_delete=models.PROTECT, related_name="repayments")
    reference = models.CharField(max_length=64, unique=True)
    amount = money()
    currency = models.CharField(max_length=3)
    value_date = models.DateField()
    source = models.CharField(max_length=16, choices=RepaymentSource)
    to_penalty = money(default=Decimal("0.00"))
    to_interest = money(default=Decimal("0.00"))
    to_principal = money(default=Decimal("0.00"))
    to_overpayment = money(default=Decimal("0.00"))
    backdated = models.BooleanField(default=False)
    journal_entry = models.ForeignKey(
        JournalEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="repayments"
    )
    recorded_by = models.CharField(max_length=100)
    received_at = models.DateTimeField()

    class Meta:
        verbose_name = _("repayment")
        verbose_name_plural = _("repayments")
        ordering = ["value_date", "id"]
        constraints = [
            models.CheckConstraint(name="repayment_amount_positive", condition=Q(amount__gt=0)),
            models.CheckConstraint(
                name="repayment_allocation_sums",
                condition=Exact(
                    in_cents(
                        models.F("amount")
                        - models.F("to_penalty")
                        - models.F("to_interest")
                        - models.F("to_principal")
                        - models.F("to_overpayment")
                    ),
                    0,
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"repayment {self.reference} {self.amount}"
