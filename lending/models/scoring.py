"""Data-driven credit: stored scorecard models, agents' scores, and proposed line changes.

- ``CreditModel`` is one trained scorecard (``lending.scoring.scorecard``): its version, the
  features it uses, their bins and weights of evidence, the logistic regression's coefficients and
  its evaluation on a time-based hold-out. At most one model is *promoted* (a partial unique
  index); the nightly job scores with that one.
- ``AgentScore`` is one score of one credit line (agent x program) on a business date by one model:
  probability of a loan going 30+ days past due, scorecard points, grade A-E, the top reason codes
  and the feature values the score was computed from (so the score can be explained and replayed).
- ``LineProposal`` is a new limit the nightly line management proposed for a line, with the
  formula's inputs and its reasons. Decreases and small increases are applied at once
  (``applied``); large increases wait for two people (maker-checker) in the proposal queue
  (``awaiting_approval``, at most one per line, then ``approved`` or ``rejected``); a dry run
  records what it would do (``proposed``, never applied). A newer proposal for the same line
  supersedes an older one not yet decided.
- ``CreditPolicy`` holds a program's caps and step limits for line management (defaults apply
  when a program has none; see ``lending.services.line_management``).
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from orders.models import Agent

from .columns import money
from .credit import CreditLine, Grade, Program


class CreditModel(models.Model):
    version = models.PositiveIntegerField(unique=True)
    trained_at = models.DateTimeField()
    # Training cut-off: only what the platform knew on this business date was used.
    as_of = models.DateField()
    features = models.JSONField(default=list)
    # {feature: {"edges": [...], "woe": [...], "missing_woe": x, "iv": x, "counts": [...]}}
    bins = models.JSONField(default=dict)
    coefficients = models.JSONField(default=dict)
    intercept = models.FloatField()
    grade_bands = models.JSONField(default=list)
    # AUC, KS, calibration by grade on the hold-out, the baseline, the sample and the promotion.
    metrics = models.JSONField(default=dict)
    auc = models.DecimalField(max_digits=5, decimal_places=4)
    ks = models.DecimalField(max_digits=5, decimal_places=4)
    promoted = models.BooleanField(default=False)
    promoted_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    refusal_reason = models.CharField(max_length=200, blank=True)
    trained_by = models.CharField(max_length=100)

    class Meta:
        verbose_name = _("credit scoring model")
        verbose_name_plural = _("credit scoring models")
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["promoted"], condition=Q(promoted=True), name="uniq_promoted_credit_model"
            ),
        ]

    def __str__(self) -> str:
        return f"credit model v{self.version}{' (promoted)' if self.promoted else ''}"


class AgentScore(models.Model):
    credit_line = models.ForeignKey(CreditLine, on_delete=models.PROTECT, related_name="scores")
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="credit_scores")
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="credit_scores")
    model = models.ForeignKey(CreditModel, on_delete=models.PROTECT, related_name="scores")
    model_version = models.PositiveIntegerField()
    as_of = models.DateField()
    probability = models.DecimalField(max_digits=7, decimal_places=6)
    points = models.IntegerField()
    grade = models.CharField(max_length=1, choices=Grade)
    # [{"code", "feature", "value", "detail"}], the most damaging first.
    reasons = models.JSONField(default=list)
    # {feature: value as a string, or null when missing}
    features = models.JSONField(default=dict)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("agent score")
        verbose_name_plural = _("agent scores")
        ordering = ["-as_of", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["credit_line", "as_of", "model"], name="uniq_score_line_date_model"
            ),
            models.CheckConstraint(
                name="score_probability_range",
                condition=Q(probability__gte=0) & Q(probability__lte=1),
            ),
        ]
        indexes = [
            models.Index(fields=["program", "as_of"], name="score_program_date_idx"),
            models.Index(fields=["agent", "-as_of"], name="score_agent_date_idx"),
        ]

    def __str__(self) -> str:
        return f"score {self.credit_line_id}@{self.as_of}: {self.grade}"


class ProposalStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed (dry run, not applied)"
    APPLIED = "applied", "Applied automatically"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    APPROVED = "approved", "Approved and applied"
    REJECTED = "rejected", "Rejected"
    SUPERSEDED = "superseded", "Superseded by a newer proposal"


# Not yet decided: a newer proposal for the same line supersedes these.
PROPOSAL_OPEN = [ProposalStatus.PROPOSED, ProposalStatus.AWAITING_APPROVAL]


class LineProposal(models.Model):
    credit_line = models.ForeignKey(CreditLine, on_delete=models.PROTECT, related_name="proposals")
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="line_proposals")
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="line_proposals")
    score = models.ForeignKey(
        AgentScore, null=True, blank=True, on_delete=models.PROTECT, related_name="proposals"
    )
    as_of = models.DateField()
    grade = models.CharField(max_length=1, choices=Grade)
    current_limit = money()
    proposed_limit = money()
    utilisation = money()  # outstanding + reserved when proposed
    # The formula's inputs and each step's result (amounts as strings).
    inputs = models.JSONField(default=dict)
    # [{"code", "detail"}]: why this limit.
    reasons = models.JSONField(default=list)
    status = models.CharField(max_length=24, choices=ProposalStatus)
    first_approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    first_approved_at = models.DateTimeField(null=True, blank=True)
    second_approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    notes = models.JSONField(default=list, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("credit limit proposal")
        verbose_name_plural = _("credit limit proposals")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["credit_line"],
                condition=Q(status=ProposalStatus.AWAITING_APPROVAL),
                name="uniq_waiting_proposal_per_line",
            ),
            models.CheckConstraint(
                name="proposal_limits_nonneg",
                condition=Q(current_limit__gte=0) & Q(proposed_limit__gte=0),
            ),
            models.CheckConstraint(
                name="proposal_not_below_utilisation",
                condition=Q(proposed_limit__gte=F("utilisation")),
            ),
            models.CheckConstraint(
                name="proposal_second_approver_differs",
                condition=Q(second_approver__isnull=True) | ~Q(second_approver=F("first_approver")),
            ),
        ]
        indexes = [
            models.Index(fields=["status", "created_at"], name="proposal_status_idx"),
            models.Index(fields=["credit_line", "-created_at"], name="proposal_line_idx"),
        ]

    def __str__(self) -> str:
        return (
            f"proposal {self.pk} line {self.credit_line_id}: {self.proposed_limit} ({self.status})"
        )

    @property
    def increase(self) -> Decimal:
        return self.proposed_limit - self.current_limit


class CreditPolicy(models.Model):
    """A program's line-management settings: caps, step limits, rounding, approval threshold."""

    program = models.OneToOneField(Program, on_delete=models.CASCADE, related_name="credit_policy")
    min_line = money(default=Decimal("100000.00"))
    max_line = money(default=Decimal("5000000.00"))
    max_step_up = models.DecimalField(max_digits=5, decimal_places=4, default=Decimal("0.5000"))
    max_step_down = models.DecimalField(max_digits=5, decimal_places=4, default=Decimal("0.3000"))
    min_change = models.DecimalField(max_digits=5, decimal_places=4, default=Decimal("0.0500"))
    rounding = money(default=Decimal("10000.00"))
    auto_increase_max = money(default=Decimal("100000.00"))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("credit policy")
        verbose_name_plural = _("credit policies")
        constraints = [
            models.CheckConstraint(
                name="policy_min_le_max", condition=Q(min_line__lte=F("max_line"))
            ),
            models.CheckConstraint(name="policy_rounding_positive", condition=Q(rounding__gt=0)),
            models.CheckConstraint(
                name="policy_steps_range",
                condition=Q(max_step_up__gte=0) & Q(max_step_down__gte=0) & Q(max_step_down__lte=1),
            ),
        ]

    def __str__(self) -> str:
        return f"credit policy of program {self.program_id}"
