"""The ground truth of the synthetic history: agents' latent quality and what it drives.

Pure and deterministic: ``plan_agent(seed=..., index=n, ...)`` always plans the same agent *n*
(its own ``numpy`` generator seeded with ``[seed, n]``), whatever else is planned. The model of
behaviour is described in ``integrations.demo.history``; its parameters are ``Behaviour``.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from lending.models import Program
from lending.services.terms import due_date_for, principal_for


@dataclass(frozen=True)
class Behaviour:
    """The ground truth's parameters (see the module docstring)."""

    orders_per_month: float = 3.0
    mean_order_amount: float = 30_000.0
    amount_sigma: float = 0.6
    size_sigma: float = 0.5
    regularity: tuple[float, float] = (1.0, 1.2)
    cancel: tuple[float, float] = (-3.0, -0.8)
    returned: tuple[float, float] = (-4.0, -0.8)
    finance_share: float = 0.55
    bad: tuple[float, float] = (-2.8, -1.3)
    late: tuple[float, float] = (-1.0, -1.5)
    late_entrant_share: float = 0.3
    bad_delay_mean_days: float = 45.0


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@dataclass
class PlannedLoan:
    order: int  # index in the agent's orders
    value_date: dt.date
    due_date: dt.date
    principal: int  # cents
    repaid_on: dt.date  # may lie after today: then still open
    bad: bool


@dataclass
class PlannedAgent:
    index: int
    quality: float
    true_pd: float
    # (date, amount in cents, status)
    orders: list[tuple[dt.date, int, str]] = field(default_factory=list)
    loans: list[PlannedLoan] = field(default_factory=list)


# --- planning: pure, deterministic per (seed, agent index) -------------------------------------


def _order_offsets(
    rng: np.random.Generator, quality: float, size: float, span: int, b: Behaviour
) -> list[int]:
    """Order days (from the agent's start): Poisson counts around a Gamma monthly intensity."""
    starts = np.arange(0, span, 30)
    lengths = np.minimum(30, span - starts)
    shape = math.exp(b.regularity[0] + b.regularity[1] * quality)
    intensity = rng.gamma(shape, 1.0 / shape, size=starts.size)
    counts = rng.poisson(b.orders_per_month * size * intensity * lengths / 30)
    within = np.floor(rng.random(int(counts.sum())) * np.repeat(lengths, counts)).astype(np.int64)
    return sorted((np.repeat(starts, counts) + within).tolist())


def _order_status(age_days: int) -> str:
    if age_days <= 3:
        return "confirmed"
    return "shipped" if age_days <= 14 else "delivered"


@functools.lru_cache(maxsize=4096)
def _due_date(value: dt.date, tenor_days: int, country: str) -> dt.date:
    return due_date_for(value, tenor_days, country)


@dataclass(frozen=True)
class _Draws:
    """Every random number an agent's orders and loans need, drawn at once (one per order)."""

    amount: list[int]
    cancel: list[float]
    finance: list[float]
    returned: list[float]
    lag: list[int]
    bad: list[float]
    late: list[float]
    late_days: list[int]
    early_days: list[int]
    delay: list[float]


def _draws(rng: np.random.Generator, n: int, b: Behaviour) -> _Draws:
    sigma = b.amount_sigma
    amount = b.mean_order_amount * np.exp(rng.normal(-(sigma**2) / 2, sigma, n)) * 100
    uniforms = rng.random((5, n)).tolist()
    return _Draws(
        amount=np.maximum(100_000, np.rint(amount)).astype(np.int64).tolist(),
        cancel=uniforms[0],
        finance=uniforms[1],
        returned=uniforms[2],
        lag=rng.integers(0, 3, n).tolist(),
        bad=uniforms[3],
        late=uniforms[4],
        late_days=rng.integers(1, 25, n).tolist(),
        early_days=rng.integers(0, 15, n).tolist(),
        delay=rng.exponential(b.bad_delay_mean_days, n).tolist(),
    )


def _plan_loan(
    agent: PlannedAgent, i: int, d: _Draws, program: Program, today: dt.date, b: Behaviour
) -> PlannedLoan:
    """The loan of order ``i``: value date, due date, and when it is repaid (maybe after today)."""
    order_date, cents, _ = agent.orders[i]
    value = min(today, order_date + dt.timedelta(days=d.lag[i]))
    due = _due_date(value, program.tenor_days, program.holiday_country)
    principal = principal_for(Decimal(cents) / 100, program.advance_rate)
    bad = d.bad[i] < agent.true_pd
    if bad:
        repaid = due + dt.timedelta(days=30 + int(d.delay[i]))
    elif d.late[i] < sigmoid(b.late[0] + b.late[1] * agent.quality):
        repaid = due + dt.timedelta(days=d.late_days[i])
    else:
        repaid = max(value + dt.timedelta(days=1), due - dt.timedelta(days=d.early_days[i]))
    return PlannedLoan(i, value, due, int(principal * 100), repaid, bad)


def plan_agent(
    *, seed: int, index: int, program: Program, start: dt.date, today: dt.date, b: Behaviour
) -> PlannedAgent:
    """One agent's history: the same (seed, index) always gives the same agent."""
    rng = np.random.default_rng([seed, index])
    quality, size = float(rng.normal()), math.exp(rng.normal(0.0, b.size_sigma))
    if rng.random() < b.late_entrant_share:
        start += dt.timedelta(days=int(rng.integers(0, max(1, (today - start).days // 2))))
    agent = PlannedAgent(index, quality, sigmoid(b.bad[0] + b.bad[1] * quality))
    cancel = sigmoid(b.cancel[0] + b.cancel[1] * quality)
    returned = sigmoid(b.returned[0] + b.returned[1] * quality)
    offsets = _order_offsets(rng, quality, size, (today - start).days + 1, b)
    d = _draws(rng, len(offsets), b)
    for i, offset in enumerate(offsets):
        day = start + dt.timedelta(days=offset)
        status = "cancelled" if d.cancel[i] < cancel else _order_status((today - day).days)
        agent.orders.append((day, d.amount[i], status))
        if status == "cancelled" or day >= today or d.finance[i] >= b.finance_share:
            continue
        agent.loans.append(_plan_loan(agent, i, d, program, today, b))
        if (today - day).days > 7 and d.returned[i] < returned:
            agent.orders[i] = (day, d.amount[i], "cancelled")
    return agent
