"""The tripartite agreement (bank, core enterprise, agent): terms, agreements, margin, goods, claims.

- ``TripartiteTerms`` (one per program) says whether the agreement applies and on what terms:
  margin ratio m, security ratio s, guarantee type, trigger, claim window, program cap.
- ``Agreement`` is an agent's signed agreement under a program (one active version at a time).
- ``TermsChange`` is a maker-checker proposal to change caps or ratios: one ops user proposes,
  another approves; only then do the terms or the agreement change.
- ``MarginAccount`` holds an agent's margin per program as ``free``, ``committed`` (reserved for
  financings not yet paid out) and ``security`` (cash collateral held until a loan is repaid);
  ``MarginMovement`` is its append-only history. ``MarginWithdrawal`` pays free margin back out.
  (``lending.models.margin``)
- ``GoodsHold`` is a financed order's goods under the bank's control; ``Release`` is a request to
  let some of them go, authorised only while ``released_value <= releasable_value``;
  ``ReleaseBreach`` records an order shipped or delivered beyond what was released.
  (``lending.models.goods``)
- ``GuaranteeClaim`` is the buyback or guarantee claim on the core enterprise for a loan.

Every balance here carries a CHECK that keeps it within bounds whatever the application does;
services move them with conditional updates or under the row locks of ``lending.locks``.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.lookups import GreaterThanOrEqual
from django.utils.translation import gettext_lazy as _

from orders.models import Agent, CoreEnterprise

from .columns import in_cents, money
from .credit import Program
from .loans import Loan

ZERO = Decimal("0.00")


def ratio(**kwargs: object) -> models.DecimalField:  # type: ignore[type-arg]
    return models.DecimalField(max_digits=5, decimal_places=4, **kwargs)  # type: ignore[arg-type]


class GuaranteeType(models.TextChoices):
    NONE = "none", "No guarantee"
    BUYBACK = "buyback", "Buyback of unreleased goods"
    JOINT = "joint", "Joint guarantee of the shortfall"


class TripartiteTerms(models.Model):
    """A program's tripartite terms. The advance rate stays on the program (typically 1 - m)."""

    program = models.OneToOneField(Program, on_delete=models.PROTECT, related_name="tripartite")
    enabled = models.BooleanField(default=False)
    margin_ratio = ratio(default=Decimal("0.0000"))
    security_ratio = ratio(default=Decimal("0.0000"))
    guarantee_type = models.CharField(
        max_length=16, choices=GuaranteeType, default=GuaranteeType.BUYBACK
    )
    trigger_dpd = models.PositiveIntegerField(default=60)
    claim_window_days = models.PositiveIntegerField(default=30)
    program_cap = money(default=ZERO)
    program_cap_used = money(default=ZERO)
    # A withdrawal of free margin above this needs a second person's approval.
    margin_withdraw_approval_threshold = money(default=ZERO)
    # Bumped by every applied change: a change proposal names the version it was made against.
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("tripartite terms")
        verbose_name_plural = _("tripartite terms")
        constraints = [
            models.CheckConstraint(
                name="terms_margin_ratio_range",
                condition=Q(margin_ratio__gte=0) & Q(margin_ratio__lt=1),
            ),
            models.CheckConstraint(
                name="terms_security_ratio_range",
                condition=Q(security_ratio__gte=0) & Q(security_ratio__lte=1),
            ),
            models.CheckConstraint(name="terms_trigger_positive", condition=Q(trigger_dpd__gte=1)),
            models.CheckConstraint(
                name="terms_window_positive", condition=Q(claim_window_days__gte=1)
            ),
            models.CheckConstraint(
                name="terms_cap_used_nonneg", condition=Q(program_cap_used__gte=0)
            ),
            models.CheckConstraint(
                name="terms_cap_used_within_cap",
                condition=GreaterThanOrEqual(in_cents(F("program_cap") - F("program_cap_used")), 0),
            ),
            models.CheckConstraint(
                name="terms_withdraw_threshold_nonneg",
                condition=Q(margin_withdraw_approval_threshold__gte=0),
            ),
        ]

    def __str__(self) -> str:
        return f"tripartite terms of program {self.program_id}"


class AgreementStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUPERSEDED = "superseded", "Superseded"
    TERMINATED = "terminated", "Terminated"


class Agreement(models.Model):
    """An agent's signed tripartite agreement under a program; a new version supersedes the old
    one (its cap usage carries over)."""

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="agreements")
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="agreements")
    version = models.PositiveIntegerField(default=1)
    signed_on = models.DateField()
    document_reference = models.CharField(max_length=100, blank=True)
    agent_cap = money(default=ZERO)
    agent_cap_used = money(default=ZERO)
    status = models.CharField(
        max_length=16, choices=AgreementStatus, default=AgreementStatus.ACTIVE
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("tripartite agreement")
        verbose_name_plural = _("tripartite agreements")
        ordering = ["program_id", "agent_id", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["program", "agent"],
                condition=Q(status=AgreementStatus.ACTIVE),
                name="uniq_active_agreement",
            ),
            models.UniqueConstraint(
                fields=["program", "agent", "version"], name="uniq_agreement_version"
            ),
            models.CheckConstraint(
                name="agreement_cap_used_nonneg", condition=Q(agent_cap_used__gte=0)
            ),
            models.CheckConstraint(
                name="agreement_cap_used_within_cap",
                condition=GreaterThanOrEqual(in_cents(F("agent_cap") - F("agent_cap_used")), 0),
            ),
            models.CheckConstraint(name="agreement_version_positive", condition=Q(version__gte=1)),
        ]
        indexes = [models.Index(fields=["agent", "status"], name="agreement_agent_status_idx")]

    def __str__(self) -> str:
        return f"agreement {self.agent_id}@{self.program_id} v{self.version} ({self.status})"


class TermsChangeStatus(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class TermsChange(models.Model):
    """A proposed change to a program's terms (``agreement`` empty) or to an agent's agreement.

    ``changes`` maps field names to the proposed values and ``before`` to the values when it was
    proposed (amounts and ratios as strings); approval by another person applies it, and is
    refused as stale when the target no longer has the ``before`` values.
    """

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="terms_changes")
    agreement = models.ForeignKey(
        Agreement, null=True, blank=True, on_delete=models.PROTECT, related_name="changes"
    )
    changes = models.JSONField(default=dict)
    before = models.JSONField(default=dict)
    status = models.CharField(
        max_length=24, choices=TermsChangeStatus, default=TermsChangeStatus.AWAITING_APPROVAL
    )
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    proposed_at = models.DateTimeField()
    reason = models.CharField(max_length=500, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name = _("tripartite terms change")
        verbose_name_plural = _("tripartite terms changes")
        ordering = ["-proposed_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["program"],
                condition=Q(status=TermsChangeStatus.AWAITING_APPROVAL, agreement__isnull=True),
                name="uniq_waiting_terms_change",
            ),
            models.UniqueConstraint(
                fields=["agreement"],
                condition=Q(status=TermsChangeStatus.AWAITING_APPROVAL),
                name="uniq_waiting_agreement_change",
            ),
            models.CheckConstraint(
                name="terms_change_checker_differs",
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=F("proposed_by")),
            ),
        ]

    def __str__(self) -> str:
        return f"terms change {self.pk} of program {self.program_id} ({self.status})"


class ClaimStatus(models.TextChoices):
    RAISED = "raised", "Raised"
    ACCEPTED = "accepted", "Accepted"
    DISPUTED = "disputed", "Disputed"
    PARTLY_PAID = "partly_paid", "Partly paid"
    PAID = "paid", "Paid"
    ESCALATED = "escalated", "Escalated"
    CAP_EXHAUSTED = "cap_exhausted", "Cap exhausted"


class GuaranteeClaim(models.Model):
    """The claim on the core enterprise for one loan past the trigger (one per loan, ever).

    ``owed`` is what the agent owed at the trigger after the security deposit was applied;
    ``amount`` is what is claimed after the buyback limit (unreleased goods) and the caps, and
    ``paid`` what the enterprise has paid of it. A claim the caps left at nothing is kept as
    ``cap_exhausted`` for risk staff.
    """

    loan = models.OneToOneField(Loan, on_delete=models.PROTECT, related_name="guarantee_claim")
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="claims")
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="claims")
    enterprise = models.ForeignKey(CoreEnterprise, on_delete=models.PROTECT, related_name="claims")
    agreement = models.ForeignKey(
        Agreement, null=True, blank=True, on_delete=models.PROTECT, related_name="claims"
    )
    guarantee_type = models.CharField(max_length=16, choices=GuaranteeType)
    currency = models.CharField(max_length=3)
    owed = money(default=ZERO)
    security_applied = money(default=ZERO)
    unreleased_value = money(default=ZERO)
    amount = money(default=ZERO)
    paid = money(default=ZERO)
    status = models.CharField(max_length=16, choices=ClaimStatus, default=ClaimStatus.RAISED)
    reference = models.CharField(max_length=32)  # unique: see Meta
    raised_on = models.DateField()
    window_ends_on = models.DateField()
    dispute_reason = models.CharField(max_length=500, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    disputed_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = _("guarantee claim")
        verbose_name_plural = _("guarantee claims")
        ordering = ["-raised_on", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["reference"], name="uniq_claim_reference"),
            models.CheckConstraint(
                name="claim_amounts_nonneg",
                condition=Q(owed__gte=0)
                & Q(security_applied__gte=0)
                & Q(unreleased_value__gte=0)
                & Q(amount__gte=0)
                & Q(paid__gte=0),
            ),
            models.CheckConstraint(
                name="claim_paid_le_amount",
                condition=GreaterThanOrEqual(in_cents(F("amount") - F("paid")), 0),
            ),
            models.CheckConstraint(
                name="claim_amount_le_owed",
                condition=GreaterThanOrEqual(in_cents(F("owed") - F("amount")), 0),
            ),
            models.CheckConstraint(
                name="claim_window_after_raise", condition=Q(window_ends_on__gte=F("raised_on"))
            ),
        ]
        indexes = [
            models.Index(fields=["status", "window_ends_on"], name="claim_status_window_idx"),
            models.Index(fields=["enterprise", "status"], name="claim_enterprise_status_idx"),
            models.Index(fields=["program", "status"], name="claim_program_status_idx"),
        ]

    def __str__(self) -> str:
        return f"claim {self.reference} ({self.status})"
