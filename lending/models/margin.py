"""Tripartite margin: an agent's margin account per program, its movements, its withdrawals.

See ``lending.models.tripartite`` for the agreement these belong to and docs/tripartite.md.
"""

from __future__ import annotations

from decimal import Decimal

import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from orders.models import Agent

from .columns import money
from .credit import Program
from .ledger import JournalEntry
from .loans import Loan

ZERO = Decimal("0.00")


class MarginAccount(models.Model):
    """An agent's margin under one program. ``reference`` is what bank credits quote to land here."""

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="margin_accounts")
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="margin_accounts")
    currency = models.CharField(max_length=3)
    reference = models.CharField(max_length=32)  # unique: see Meta
    free = money(default=ZERO)
    committed = money(default=ZERO)
    security = money(default=ZERO)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("margin account")
        verbose_name_plural = _("margin accounts")
        ordering = ["program_id", "agent_id"]
        constraints = [
            models.UniqueConstraint(fields=["program", "agent"], name="uniq_margin_program_agent"),
            models.UniqueConstraint(fields=["reference"], name="uniq_margin_reference"),
            models.CheckConstraint(
                name="margin_balances_nonneg",
                condition=Q(free__gte=0) & Q(committed__gte=0) & Q(security__gte=0),
            ),
        ]
        indexes = [models.Index(fields=["agent"], name="margin_agent_idx")]

    def __str__(self) -> str:
        return f"margin {self.reference}"


class MarginMovementKind(models.TextChoices):
    DEPOSIT = "deposit", "Deposit"  # + free
    COMMIT = "commit", "Committed to a financing"  # free -> committed (margin + security)
    UNCOMMIT = "uncommit", "Freed (declined, expired or failed)"  # committed -> free
    PAY_OUT = "pay_out", "Paid to the core enterprise"  # - committed (margin), at disbursement
    SECURITY_HOLD = "security_hold", "Security deposit held"  # committed -> security
    SECURITY_RELEASE = "security_release", "Security deposit released"  # security -> free
    SECURITY_APPLY = "security_apply", "Security deposit applied"  # - security, at default
    WITHDRAW = "withdraw", "Withdrawn"  # - free
    WITHDRAW_REVERSED = "withdraw_reversed", "Withdrawal returned"  # + free


class MarginSource(models.TextChoices):
    API = "api", "Recorded by operations"
    BANK_STATEMENT = "bank_statement", "Bank statement"
    SYSTEM = "system", "Financing"


class MarginMovement(models.Model):
    """One change to a margin account. Append-only; its amount is always positive."""

    account = models.ForeignKey(MarginAccount, on_delete=models.PROTECT, related_name="movements")
    kind = models.CharField(max_length=20, choices=MarginMovementKind)
    amount = money()
    loan = models.ForeignKey(
        Loan, null=True, blank=True, on_delete=models.PROTECT, related_name="margin_movements"
    )
    withdrawal = models.ForeignKey(
        "MarginWithdrawal",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="movements",
    )
    value_date = models.DateField()
    # The deposit's reference (bank reference of the credit, or the one operations gave).
    reference = models.CharField(max_length=64, blank=True)
    source = models.CharField(max_length=16, choices=MarginSource, default=MarginSource.SYSTEM)
    journal_entry = models.ForeignKey(
        JournalEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("margin movement")
        verbose_name_plural = _("margin movements")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(name="margin_movement_positive", condition=Q(amount__gt=0)),
            models.UniqueConstraint(
                fields=["kind", "reference"],
                condition=~Q(reference=""),
                name="uniq_margin_movement_reference",
            ),
            # A financing commits, frees, pays out, holds... its margin once each.
            models.UniqueConstraint(
                fields=["loan", "kind"],
                condition=Q(loan__isnull=False),
                name="uniq_margin_movement_loan_kind",
            ),
        ]
        indexes = [models.Index(fields=["account", "-created_at"], name="margin_movement_acct_idx")]
        triggers = [
            pgtrigger.Protect(name="margin_movement_no_update", operation=pgtrigger.Update),
            pgtrigger.Protect(name="margin_movement_no_delete", operation=pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} ({self.account_id})"


class WithdrawalStatus(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    PENDING = "pending", "Pending"  # approved (or below the threshold): to send to the bank
    SENT = "sent", "Sent"
    SETTLED = "settled", "Settled"
    FAILED = "failed", "Failed"  # the bank refused it: the margin went back to free
    REJECTED = "rejected", "Rejected"  # the checker refused it: the margin went back to free


class MarginWithdrawal(models.Model):
    """Free margin paid back to the agent through the bank adapter (an outbox row, like a
    disbursement). The amount leaves ``free`` when requested and returns if refused or failed."""

    account = models.ForeignKey(MarginAccount, on_delete=models.PROTECT, related_name="withdrawals")
    amount = money()
    currency = models.CharField(max_length=3)
    end_to_end_id = models.CharField(max_length=35)  # unique: see Meta
    creditor_name = models.CharField(max_length=200)
    creditor_account = models.CharField(max_length=40)
    creditor_bank = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=24, choices=WithdrawalStatus)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField()
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    bank_reference = models.CharField(max_length=64, blank=True)
    bank_reason_code = models.CharField(max_length=16, blank=True)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("margin withdrawal")
        verbose_name_plural = _("margin withdrawals")
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.CheckConstraint(name="withdrawal_amount_positive", condition=Q(amount__gt=0)),
            models.UniqueConstraint(fields=["end_to_end_id"], name="uniq_withdrawal_e2e"),
            models.CheckConstraint(
                name="withdrawal_checker_differs",
                condition=Q(approved_by__isnull=True) | ~Q(approved_by=F("requested_by")),
            ),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="withdrawal_status_idx")]

    def __str__(self) -> str:
        return f"withdrawal {self.end_to_end_id} {self.amount} ({self.status})"
