"""Bank files and what they carry: the files themselves, the payments we send in them, the
bank's statement entries, the unapplied-credit queue and the daily reconciliation.

* ``BankFile``: one row per file written or read, keyed by its SHA-256 (unique: a file is imported
  once, whoever imports it and however often it is delivered). A refused file is kept as a row
  with its quarantine reason, so a re-delivery of the same bytes is recognised too.
* ``OutboundPayment``: a credit transfer waiting for (or sent in) a pain.001: a disbursement
  (same end-to-end id) or a refund of an unapplied credit. Its status is what the file bank
  adapter answers to ``transfer_status``.
* ``StatementEntry``: one booking on a bank account (camt.054 or camt.053 ``Ntry``), unique per
  bank and bank entry reference (``AcctSvcrRef``), with what it was matched to and the ledger
  entries (``journal_keys``) that book it: the reconciliation works from those links. A
  batched credit that is split keeps its row (``split``) and gains one row per payment
  (``detail_index`` 1..n, same reference), each matched and booked on its own.
* ``BankStatement``: the booked balances of one account on one day (a camt.053 ``Stmt``).
* ``UnappliedCredit``: a credit no loan claimed; operations apply it (to a loan or a margin
  account of its bank) or refund it.
* ``ReconciliationRun`` / ``ReconciliationBreak``: the result of reconciling an account and day.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from lending.models import Bank, Disbursement, GuaranteeClaim, Loan, MarginAccount


def _money(**kwargs: object) -> models.DecimalField:
    return models.DecimalField(max_digits=18, decimal_places=2, **kwargs)  # type: ignore[arg-type]


class BankFileDirection(models.TextChoices):
    OUTBOUND = "outbound", _("Outbound")
    INBOUND = "inbound", _("Inbound")


class BankFileKind(models.TextChoices):
    PAIN_001 = "pain.001", "pain.001"
    PAIN_002 = "pain.002", "pain.002"
    CAMT_053 = "camt.053", "camt.053"
    CAMT_054 = "camt.054", "camt.054"
    UNKNOWN = "unknown", _("Unknown")


class BankFileStatus(models.TextChoices):
    WRITTEN = "written", _("Written")  # outbound, in the outbound directory
    IMPORTED = "imported", _("Imported")
    QUARANTINED = "quarantined", _("Quarantined")


class BankFile(models.Model):
    direction = models.CharField(max_length=8, choices=BankFileDirection)
    kind = models.CharField(max_length=8, choices=BankFileKind)
    bank = models.ForeignKey(Bank, on_delete=models.PROTECT, related_name="bank_files")
    message_id = models.CharField(max_length=35, blank=True)
    sha256 = models.CharField(max_length=64, unique=True)
    path = models.CharField(max_length=500)
    status = models.CharField(max_length=12, choices=BankFileStatus)
    transactions = models.PositiveIntegerField(default=0)
    control_sum = _money(null=True, blank=True)
    created_at = models.DateTimeField()
    imported_at = models.DateTimeField(null=True, blank=True)
    quarantine_reason = models.CharField(max_length=32, blank=True)
    quarantine_detail = models.TextField(blank=True)

    class Meta:
        verbose_name = _("bank file")
        verbose_name_plural = _("bank files")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["bank", "kind", "message_id"], name="bankfile_msg_idx")]

    def __str__(self) -> str:
        return f"{self.direction} {self.kind} {self.message_id or self.sha256[:12]}"


class PaymentKind(models.TextChoices):
    DISBURSEMENT = "disbursement", _("Disbursement")
    REFUND = "refund", _("Refund of an unapplied credit")


class PaymentStatus(models.TextChoices):
    QUEUED = "queued", _("Queued for the next file")
    EXPORTED = "exported", _("In a payment file")
    SETTLED = "settled", _("Settled")
    REJECTED = "rejected", _("Rejected")
    RETURNED = "returned", _("Settled, then returned by the bank")


class OutboundPayment(models.Model):
    bank = models.ForeignKey(Bank, on_delete=models.PROTECT, related_name="outbound_payments")
    kind = models.CharField(max_length=16, choices=PaymentKind)
    end_to_end_id = models.CharField(max_length=35, unique=True)
    amount = _money()
    currency = models.CharField(max_length=3)
    debtor_account = models.CharField(max_length=40)
    creditor_name = models.CharField(max_length=200)
    creditor_account = models.CharField(max_length=40)
    creditor_bank = models.CharField(max_length=200, blank=True)
    remittance = models.CharField(max_length=140, blank=True)
    status = models.CharField(max_length=12, choices=PaymentStatus, default=PaymentStatus.QUEUED)
    reason_code = models.CharField(max_length=16, blank=True)
    bank_file = models.ForeignKey(
        BankFile, null=True, blank=True, on_delete=models.PROTECT, related_name="payments"
    )
    created_at = models.DateTimeField()
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("outbound payment")
        verbose_name_plural = _("outbound payments")
        constraints = [
            models.CheckConstraint(name="outbound_amount_positive", condition=Q(amount__gt=0))
        ]
        indexes = [models.Index(fields=["bank", "status"], name="outbound_bank_status_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.end_to_end_id} {self.amount} ({self.status})"


class BankStatement(models.Model):
    """One account's day as the bank states it (a camt.053 ``Stmt``)."""

    bank = models.ForeignKey(Bank, on_delete=models.PROTECT, related_name="statements")
    bank_file = models.ForeignKey(BankFile, on_delete=models.PROTECT, related_name="statements")
    account = models.CharField(max_length=40)
    currency = models.CharField(max_length=3)
    statement_date = models.DateField()
    opening_balance = _money()  # signed: OPBD (or PRCD)
    closing_balance = _money()  # signed: CLBD

    class Meta:
        verbose_name = _("bank statement")
        verbose_name_plural = _("bank statements")
        constraints = [
            models.UniqueConstraint(
                fields=["bank", "account", "statement_date"], name="uniq_statement_account_day"
            )
        ]

    def __str__(self) -> str:
        return f"{self.bank_id} {self.account} {self.statement_date}"


class EntryStatus(models.TextChoices):
    MATCHED = "matched", _("Matched (a loan, margin account or claim), to record")
    APPLIED = "applied", _("Applied to a loan")
    PAYMENT = "payment", _("Our payment")
    UNAPPLIED = "unapplied", _("Unapplied credit")
    UNMATCHED_DEBIT = "unmatched_debit", _("Debit we did not order")
    RETURNED = "returned", _("A payment of ours that came back")
    SPLIT = "split", _("Batched credit, split into its payments")
    NOT_BOOKED = "not_booked", _("Not booked (pending or information)")


class StatementEntry(models.Model):
    bank = models.ForeignKey(Bank, on_delete=models.PROTECT, related_name="statement_entries")
    bank_file = models.ForeignKey(BankFile, on_delete=models.PROTECT, related_name="entries")
    statement = models.ForeignKey(
        BankStatement, null=True, blank=True, on_delete=models.PROTECT, related_name="entries"
    )
    account = models.CharField(max_length=40)
    booking_date = models.DateField(null=True, blank=True)
    value_date = models.DateField(null=True, blank=True)
    amount = _money()
    currency = models.CharField(max_length=3)
    credit = models.BooleanField()  # CdtDbtInd: True credit, False debit
    reversal = models.BooleanField(default=False)
    entry_reference = models.CharField(max_length=35)  # AcctSvcrRef
    # 0: the bank's entry itself; 1..n: the n-th payment (TxDtls) of a batched credit that was
    # split (its entry row is ``split``; each part is matched and applied on its own).
    detail_index = models.PositiveSmallIntegerField(default=0)
    end_to_end_ids = models.JSONField(default=list, blank=True)
    remittance = models.CharField(max_length=500, blank=True)
    creditor_reference = models.CharField(max_length=35, blank=True)
    debtor_name = models.CharField(max_length=140, blank=True)
    debtor_account = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=16, choices=EntryStatus)
    loan = models.ForeignKey(
        Loan, null=True, blank=True, on_delete=models.PROTECT, related_name="statement_entries"
    )
    disbursement = models.ForeignKey(
        Disbursement, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # A credit quoting a margin account's (MG-...) or a guarantee claim's (GC-...) reference.
    margin_account = models.ForeignKey(
        MarginAccount, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    claim = models.ForeignKey(
        GuaranteeClaim, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The idempotency keys of the ledger entries that book this entry on the settlement account.
    journal_keys = models.JSONField(default=list, blank=True)

    class Meta:
        verbose_name = _("statement entry")
        verbose_name_plural = _("statement entries")
        ordering = ["booking_date", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["bank", "entry_reference", "detail_index"],
                name="uniq_statement_entry_bank_ref_part",
            ),
            models.CheckConstraint(name="statement_entry_amount_pos", condition=Q(amount__gt=0)),
        ]
        indexes = [
            models.Index(fields=["bank", "account", "booking_date"], name="entry_bank_day_idx")
        ]

    def __str__(self) -> str:
        sign = "+" if self.credit else "-"
        return f"{self.key_reference} {sign}{self.amount}"

    @property
    def key_reference(self) -> str:
        """The entry reference, with the part's index for a part of a split batched credit:
        what keys its repayment and its ledger entries (applied once per part)."""
        if self.detail_index:
            return f"{self.entry_reference}/{self.detail_index}"
        return self.entry_reference

    @property
    def signed_amount(self) -> Decimal:
        return self.amount if self.credit else -self.amount


class UnappliedStatus(models.TextChoices):
    OPEN = "open", _("Open")
    APPLIED = "applied", _("Applied")
    REFUNDING = "refunding", _("Refund in payment")
    REFUNDED = "refunded", _("Refunded")


class UnappliedTarget(models.TextChoices):
    LOAN = "loan", _("Loan")
    MARGIN_ACCOUNT = "margin_account", _("Margin account")


class UnappliedCredit(models.Model):
    entry = models.OneToOneField(
        StatementEntry, on_delete=models.PROTECT, related_name="unapplied_credit"
    )
    bank = models.ForeignKey(Bank, on_delete=models.PROTECT, related_name="unapplied_credits")
    amount = _money()
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=200)
    status = models.CharField(max_length=12, choices=UnappliedStatus, default=UnappliedStatus.OPEN)
    target = models.CharField(max_length=16, choices=UnappliedTarget, blank=True)
    loan = models.ForeignKey(
        Loan, null=True, blank=True, on_delete=models.PROTECT, related_name="unapplied_credits"
    )
    margin_account = models.ForeignKey(
        MarginAccount,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="unapplied_credits",
    )
    refund_payment = models.OneToOneField(
        OutboundPayment, null=True, blank=True, on_delete=models.PROTECT, related_name="refund_of"
    )
    # Ledger entries that move the credit between accounts without touching the bank (the
    # transfer out of the suspense account and the repayment it pays): not statement entries.
    internal_keys = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=150, blank=True)

    class Meta:
        verbose_name = _("unapplied credit")
        verbose_name_plural = _("unapplied credits")
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(name="unapplied_amount_positive", condition=Q(amount__gt=0))
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="unapplied_status_idx")]

    def __str__(self) -> str:
        return f"unapplied {self.amount} {self.currency} ({self.status})"


class ReconciliationRun(models.Model):
    bank = models.ForeignKey(Bank, on_delete=models.PROTECT, related_name="reconciliations")
    account = models.CharField(max_length=40)
    statement_date = models.DateField()
    statement_opening = _money(null=True, blank=True)
    statement_closing = _money(null=True, blank=True)
    book_opening = _money()
    book_closing = _money()
    entries = models.PositiveIntegerField(default=0)
    breaks_count = models.PositiveIntegerField(default=0)
    ran_at = models.DateTimeField()

    class Meta:
        verbose_name = _("reconciliation run")
        verbose_name_plural = _("reconciliation runs")
        ordering = ["-statement_date", "-id"]

    def __str__(self) -> str:
        return f"reconciliation {self.account} {self.statement_date}: {self.breaks_count} breaks"


class BreakKind(models.TextChoices):
    NO_STATEMENT = "no_statement", _("No statement for the day")
    OPENING_BALANCE = "opening_balance", _("Opening balance differs from the book")
    CLOSING_BALANCE = "closing_balance", _("Closing balance differs from the book")
    ENTRY_NOT_IN_BOOK = "entry_not_in_book", _("Statement entry without a ledger posting")
    ENTRY_AMOUNT = "entry_amount", _("Statement entry and ledger posting differ")
    POSTING_NOT_IN_STATEMENT = "posting_not_in_statement", _("Ledger posting not on the statement")


class ReconciliationBreak(models.Model):
    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="breaks")
    kind = models.CharField(max_length=32, choices=BreakKind)
    reference = models.CharField(max_length=128, blank=True)
    statement_amount = _money(null=True, blank=True)
    book_amount = _money(null=True, blank=True)
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        verbose_name = _("reconciliation break")
        verbose_name_plural = _("reconciliation breaks")
        ordering = ["run_id", "id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.reference}"
