"""The demo's parties: the two core enterprises and their dealers, with valid USCCs and names
drawn from the cities and trades of ``data``."""

from __future__ import annotations

import random

from orders.services.parties import agent_create, enterprise_create, uscc_complete

from .data import (
    AGENT_CITIES,
    AGENT_ROOTS,
    BANK_NAME,
    ENTERPRISES,
    GENERAL_TRADES,
    DemoAgent,
    DemoEnterprise,
    EnterpriseProfile,
)


def _org_code(rng: random.Random) -> str:
    """A 9-character organisation code: 8 digits and their GB 11714 check character."""
    body = [rng.randrange(10) for _ in range(8)]
    check = 11 - sum(d * w for d, w in zip(body, (3, 7, 9, 10, 5, 8, 4, 2), strict=True)) % 11
    return "".join(map(str, body)) + {10: "X", 11: "0"}.get(check, str(check))


def _uscc(rng: random.Random, division: str, used: set[str]) -> str:
    """A valid USCC of a private company (registered by SAIC) in ``division``, not in ``used``."""
    while True:
        code = uscc_complete("91" + division + _org_code(rng))
        if code not in used:
            used.add(code)
            return code


def _account_no(rng: random.Random) -> str:
    return str(rng.randrange(6_217_000_000_000_000_000, 6_218_000_000_000_000_000))


def enterprises_create(rng: random.Random) -> list[DemoEnterprise]:
    created = []
    used: set[str] = set()
    for profile in ENTERPRISES:
        enterprise, credentials = enterprise_create(
            code=profile.code,
            name=profile.name,
            uscc=_uscc(rng, profile.division, used),
            settlement_account_no=_account_no(rng),
            settlement_bank=BANK_NAME.removesuffix("股份有限公司") + profile.branch,
        )
        created.append(DemoEnterprise(enterprise, credentials))
    return created


def _agent_profiles(rng: random.Random, index: int) -> tuple[EnterpriseProfile, ...]:
    """Which enterprises an agent buys from: most one, about one in five both.

    The first three cover every case (first enterprise, second, both) whatever the count.
    """
    if index < len(ENTERPRISES):
        return (ENTERPRISES[index],)
    if index == len(ENTERPRISES) or rng.random() < 0.2:
        return ENTERPRISES
    return (rng.choices(ENTERPRISES, weights=(6, 4))[0],)


def _agent_name(
    rng: random.Random, profiles: tuple[EnterpriseProfile, ...], used: set[str]
) -> tuple[str, tuple[str, str]]:
    """A dealer's company name (city, brand word, trade) not in ``used``, and its city."""
    trades = GENERAL_TRADES if len(profiles) > 1 else profiles[0].trades
    for _ in range(50):
        city = rng.choice(AGENT_CITIES)
        name = f"{city[0]}{rng.choice(AGENT_ROOTS)}{rng.choice(trades)}有限公司"
        if name not in used:
            break
    else:
        name = f"{name.removesuffix('有限公司')}{len(used) + 1}号有限公司"
    used.add(name)
    return name, city


def agents_create(
    rng: random.Random, enterprises: list[DemoEnterprise], count: int
) -> list[DemoAgent]:
    by_code = {e.enterprise.code: e.enterprise for e in enterprises}
    names: set[str] = set()
    usccs: set[str] = set()
    created = []
    for index in range(count):
        profiles = _agent_profiles(rng, index)
        name, (city, division) = _agent_name(rng, profiles, names)
        code = f"AG-{index + 1:04d}"
        agent = agent_create(
            code=code,
            name=name,
            uscc=_uscc(rng, division, usccs),
            enterprises=[by_code[p.code] for p in profiles],
            email=f"finance@{code.lower()}.agents.example",
            settlement_account_no=_account_no(rng),
            settlement_bank=f"{BANK_NAME.removesuffix('股份有限公司')}{city}分行",
        )
        created.append(DemoAgent(agent, sorted(p.code for p in profiles)))
    return created
