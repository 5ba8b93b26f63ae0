"""A synthetic order and repayment history with a known ground truth, written in bulk.

Used by the tests (does the model find what we planted?), the benchmark (100,000 agents over a
year) and the demo (enough history for training to mean something).

Ground truth
------------
Every agent *i* gets a latent quality ``q_i ~ N(0, 1)`` (higher is better) and a business size
``s_i = exp(N(0, 0.5))``. Nothing else about the agent is random, and ``q_i`` drives all of:

* **order regularity**: the agent's ordering intensity in each 30-day month is
  ``g ~ Gamma(shape k_i, scale 1 / k_i)`` (mean 1) with ``k_i = exp(1.0 + 1.2 q_i)``; a good
  agent orders at a steady rate, a poor one in bursts and droughts. Orders in a month are
  ``Poisson(3 s_i g)``, on uniformly drawn days; amounts are log-normal around 30,000 (sigma 0.6).
* **cancellations**: an order is cancelled with probability ``sigmoid(-3.0 - 0.8 q_i)``;
* **financing**: 55 % of the other orders are financed (a loan of ``advance_rate`` of the amount,
  value date 0-2 days after the order, due ``tenor_days`` later rolled to a business day); a
  financed order is later cancelled (a return) with probability ``sigmoid(-4.0 - 0.8 q_i)``;
* **repayment**: a loan goes 30+ days past due with probability
  ``p_i = sigmoid(-2.8 - 1.3 q_i)`` (the *true* PD, about 9 % on average; repaid 30 + Exp(45)
  days after its due date); otherwise it is repaid late (1-24 days) with probability
  ``sigmoid(-1.0 - 1.5 q_i)``, else on time (0-14 days early). Repayments value-dated after
  ``today`` have not happened: such a loan is still open.

30 % of agents start at a uniformly drawn point in the first half of the period (tenure). The
true PD ``p_i`` is returned per credit line, so a test can compare the trained model with the
truth and with a naive rule. What this makes learnable: on 18 months of history a trained model
reaches a hold-out AUC of about 0.72-0.78 against 0.80 for the true PD and 0.56-0.71 for ranking
by the worst past days past due; one year is enough to score on but gives thinner training
snapshots (the first months have no repayment history yet).

What is written (ids reserved up front; ``COPY`` on PostgreSQL, multi-row ``INSERT`` on SQLite)
------------------------------------------------------------------------------------------------
Agents (``<prefix>-<n>``) buying from the program's enterprise, one credit line each, their
orders, the loans of financed orders with one repayment each (principal + ACT/basis interest +
penalty after grace) when repaid by ``today``, else still open (active, or overdue with its DPD).
A line's limit is the larger of 100,000, 60 % of its last 90 days' volume (rounded to 10,000)
and its outstanding principal (rounded up); its grade starts at C. The program's outstanding
principal grows by the open loans (its limit is raised through ``program_update`` if needed).
With ``detail=True`` (tests, demo) each loan also gets its decision and settled disbursement,
each order one line, and each open loan its disbursement journal entry, so ``ledger_check``
agrees with the book (closed loans net to zero, so the summarised past posts nothing). The
benchmark passes ``detail=False``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import models, transaction

from lending.models import Bank, CreditModel, Program, ProgramStatus
from lending.services.credit_models import credit_model_train
from lending.services.line_changes import RunResult
from lending.services.line_management import credit_nightly
from lending.services.lines import program_create, program_update
from orders.services.parties import enterprise_create, uscc_complete

from .history_context import context
from .history_plan import Behaviour, plan_agent
from .history_rows import GeneratedHistory, analyze, write_batch

__all__ = [
    "Behaviour",
    "DemoCredit",
    "GeneratedHistory",
    "cohort_program",
    "demo_credit_seed",
    "history_generate",
]


def _book_on_program(program: Program, open_principal: Decimal) -> None:
    """The open loans use the program's limit: raise the limit (audited) if they do not fit."""
    locked = Program.objects.select_for_update().get(pk=program.pk)
    needed = locked.outstanding_principal + locked.reserved + open_principal
    if needed > locked.limit:
        step = Decimal(1_000_000)
        program_update(
            actor=None, program=locked, limit=(needed / step).to_integral_value() * step + step
        )
    Program.objects.filter(pk=program.pk).update(
        outstanding_principal=models.F("outstanding_principal") + open_principal
    )


@transaction.atomic
def history_generate(
    *,
    program: Program,
    agents: int,
    today: dt.date,
    seed: int,
    days: int = 365,
    prefix: str = "SYN",
    behaviour: Behaviour | None = None,
    detail: bool = True,
    batch_size: int = 2000,
) -> GeneratedHistory:
    """Write ``agents`` synthetic agents with ``days`` of history ending on ``today``.

    Deterministic for (seed, program terms, today): agent *n* is always the same agent. ``prefix``
    (at most 8 characters) names the agents, orders and loans, so several cohorts can share a
    database. One transaction.
    """
    if not 1 <= len(prefix) <= 8:
        raise ValueError("The prefix must be 1 to 8 characters.")
    behaviour = behaviour or Behaviour()
    start = today - dt.timedelta(days=days - 1)
    ctx = context(program, today, prefix, detail)
    history = GeneratedHistory(program=program)
    for first in range(0, agents, batch_size):
        plans = [
            plan_agent(seed=seed, index=i, program=program, start=start, today=today, b=behaviour)
            for i in range(first, min(agents, first + batch_size))
        ]
        write_batch(ctx, plans, history)
    _book_on_program(program, history.open_principal)
    analyze(ctx)
    return history


# --- a program for a cohort, and the demo's entry point -----------------------------------------

SYNTHETIC_TERMS: dict[str, Any] = {
    "currency": "CNY",
    "advance_rate": Decimal("0.8000"),
    "limit": Decimal("100000000.00"),
    "min_principal": Decimal("1000.00"),
    "max_principal": Decimal("2000000.00"),
    "tenor_days": 90,
    "annual_rate": Decimal("0.045000"),
    "day_count": "ACT/360",
    "grace_days": 3,
    "penalty_rate": Decimal("0.067500"),
    "max_order_age_days": 60,
    "max_dpd_tolerated": 0,
    "auto_approve_limit": Decimal("300000.00"),
    "auto_approve_grade": "C",
    "maker_checker_threshold": Decimal("500000.00"),
    "review_hold_hours": 48,
}


def cohort_program(*, code: str, name: str = "") -> Program:
    """A bank (shared), a core enterprise and a program for a synthetic cohort named ``code``
    (``name`` names the enterprise and the program; by default they say "synthetic")."""
    bank, _ = Bank.objects.get_or_create(code="BANK-SYN", defaults={"name": "Synthetic Bank"})
    digest = int(hashlib.sha256(code.encode()).hexdigest(), 16) % 10**13
    enterprise, _credentials = enterprise_create(
        code=f"CE-{code}",
        name=name or f"Synthetic enterprise {code}",
        uscc=uscc_complete(f"9145{digest:013d}"),
        settlement_account_no=f"6217{digest:013d}",
        settlement_bank="Synthetic Bank",
    )
    return program_create(
        actor=None,
        bank=bank,
        enterprise=enterprise,
        code=f"PRG-{code}",
        name=name or f"Synthetic dealer finance {code}",
        **SYNTHETIC_TERMS,
    )


DEMO_AGENTS = 300
DEMO_DAYS = 540
DEMO_COHORT = "HIST"
DEMO_COHORT_NAME = "Scoring history (synthetic dealers)"


@dataclass
class DemoCredit:
    history: GeneratedHistory
    model: CreditModel
    runs: list[RunResult]


def demo_credit_seed(*, today: dt.date, seed: int, agents: int = DEMO_AGENTS) -> DemoCredit:
    """The demo's credit data: ``agents`` synthetic dealers with 18 months of orders and loans, a
    model trained on them (promoted: it is the first), and one nightly run as of ``today`` that
    grades every line of every active program and manages the limits.

    The dealers buy from an enterprise of their own (``CE-HIST``) in a program of their own
    (``PRG-HIST``) with the synthetic bank, so the demo's programs, their dashboards and their
    enterprise admins see only the demo's agents and orders. The program is suspended once the
    model is trained: it lends nothing, and the nightly run grades the demo's lines, not its own.

    Call it after the demo's programs and lines exist. 300 agents give about 9,200 loans (of
    those whose outcome is known, about 11 % reached 30 days past due) and a hold-out AUC near
    0.73, in a few seconds on SQLite.
    """
    program = cohort_program(code=DEMO_COHORT, name=DEMO_COHORT_NAME)
    history = history_generate(
        program=program, agents=agents, today=today, seed=seed, days=DEMO_DAYS
    )
    model = credit_model_train(as_of=today)
    program_update(actor=None, program=program, status=ProgramStatus.SUSPENDED)
    return DemoCredit(history, model, credit_nightly(as_of=today))
