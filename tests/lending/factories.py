"""Factories for banks, programs and credit lines."""

from __future__ import annotations

from decimal import Decimal

import factory

from lending.models import Bank, CreditLine, Program
from tests.orders.factories import AgentFactory, EnterpriseFactory


class BankFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Bank
        django_get_or_create = ("code",)

    code = "BANK-1"
    name = "Demo Commercial Bank"


class ProgramFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Program

    bank = factory.SubFactory(BankFactory)
    enterprise = factory.SubFactory(EnterpriseFactory)
    code = factory.Sequence(lambda n: f"PRG-{n:03d}")
    name = factory.Sequence(lambda n: f"Dealer finance {n}")
    currency = "CNY"
    advance_rate = Decimal("0.8000")
    limit = Decimal("10000000.00")
    min_principal = Decimal("1000.00")
    max_principal = Decimal("1000000.00")
    tenor_days = 90
    annual_rate = Decimal("0.054000")
    day_count = "ACT/360"
    grace_days = 3
    penalty_rate = Decimal("0.081000")
    max_order_age_days = 90
    max_dpd_tolerated = 0
    auto_approve_limit = Decimal("500000.00")
    auto_approve_grade = "C"
    maker_checker_threshold = Decimal("200000.00")
    review_hold_hours = 48


class CreditLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CreditLine

    agent = factory.SubFactory(AgentFactory)
    program = factory.SubFactory(ProgramFactory)
    limit = Decimal("1000000.00")
    risk_grade = "B"
