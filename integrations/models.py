"""Edge state: sources the platform polls for orders."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from orders.models import CoreEnterprise


class OrderFeedSource(models.Model):
    """A core enterprise's sales-system endpoint that we poll for orders with a cursor.

    The cursor is advanced in the same transaction that applies a page, so a crash between pages
    re-reads at most one page, and re-reading a page is harmless (versions make it idempotent).
    """

    enterprise = models.ForeignKey(
        CoreEnterprise, on_delete=models.CASCADE, related_name="feed_sources"
    )
    url = models.URLField(max_length=500)
    # Encrypted Authorization header value the sales system expects (optional).
    auth_header_encrypted = models.TextField(blank=True)
    cursor = models.CharField(max_length=500, blank=True)
    page_size = models.PositiveIntegerField(default=500)
    enabled = models.BooleanField(default=True)
    poll_interval_seconds = models.PositiveIntegerField(default=60)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        verbose_name = _("order feed source")
        verbose_name_plural = _("order feed sources")

    def __str__(self) -> str:
        return f"{self.enterprise.code} <- {self.url}"


class SandboxTransferStatus(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    SETTLED = "settled", "Settled"
    REJECTED = "rejected", "Rejected"


class SandboxTransfer(models.Model):
    """A credit transfer as the sandbox bank holds it: one row per end-to-end id, ever."""

    end_to_end_id = models.CharField(max_length=35, unique=True)
    bank_reference = models.CharField(max_length=64, unique=True)
    amount = models.DecimalField(max_digits=18, decimal_places=2)
    currency = models.CharField(max_length=3)
    debtor_account = models.CharField(max_length=40)
    creditor_name = models.CharField(max_length=200)
    creditor_account = models.CharField(max_length=40)
    status = models.CharField(max_length=16, choices=SandboxTransferStatus)
    reason_code = models.CharField(max_length=16, blank=True)
    received_at = models.DateTimeField()
    settle_at = models.DateTimeField()
    settled_at = models.DateTimeField(null=True, blank=True)
    requests_received = models.PositiveIntegerField(default=1)

    def __str__(self) -> str:
        return f"{self.end_to_end_id} {self.amount} {self.status}"


class SandboxIncomingCredit(models.Model):
    """Money the sandbox bank received into the lender's account (what a statement lists)."""

    bank_reference = models.CharField(max_length=64, unique=True)
    amount = models.DecimalField(max_digits=18, decimal_places=2)
    currency = models.CharField(max_length=3)
    value_date = models.DateField()
    booked_at = models.DateTimeField()
    debtor_name = models.CharField(max_length=200, blank=True)
    debtor_account = models.CharField(max_length=40, blank=True)
    remittance_info = models.CharField(max_length=140, blank=True)

    def __str__(self) -> str:
        return f"{self.bank_reference} {self.amount} {self.remittance_info}"


class StatementCursor(models.Model):
    """How far incoming credits have been imported from the bank adapter."""

    name = models.CharField(max_length=64, unique=True)
    imported_through = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.imported_through}"


class Notification(models.Model):
    """A message to an agent (reminder, overdue notice), recorded whether or not it was sent."""

    dedup_key = models.CharField(max_length=128, unique=True)
    kind = models.CharField(max_length=32)
    agent = models.ForeignKey(
        "orders.Agent", on_delete=models.PROTECT, related_name="notifications"
    )
    loan_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    channel = models.CharField(max_length=16, default="email")
    recipient = models.CharField(max_length=254)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.kind} -> {self.recipient}"


class WebhookEndpoint(models.Model):
    """Where a core enterprise wants loan events delivered, and the secret to sign them."""

    enterprise = models.OneToOneField(
        CoreEnterprise, on_delete=models.CASCADE, related_name="webhook_endpoint"
    )
    url = models.URLField(max_length=500)
    secret_encrypted = models.TextField()
    active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"{self.enterprise.code} -> {self.url}"


class OutboundEventStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (retries exhausted)"


class OutboundEvent(models.Model):
    """A signed event to a core enterprise (loan status changes); its ``event_id`` de-duplicates."""

    event_id = models.CharField(max_length=64, unique=True)
    enterprise = models.ForeignKey(
        CoreEnterprise, on_delete=models.CASCADE, related_name="outbound_events"
    )
    type = models.CharField(max_length=64)
    payload = models.JSONField()
    status = models.CharField(
        max_length=16, choices=OutboundEventStatus, default=OutboundEventStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="outbound_due_idx")]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id} ({self.status})"


# Bank files, statement entries, unapplied credits and reconciliation (issue 21) live in their own
# module; importing them here registers them with the app.
from .bank_models import (  # noqa: E402, F401
    BankFile,
    BankStatement,
    OutboundPayment,
    ReconciliationBreak,
    ReconciliationRun,
    StatementEntry,
    UnappliedCredit,
)
