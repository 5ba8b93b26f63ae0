"""Factories for parties and orders. Credentials are issued by the real service."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

import factory
from django.conf import settings

from orders.models import Agent, AgentRelationship, CoreEnterprise, SalesOrder, SalesOrderLine, User
from orders.services.parties import _issue_credentials, uscc_complete
from scf import clock


def make_uscc(n: int) -> str:
    """A valid Unified Social Credit Code, distinct for each n."""
    return uscc_complete("9131" + f"{n:013d}"[-13:])


class EnterpriseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CoreEnterprise

    code = factory.Sequence(lambda n: f"CE-{n:04d}")
    name = factory.Sequence(lambda n: f"Core Enterprise {n}")
    uscc = factory.Sequence(lambda n: make_uscc(100000 + n))
    settlement_account_name = factory.LazyAttribute(lambda o: o.name)
    settlement_account_no = factory.Sequence(lambda n: f"6222{n:012d}")
    settlement_bank = "Demo Bank Shanghai Branch"

    @factory.post_generation
    def credentials(obj: CoreEnterprise, create: bool, extracted: Any, **kwargs: Any) -> None:
        creds = _issue_credentials(obj)
        obj.plain_webhook_secret = creds.webhook_secret  # type: ignore[attr-defined]
        obj.plain_api_key = creds.api_key  # type: ignore[attr-defined]
        if create:
            obj.save()


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent

    code = factory.Sequence(lambda n: f"AG-{n:04d}")
    name = factory.Sequence(lambda n: f"Agent {n}")
    uscc = factory.Sequence(lambda n: make_uscc(500000 + n))
    email = factory.Sequence(lambda n: f"agent{n}@example.com")

    @factory.post_generation
    def enterprises(obj: Agent, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create and extracted:
            for enterprise in extracted:
                AgentRelationship.objects.create(agent=obj, enterprise=enterprise)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests-1")
    role = "agent"

    @factory.post_generation
    def save_password(obj: User, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create:
            obj.save()

    @factory.post_generation
    def bank(obj: User, create: bool, extracted: Any, **kwargs: Any) -> None:
        """Bank staff work for a bank: ``bank=`` names it, else the factories' default bank
        (every ``ProgramFactory`` program's); ``bank=False`` leaves them without one."""
        if not create or not obj.is_bank_staff or extracted is False:
            return
        from lending.models import BankMembership
        from tests.lending.factories import BankFactory

        BankMembership.objects.create(user=obj, bank=extracted or BankFactory())


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SalesOrder

    enterprise = factory.SubFactory(EnterpriseFactory)
    agent = factory.SubFactory(AgentFactory)
    external_id = factory.Sequence(lambda n: f"SO-{n:07d}")
    amount = Decimal("10000.00")
    currency = "CNY"
    status = "confirmed"
    # Today by the platform's clock (which some tests fix): never a date the feed would refuse.
    order_date = factory.LazyFunction(lambda: clock.business_date(settings.TIME_ZONE))
    version = 1
    created_at = factory.LazyFunction(lambda: dt.datetime.now(dt.UTC))
    updated_at = factory.LazyFunction(lambda: dt.datetime.now(dt.UTC))

    @factory.post_generation
    def lines(obj: SalesOrder, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create:
            SalesOrderLine.objects.create(
                order=obj,
                line_no=1,
                sku="SKU-1",
                quantity=1,
                unit_price=obj.amount,
                amount=obj.amount,
            )


def order_payload(
    agent_code: str,
    *,
    external_id: str | None = None,
    amount: str = "10000.00",
    version: int = 1,
    status: str = "confirmed",
    currency: str = "CNY",
    order_date: str | None = None,
) -> dict[str, Any]:
    """An order as a sales system sends it: two lines that add up to ``amount``."""
    total = Decimal(amount)
    first = (total / 2).quantize(Decimal("0.01"))
    return {
        "external_id": external_id or f"SO-{random.randrange(10**12):012d}",
        "agent_code": agent_code,
        "amount": amount,
        "currency": currency,
        "status": status,
        "order_date": order_date or clock.business_date(settings.TIME_ZONE).isoformat(),
        "version": version,
        "lines": [
            {"sku": "X1", "quantity": 1, "unit_price": str(first)},
            {"sku": "X2", "quantity": 1, "unit_price": str(total - first)},
        ],
    }
