"""Lending: review cases on the risk queue, and the append-only audit trail."""

from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from .loans import Loan


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
