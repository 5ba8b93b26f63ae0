"""Building the demo data set, or refreshing the credentials of one that exists."""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from lending.models import Bank, Program
from orders.models import Agent, CoreEnterprise, User
from orders.services.parties import enterprise_credentials_rotate

from .data import (
    BANK_CODE,
    BANK_NAME,
    DEMO_EMAIL_DOMAIN,
    ENTERPRISE_CODES,
    DemoAgent,
    DemoData,
    DemoEnterprise,
    part_rng,
)
from .history import demo_credit_seed
from .logins import login_reset, logins_create
from .orders import orders_create
from .parties import agents_create, enterprises_create
from .programs import (
    demo_lines_create,
    demo_loans_create,
    demo_programs_create,
    demo_second_bank_create,
    demo_second_bank_lines_create,
)
from .tripartite import demo_moment, demo_tripartite_flow, demo_tripartite_terms


def demo_exists() -> bool:
    return CoreEnterprise.objects.filter(code__in=ENTERPRISE_CODES).exists()


@transaction.atomic
def demo_build(
    *, seed: int, orders: int, agents: int, today: dt.date, credit_history: bool = True
) -> DemoData:
    """Create the whole demo data set in one transaction. The database must not hold it yet."""
    bank = Bank.objects.create(code=BANK_CODE, name=BANK_NAME)
    enterprises = enterprises_create(part_rng(seed, "enterprises"))
    data = DemoData(
        bank=bank,
        enterprises=enterprises,
        agents=agents_create(part_rng(seed, "agents"), enterprises, agents),
    )
    orders_create(part_rng(seed, "orders"), data, orders, today)
    demo_programs_create(bank, data)
    demo_lines_create(part_rng(seed, "lines"), data, today)
    data.logins = logins_create(data)
    # After the first bank's lines (which the second bank's copy) and before the first loans
    # (which take the first offer, the first bank's, as a finance request naming no program).
    demo_second_bank_lines_create(demo_second_bank_create(data), data)
    at = demo_moment(today)
    demo_tripartite_terms(data, today, at)
    demo_loans_create(part_rng(seed, "loans"), at=at)
    demo_tripartite_flow(data, today, at)
    if credit_history:
        # Synthetic dealers with 18 months of history, so the scorecard has something to learn;
        # in a program of their own, so they do not crowd the demo's.
        data.credit = demo_credit_seed(today=today, seed=seed)
    return data


@transaction.atomic
def demo_refresh() -> DemoData:
    """Rotate the demo enterprises' credentials and reset the demo users; create nothing else."""
    enterprises = list(CoreEnterprise.objects.filter(code__in=ENTERPRISE_CODES).order_by("code"))
    bank, _ = Bank.objects.get_or_create(code=BANK_CODE, defaults={"name": BANK_NAME})
    hashes: dict[str, str] = {}
    users = (
        User.objects.filter(email__iendswith="@" + DEMO_EMAIL_DOMAIN)
        .select_related("agent", "enterprise")
        .order_by("pk")
    )
    return DemoData(
        bank=bank,
        enterprises=[
            DemoEnterprise(
                e,
                enterprise_credentials_rotate(enterprise=e),
                list(
                    Program.objects.filter(enterprise=e).order_by("pk").values_list("pk", flat=True)
                ),
            )
            for e in enterprises
        ],
        agents=_agents_of(enterprises),
        logins=[login_reset(user, hashes) for user in users],
        created=False,
    )


def _agents_of(enterprises: list[CoreEnterprise]) -> list[DemoAgent]:
    agents = (
        Agent.objects.filter(relationships__enterprise__in=enterprises)
        .distinct()
        .prefetch_related("relationships__enterprise")
        .order_by("code")
    )
    return [DemoAgent(a, sorted(r.enterprise.code for r in a.relationships.all())) for a in agents]
