"""Tripartite goods control: a financed order's goods held, released as the agent pays, breaches.

See ``lending.models.tripartite`` for the agreement these belong to and docs/tripartite.md.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Round
from django.db.models.lookups import GreaterThanOrEqual
from django.utils.translation import gettext_lazy as _

from orders.models import Agent, CoreEnterprise, SalesOrder

from .columns import in_cents, money
from .credit import Program
from .loans import Loan
from .margin import MarginAccount

ZERO = Decimal("0.00")


class HoldStatus(models.TextChoices):
    HELD = "held", "Held"
    PARTLY_RELEASED = "partly_released", "Partly released"
    RELEASED = "released", "Released"
    TRANSFERRED = "transferred", "Transferred to the core enterprise"


class GoodsHold(models.Model):
    """A financed order's goods and the margin behind them.

    ``order_value`` is A, ``margin`` m x A (lodged by the agent, paid to the enterprise with the
    loan), ``security`` s x principal (cash collateral). ``releasable_value`` is what the agent has
    paid for (margin paid out + principal repaid); ``released_value`` never passes it.
    """

    loan = models.OneToOneField(Loan, on_delete=models.PROTECT, related_name="goods_hold")
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="goods_holds")
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="goods_holds")
    margin_account = models.ForeignKey(
        MarginAccount, on_delete=models.PROTECT, related_name="holds"
    )
    currency = models.CharField(max_length=3)
    order_value = money()
    margin = money(default=ZERO)
    security = money(default=ZERO)
    released_value = money(default=ZERO)
    releasable_value = money(default=ZERO)
    status = models.CharField(max_length=16, choices=HoldStatus, default=HoldStatus.HELD)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = _("goods hold")
        verbose_name_plural = _("goods holds")
        constraints = [
            models.CheckConstraint(
                name="hold_amounts_nonneg",
                condition=Q(order_value__gt=0)
                & Q(margin__gte=0)
                & Q(security__gte=0)
                & Q(released_value__gte=0),
            ),
            models.CheckConstraint(
                name="hold_released_le_releasable",
                condition=GreaterThanOrEqual(
                    in_cents(F("releasable_value") - F("released_value")), 0
                ),
            ),
            models.CheckConstraint(
                name="hold_releasable_le_order",
                condition=GreaterThanOrEqual(in_cents(F("order_value") - F("releasable_value")), 0),
            ),
        ]
        indexes = [models.Index(fields=["agent", "status"], name="hold_agent_status_idx")]

    def __str__(self) -> str:
        return f"goods hold of loan {self.loan_id} ({self.status})"


QUANTITY_PLACES = 4


def quantity(**kwargs: object) -> models.DecimalField:  # type: ignore[type-arg]
    """An order line's quantity: the feed's ``NUMERIC(18, 4)``."""
    return models.DecimalField(max_digits=18, decimal_places=QUANTITY_PLACES, **kwargs)  # type: ignore[arg-type]


class GoodsHoldLine(models.Model):
    """One SKU of a held order: the quantity ordered and how much of it releases by line took.

    Written by the first release by lines (one row per SKU of the order, quantities summed over
    the order's lines of that SKU). A release by lines takes its quantities with a conditional
    UPDATE of these rows in the transaction of the hold's own, so racing requests can never take
    more of a SKU than was ordered; the CHECK stands behind it.
    """

    hold = models.ForeignKey(GoodsHold, on_delete=models.PROTECT, related_name="lines")
    sku = models.CharField(max_length=64)
    unit_price = money()
    ordered_quantity = quantity()
    released_quantity = quantity(default=ZERO)

    class Meta:
        verbose_name = _("goods hold line")
        verbose_name_plural = _("goods hold lines")
        ordering = ["hold_id", "sku"]
        constraints = [
            models.UniqueConstraint(fields=["hold", "sku"], name="uniq_hold_line_sku"),
            models.CheckConstraint(
                name="hold_line_quantities_nonneg",
                condition=Q(ordered_quantity__gt=0) & Q(released_quantity__gte=0),
            ),
            models.CheckConstraint(
                name="hold_line_released_le_ordered",
                condition=GreaterThanOrEqual(
                    Round(
                        F("ordered_quantity") - F("released_quantity"), precision=QUANTITY_PLACES
                    ),
                    0,
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku}: {self.released_quantity} of {self.ordered_quantity} released"


class ReleaseRequester(models.TextChoices):
    ENTERPRISE = "enterprise", "Core enterprise"
    AGENT = "agent", "Agent"


class ReleaseStatus(models.TextChoices):
    AUTHORISED = "authorised", "Authorised"
    REFUSED = "refused", "Refused"


class Release(models.Model):
    """A request to release goods from a hold, authorised or refused (kept either way)."""

    hold = models.ForeignKey(GoodsHold, on_delete=models.PROTECT, related_name="releases")
    value = money()
    lines = models.JSONField(default=list, blank=True)  # [{"sku", "quantity"}] when asked by line
    requested_by_kind = models.CharField(max_length=16, choices=ReleaseRequester)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(max_length=16, choices=ReleaseStatus)
    reason = models.CharField(max_length=64, blank=True)
    releasable_at_request = money(default=ZERO)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("goods release")
        verbose_name_plural = _("goods releases")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(name="release_value_positive", condition=Q(value__gt=0)),
        ]

    def __str__(self) -> str:
        return f"release {self.value} of hold {self.hold_id} ({self.status})"


class BreachStatus(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"


class ReleaseBreach(models.Model):
    """An order the feed reports shipped or delivered beyond the value released for it."""

    hold = models.ForeignKey(
        GoodsHold, null=True, blank=True, on_delete=models.PROTECT, related_name="breaches"
    )
    loan = models.ForeignKey(
        Loan, null=True, blank=True, on_delete=models.PROTECT, related_name="release_breaches"
    )
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="release_breaches")
    enterprise = models.ForeignKey(
        CoreEnterprise, on_delete=models.PROTECT, related_name="release_breaches"
    )
    order = models.ForeignKey(SalesOrder, on_delete=models.PROTECT, related_name="release_breaches")
    order_status = models.CharField(max_length=16)  # as the feed said
    reported_value = money()  # shipped: the whole order, or its lines' shipped quantities
    released_value = money(default=ZERO)
    # What was shipped beyond what was released: by SKU where the feed gave shipped quantities
    # and releases named lines, else reported - released.
    excess_value = money(default=ZERO)
    lines = models.JSONField(default=list, blank=True)  # per SKU, when the feed gave quantities
    detected_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=BreachStatus, default=BreachStatus.OPEN)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        verbose_name = _("release breach")
        verbose_name_plural = _("release breaches")
        ordering = ["-detected_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order"],
                condition=Q(status=BreachStatus.OPEN),
                name="uniq_open_breach_per_order",
            ),
        ]
        indexes = [models.Index(fields=["agent", "status"], name="breach_agent_status_idx")]

    def __str__(self) -> str:
        return f"breach on order {self.order_id} ({self.status})"
