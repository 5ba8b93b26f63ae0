"""Lending: banks, programs and credit lines (the credit a bank extends).

Credit headroom lives on two rows, the credit line and the program, as ``outstanding_principal``
and ``reserved`` next to ``limit``. A CHECK constraint on each makes overdrawing impossible even
if application code is wrong: ``0 <= reserved``, ``0 <= outstanding``,
``outstanding + reserved <= limit`` (``headroom_constraints``). Services change these columns only
with conditional updates or under row locks taken in a fixed order (order -> credit line ->
program).
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from orders.models import Agent, CoreEnterprise

from .columns import headroom_constraints, money, rate


class Grade(models.TextChoices):
    """Risk grades, A best. Comparison is alphabetical: a grade is 'below' B when it is > 'B'."""

    A = "A", "A"
    B = "B", "B"
    C = "C", "C"
    D = "D", "D"
    E = "E", "E"


class DayCount(models.TextChoices):
    ACT_360 = "ACT/360", "ACT/360"
    ACT_365F = "ACT/365F", "ACT/365F"

    @property
    def basis(self) -> Decimal:
        return Decimal(360) if self == DayCount.ACT_360 else Decimal(365)


class Bank(models.Model):
    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    settlement_account_no = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("bank")
        verbose_name_plural = _("banks")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class ProgramStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"


class Program(models.Model):
    """A bank's financing program with one core enterprise, and its terms."""

    bank = models.ForeignKey(Bank, on_delete=models.PROTECT, related_name="programs")
    enterprise = models.ForeignKey(
        CoreEnterprise, on_delete=models.PROTECT, related_name="programs"
    )
    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=ProgramStatus, default=ProgramStatus.ACTIVE)
    currency = models.CharField(max_length=3, default="CNY")
    advance_rate = models.DecimalField(max_digits=5, decimal_places=4)
    limit = money()
    outstanding_principal = money(default=Decimal("0.00"))
    reserved = money(default=Decimal("0.00"))
    min_principal = money(default=Decimal("1000.00"))
    max_principal = money()
    tenor_days = models.PositiveIntegerField(default=90)
    annual_rate = rate()
    day_count = models.CharField(max_length=8, choices=DayCount, default=DayCount.ACT_360)
    grace_days = models.PositiveIntegerField(default=3)
    penalty_rate = rate()
    max_order_age_days = models.PositiveIntegerField(default=90)
    max_dpd_tolerated = models.PositiveIntegerField(default=0)
    auto_approve_limit = money()
    auto_approve_grade = models.CharField(max_length=1, choices=Grade, default=Grade.C)
    maker_checker_threshold = money()
    review_hold_hours = models.PositiveIntegerField(default=48)
    # Rule codes this program sends to review instead of declining (lending.engine.REFERABLE_RULES).
    refer_rules = models.JSONField(default=list, blank=True)
    time_zone = models.CharField(max_length=64, default="Asia/Shanghai")
    holiday_country = models.CharField(max_length=2, default="CN")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("financing program")
        verbose_name_plural = _("financing programs")
        ordering = ["code"]
        constraints = [
            *headroom_constraints("program"),
            models.CheckConstraint(
                name="program_advance_rate_range",
                condition=Q(advance_rate__gt=0) & Q(advance_rate__lte=1),
            ),
            models.CheckConstraint(
                name="program_min_le_max", condition=Q(min_principal__lte=F("max_principal"))
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def available(self) -> Decimal:
        return self.limit - self.outstanding_principal - self.reserved


class CreditLine(models.Model):
    """An agent's line in a program."""

    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="credit_lines")
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="credit_lines")
    limit = money()
    outstanding_principal = money(default=Decimal("0.00"))
    reserved = money(default=Decimal("0.00"))
    frozen = models.BooleanField(default=False)
    frozen_reason = models.CharField(max_length=500, blank=True)
    risk_grade = models.CharField(max_length=1, choices=Grade, default=Grade.C)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("credit line")
        verbose_name_plural = _("credit lines")
        ordering = ["program_id", "agent_id"]
        constraints = [
            *headroom_constraints("line"),
            models.UniqueConstraint(fields=["agent", "program"], name="uniq_line_agent_program"),
        ]

    def __str__(self) -> str:
        return f"line {self.agent_id}@{self.program_id}"

    @property
    def available(self) -> Decimal:
        return self.limit - self.outstanding_principal - self.reserved
