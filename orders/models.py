"""Parties (core enterprises, agents, users) and the sales orders they feed in.

The orders app knows nothing about loans: it owns who is who, what was ordered, and the log of
every event the order feed received.
"""

from __future__ import annotations

from typing import ClassVar, cast

from django.contrib.auth.models import AbstractUser, UserManager
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from stdnum.cn import uscc

from scf.money import MONEY_DIGITS, MONEY_PLACES


def validate_uscc(value: str) -> None:
    """Unified Social Credit Code (统一社会信用代码), checksum included."""
    if not uscc.is_valid(value):
        raise ValidationError("Not a valid Unified Social Credit Code.", code="invalid_uscc")


class PartyStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    INACTIVE = "inactive", "Inactive"


class SettlementAccount(models.Model):
    """Where money for a party is paid: a bank account (name, number, bank)."""

    settlement_account_name = models.CharField(max_length=200, blank=True)
    settlement_account_no = models.CharField(max_length=40, blank=True)
    settlement_bank = models.CharField(max_length=200, blank=True)

    class Meta:
        abstract = True


class CoreEnterprise(SettlementAccount):
    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    uscc = models.CharField("USCC", max_length=18, unique=True, validators=[validate_uscc])
    status = models.CharField(max_length=16, choices=PartyStatus, default=PartyStatus.ACTIVE)
    # Encrypted (we need it back to check signatures); see scf.crypto.
    webhook_secret_encrypted = models.TextField(blank=True, editable=False)
    # Only a lookup prefix and a digest of the integration API key are kept.
    api_key_prefix = models.CharField(max_length=16, blank=True, editable=False, db_index=True)
    api_key_digest = models.CharField(max_length=64, blank=True, editable=False)
    credentials_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("core enterprise")
        verbose_name_plural = _("core enterprises")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Agent(SettlementAccount):
    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    uscc = models.CharField("USCC", max_length=18, unique=True, validators=[validate_uscc])
    status = models.CharField(max_length=16, choices=PartyStatus, default=PartyStatus.ACTIVE)
    email = models.EmailField(blank=True)
    enterprises: models.ManyToManyField[CoreEnterprise, AgentRelationship] = models.ManyToManyField(
        CoreEnterprise, through="AgentRelationship", related_name="agents"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("agent")
        verbose_name_plural = _("agents")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class AgentRelationship(models.Model):
    """An agent buys from a core enterprise (a distributor of its products)."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="relationships")
    enterprise = models.ForeignKey(
        CoreEnterprise, on_delete=models.CASCADE, related_name="relationships"
    )
    since = models.DateField(null=True, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agent", "enterprise"], name="uniq_agent_enterprise"),
        ]

    def __str__(self) -> str:
        return f"{self.agent_id} buys from {self.enterprise_id}"


class Role(models.TextChoices):
    AGENT = "agent", "Agent user"
    ENTERPRISE_ADMIN = "enterprise_admin", "Enterprise admin"
    RISK_REVIEWER = "risk_reviewer", "Risk reviewer"
    RISK_APPROVER = "risk_approver", "Risk approver"
    OPS_ADMIN = "ops_admin", "Operations admin"


class PlatformUserManager(UserManager["User"]):
    def create_superuser(self, username, email=None, password=None, **extra_fields):  # type: ignore[no-untyped-def]
        extra_fields.setdefault("role", Role.OPS_ADMIN)
        return super().create_superuser(username, email, password, **extra_fields)


class User(AbstractUser):
    """A person using the platform, in exactly one role.

    Agent users belong to one agent; enterprise admins to one core enterprise; bank staff
    (risk reviewers, risk approvers, operations admins) to neither.
    """

    role = models.CharField(max_length=32, choices=Role, default=Role.AGENT)
    agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )
    enterprise = models.ForeignKey(
        CoreEnterprise, null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )

    objects: ClassVar[PlatformUserManager] = PlatformUserManager()  # type: ignore[assignment]

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.CheckConstraint(
                name="user_role_party",
                condition=(
                    Q(role=Role.AGENT, agent__isnull=False, enterprise__isnull=True)
                    | Q(role=Role.ENTERPRISE_ADMIN, agent__isnull=True, enterprise__isnull=False)
                    | Q(
                        role__in=[Role.RISK_REVIEWER, Role.RISK_APPROVER, Role.OPS_ADMIN],
                        agent__isnull=True,
                        enterprise__isnull=True,
                    )
                ),
            ),
        ]

    @property
    def is_bank_staff(self) -> bool:
        return self.role in (Role.RISK_REVIEWER, Role.RISK_APPROVER, Role.OPS_ADMIN)

    @property
    def company_name(self) -> str:
        """The company the user works for: the agent's or the enterprise's name ("" for bank
        staff). Reads the party row when first asked."""
        party = self.agent if self.agent_id else self.enterprise if self.enterprise_id else None
        return party.name if party is not None else ""


class OrderStatus(models.TextChoices):
    CONFIRMED = "confirmed", "Confirmed"
    SHIPPED = "shipped", "Shipped"
    DELIVERED = "delivered", "Delivered"
    CANCELLED = "cancelled", "Cancelled"


class SalesOrderQuerySet(models.QuerySet["SalesOrder"]):
    def visible_to(self, user: User) -> SalesOrderQuerySet:
        """Orders a user may see: an agent its own, an enterprise admin its enterprise's."""
        if user.role == Role.AGENT:
            return self.filter(agent_id=cast(int, user.agent_id))  # an agent has one (CHECK)
        if user.role == Role.ENTERPRISE_ADMIN:
            return self.filter(enterprise_id=user.enterprise_id)
        if user.is_bank_staff:
            return self
        return self.none()


class SalesOrder(models.Model):
    enterprise = models.ForeignKey(CoreEnterprise, on_delete=models.PROTECT, related_name="orders")
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="orders")
    external_id = models.CharField(max_length=64)
    amount = models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16, choices=OrderStatus)
    order_date = models.DateField()
    version = models.PositiveIntegerField()
    raw_payload = models.JSONField(default=dict)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    objects = SalesOrderQuerySet.as_manager()

    class Meta:
        verbose_name = _("sales order")
        verbose_name_plural = _("sales orders")
        ordering = ["-order_date", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["enterprise", "external_id"], name="uniq_order_enterprise_external_id"
            ),
            models.CheckConstraint(name="order_amount_positive", condition=Q(amount__gt=0)),
        ]
        indexes = [models.Index(fields=["agent", "status"], name="order_agent_status_idx")]

    def __str__(self) -> str:
        return f"{self.external_id} ({self.amount} {self.currency})"


class SalesOrderLine(models.Model):
    order = models.ForeignKey(SalesOrder, on_delete=models.CASCADE, related_name="lines")
    line_no = models.PositiveIntegerField()
    sku = models.CharField(max_length=64)
    quantity = models.DecimalField(max_digits=18, decimal_places=4)
    unit_price = models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES)
    amount = models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES)
    # How much of the line the enterprise has shipped, when its feed says (optional).
    shipped_quantity = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)

    class Meta:
        ordering = ["order_id", "line_no"]
        constraints = [
            models.UniqueConstraint(fields=["order", "line_no"], name="uniq_order_line_no"),
            models.CheckConstraint(name="line_quantity_positive", condition=Q(quantity__gt=0)),
            models.CheckConstraint(name="line_unit_price_nonneg", condition=Q(unit_price__gte=0)),
            models.CheckConstraint(
                name="line_shipped_within_quantity",
                condition=Q(shipped_quantity__isnull=True)
                | (Q(shipped_quantity__gte=0) & Q(shipped_quantity__lte=F("quantity"))),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku} x {self.quantity}"


class FeedChannel(models.TextChoices):
    WEBHOOK = "webhook", "Webhook"
    BULK = "bulk", "Bulk API"
    CSV = "csv", "CSV upload"
    PULL = "pull", "Pull adapter"


class FeedOutcome(models.TextChoices):
    APPLIED = "applied", "Applied"
    DUPLICATE = "duplicate", "Duplicate"
    STALE = "stale", "Stale"
    REJECTED = "rejected", "Rejected"


class FeedEvent(models.Model):
    """One thing the order feed received and what became of it (what, when, why).

    A webhook event is one row; a bulk request, a CSV upload or a pulled page is one row with its
    counts and per-row errors. An ``event_id`` once applied (or found stale) is unique per
    enterprise, which is what makes a replayed webhook a duplicate even under concurrency.
    """

    enterprise = models.ForeignKey(
        CoreEnterprise, on_delete=models.CASCADE, related_name="feed_events"
    )
    channel = models.CharField(max_length=16, choices=FeedChannel)
    event_id = models.CharField(max_length=128, blank=True)
    event_type = models.CharField(max_length=32, blank=True)
    outcome = models.CharField(max_length=16, choices=FeedOutcome)
    error_code = models.CharField(max_length=64, blank=True)
    detail = models.TextField(blank=True)
    external_id = models.CharField(max_length=64, blank=True)
    order_version = models.PositiveIntegerField(null=True, blank=True)
    row_count = models.PositiveIntegerField(default=1)
    counts = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(default=list, blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("order feed event")
        verbose_name_plural = _("order feed events")
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["enterprise", "event_id"],
                condition=Q(outcome__in=["applied", "stale"]) & ~Q(event_id=""),
                name="uniq_feed_event_processed",
            ),
        ]
        indexes = [models.Index(fields=["enterprise", "-received_at"], name="feed_ent_recv_idx")]

    def __str__(self) -> str:
        return f"{self.channel}:{self.event_id or self.pk} {self.outcome}"
