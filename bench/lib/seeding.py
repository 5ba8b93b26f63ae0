"""A program's parties, set-based: the bench bank, a program, agents with their relationship to
the enterprise, credit lines, and (when the bench clicks as them) users with API tokens.

Each bench names its own codes and USCCs (they stay unique across the runs that share a
database) and its own program terms; the rows are made here, in a handful of statements.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

BANK_CODE = "BENCH-BANK"
# A program that lends the whole order, with room for any number of loans and no referrals.
ROOMY_TERMS: dict[str, Any] = {
    "advance_rate": Decimal("1"),
    "limit": Decimal("9000000000000000.00"),
    "max_principal": Decimal("10000000.00"),
    "annual_rate": Decimal("0.054"),
    "penalty_rate": Decimal("0.081"),
    "auto_approve_limit": Decimal("10000000.00"),
    "maker_checker_threshold": Decimal("10000000.00"),
}


def program_seed(*, enterprise: Any, code: str, name: str, **terms: Any) -> Any:
    """A program of the bench bank (made on first use) for ``enterprise``; ``terms`` are the
    program's fields, the model's defaults for the rest."""
    from lending.models import Bank, Program

    bank, _ = Bank.objects.get_or_create(code=BANK_CODE, defaults={"name": "Bench Bank"})
    return Program.objects.create(bank=bank, enterprise=enterprise, code=code, name=name, **terms)


@dataclass(frozen=True)
class Seeded:
    """One agent as seeded: the agent, its credit line, and its user and token key if asked."""

    agent: Any
    line: Any
    user: Any = None
    token: str = ""


def agents_seed(
    *,
    enterprise: Any,
    program_id: int,
    agents: list[Any],
    limit: Callable[[int], Decimal],
    risk_grade: str | None = None,
    users: bool = False,
    tokens: bool = False,
) -> list[Seeded]:
    """Save ``agents`` (unsaved ``Agent`` rows) with a relationship to ``enterprise`` and a line
    in the program each (``limit(k)`` for the k-th agent; ``risk_grade`` or the model's
    default); with ``users``, an agent user each (``<code>-user``, no usable password), and with
    ``tokens`` a DRF token for it."""
    from django.contrib.auth.hashers import make_password
    from rest_framework.authtoken.models import Token

    from lending.models import CreditLine
    from orders.models import Agent, AgentRelationship, Role, User

    saved = Agent.objects.bulk_create(agents)
    AgentRelationship.objects.bulk_create(
        AgentRelationship(agent=a, enterprise=enterprise) for a in saved
    )
    grade = {"risk_grade": risk_grade} if risk_grade else {}
    lines = CreditLine.objects.bulk_create(
        CreditLine(agent=a, program_id=program_id, limit=limit(k), **grade)
        for k, a in enumerate(saved)
    )
    people: list[Any] = [None] * len(saved)
    keys = [""] * len(saved)
    if users or tokens:
        unusable = make_password(None)
        people = User.objects.bulk_create(
            User(username=f"{a.code}-user", role=Role.AGENT, agent=a, password=unusable)
            for a in saved
        )
    if tokens:
        made = Token.objects.bulk_create(Token(key=Token.generate_key(), user=u) for u in people)
        keys = [t.key for t in made]
    return [
        Seeded(agent, line, user, key)
        for agent, line, user, key in zip(saved, lines, people, keys, strict=True)
    ]


def order_payload(
    external_id: str, agent_code: str, lines: list[tuple[str, int, Decimal]], order_date: str
) -> dict[str, Any]:
    """A new confirmed order in CNY as a sales system sends it to the feed (bulk or webhook),
    its amount the sum of its ``lines`` (sku, quantity, unit price)."""
    amount = sum((quantity * price for _, quantity, price in lines), Decimal(0))
    return {
        "external_id": external_id,
        "agent_code": agent_code,
        "amount": str(amount),
        "currency": "CNY",
        "status": "confirmed",
        "order_date": order_date,
        "version": 1,
        "lines": [
            {"sku": sku, "quantity": quantity, "unit_price": str(price)}
            for sku, quantity, price in lines
        ],
    }
