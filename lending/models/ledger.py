"""The double-entry ledger: accounts, journal entries, journal lines. Append-only.

Every entry's debits equal its credits. On PostgreSQL the database enforces it: a deferred
constraint trigger checks each entry's sum at commit, and UPDATE or DELETE of a journal row is
refused. Mistakes are corrected with reversing entries. Each entry carries an idempotency key
(``disburse:<loan>``, ``repay:<reference>``...), so posting twice posts once.
"""

from __future__ import annotations

from decimal import Decimal

import pgtrigger
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .columns import money
from .credit import Program
from .loans import Loan


class AccountKind(models.TextChoices):
    ASSET = "asset", "Asset"
    LIABILITY = "liability", "Liability"
    INCOME = "income", "Income"
    EXPENSE = "expense", "Expense"


class AccountCode(models.TextChoices):
    SETTLEMENT = "settlement", "Settlement (bank cash)"
    PRINCIPAL_RECEIVABLE = "principal_receivable", "Principal receivable"
    INTEREST_RECEIVABLE = "interest_receivable", "Interest receivable"
    PENALTY_RECEIVABLE = "penalty_receivable", "Penalty receivable"
    AGENT_OVERPAYMENTS = "agent_overpayments", "Agent overpayments"
    MARGIN_FREE = "margin_free", "Agent margin (free)"
    MARGIN_COMMITTED = "margin_committed", "Agent margin (committed to financings)"
    SECURITY_DEPOSITS = "security_deposits", "Security deposits"
    GUARANTEE_RECEIVABLE = "guarantee_receivable", "Guarantee claims receivable"
    # Money the bank booked to us that no loan claims yet (the unapplied-credit queue).
    UNAPPLIED_CREDITS = "unapplied_credits", "Unapplied credits"
    INTEREST_INCOME = "interest_income", "Interest income"
    PENALTY_INCOME = "penalty_income", "Penalty income"
    CREDIT_LOSSES = "credit_losses", "Credit losses"


ACCOUNT_KINDS = {
    AccountCode.SETTLEMENT: AccountKind.ASSET,
    AccountCode.PRINCIPAL_RECEIVABLE: AccountKind.ASSET,
    AccountCode.INTEREST_RECEIVABLE: AccountKind.ASSET,
    AccountCode.PENALTY_RECEIVABLE: AccountKind.ASSET,
    AccountCode.AGENT_OVERPAYMENTS: AccountKind.LIABILITY,
    AccountCode.MARGIN_FREE: AccountKind.LIABILITY,
    AccountCode.MARGIN_COMMITTED: AccountKind.LIABILITY,
    AccountCode.SECURITY_DEPOSITS: AccountKind.LIABILITY,
    AccountCode.GUARANTEE_RECEIVABLE: AccountKind.ASSET,
    AccountCode.UNAPPLIED_CREDITS: AccountKind.LIABILITY,
    AccountCode.INTEREST_INCOME: AccountKind.INCOME,
    AccountCode.PENALTY_INCOME: AccountKind.INCOME,
    AccountCode.CREDIT_LOSSES: AccountKind.EXPENSE,
}


class EntryKind(models.TextChoices):
    DISBURSEMENT = "disbursement", "Disbursement settled"
    INTEREST_ACCRUAL = "interest_accrual", "Daily interest accrual"
    PENALTY_ACCRUAL = "penalty_accrual", "Daily penalty accrual"
    REPAYMENT = "repayment", "Repayment received"
    OVERPAYMENT_REFUND = "overpayment_refund", "Overpayment refunded"
    WRITE_OFF = "write_off", "Write-off"
    REVERSAL = "reversal", "Reversal"
    MARGIN_DEPOSIT = "margin_deposit", "Margin deposited"
    MARGIN_COMMIT = "margin_commit", "Margin committed to a financing"
    MARGIN_UNCOMMIT = "margin_uncommit", "Margin freed from a financing"
    MARGIN_WITHDRAWAL = "margin_withdrawal", "Margin withdrawn"
    SECURITY_HOLD = "security_hold", "Security deposit held"
    SECURITY_RELEASE = "security_release", "Security deposit released"
    SECURITY_APPLIED = "security_applied", "Security deposit applied"
    GUARANTEE_CLAIM = "guarantee_claim", "Guarantee claim raised"
    GUARANTEE_PAYMENT = "guarantee_payment", "Guarantee claim paid"
    UNAPPLIED_CREDIT = "unapplied_credit", "Credit received, not yet applied"
    UNAPPLIED_TRANSFER = "unapplied_transfer", "Unapplied credit applied or refunded"


_APPEND_ONLY = [
    pgtrigger.Protect(name="append_only_update", operation=pgtrigger.Update),
    pgtrigger.Protect(name="append_only_delete", operation=pgtrigger.Delete),
]


class JournalEntry(models.Model):
    kind = models.CharField(max_length=24, choices=EntryKind)
    idempotency_key = models.CharField(max_length=128, unique=True)
    business_date = models.DateField()
    currency = models.CharField(max_length=3)
    loan = models.ForeignKey(
        Loan, null=True, blank=True, on_delete=models.PROTECT, related_name="journal_entries"
    )
    program = models.ForeignKey(
        Program, null=True, blank=True, on_delete=models.PROTECT, related_name="journal_entries"
    )
    reversal_of = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )
    description = models.CharField(max_length=200, blank=True)
    posted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("journal entry")
        verbose_name_plural = _("journal entries")
        ordering = ["business_date", "id"]
        triggers = _APPEND_ONLY
        indexes = [models.Index(fields=["loan", "business_date"], name="entry_loan_date_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.idempotency_key}"


class JournalLine(models.Model):
    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="lines")
    # The chart of accounts is fixed in code (AccountCode), so lines name their account.
    account = models.CharField(max_length=32, choices=AccountCode)
    loan = models.ForeignKey(
        Loan, null=True, blank=True, on_delete=models.PROTECT, related_name="journal_lines"
    )
    currency = models.CharField(max_length=3)
    debit = money(default=Decimal("0.00"))
    credit = money(default=Decimal("0.00"))

    class Meta:
        verbose_name = _("journal line")
        verbose_name_plural = _("journal lines")
        ordering = ["entry_id", "id"]
        constraints = [
            models.CheckConstraint(
                name="journal_line_one_side",
                condition=(Q(debit__gt=0) & Q(credit=0)) | (Q(credit__gt=0) & Q(debit=0)),
            ),
        ]
        indexes = [models.Index(fields=["loan", "account"], name="line_loan_account_idx")]
        triggers = [
            *_APPEND_ONLY,
            pgtrigger.Trigger(
                name="entry_balances_at_commit",
                operation=pgtrigger.Insert,
                when=pgtrigger.After,
                timing=pgtrigger.Deferred,
                func=(
                    "IF (SELECT COALESCE(SUM(debit), 0) - COALESCE(SUM(credit), 0) "
                    "FROM lending_journalline WHERE entry_id = NEW.entry_id) <> 0 THEN "
                    "RAISE EXCEPTION 'journal entry % does not balance', NEW.entry_id "
                    "USING ERRCODE = 'check_violation'; "
                    "END IF; RETURN NULL;"
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account} Dr {self.debit} Cr {self.credit}"
