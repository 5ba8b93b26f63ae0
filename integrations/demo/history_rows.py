"""Writing a planned synthetic history in bulk: ids reserved up front, rows by column.

Each model's rows carry every concrete column (the field's default where the generator sets
nothing), converted once per column for the backend, and are written with ``COPY`` on PostgreSQL
and multi-row ``INSERT`` on SQLite (``scf.sql``). Primary keys are reserved first (a sequence on
PostgreSQL; on SQLite, whose writers are serialised, the keys above the largest), so orders,
loans, repayments and journal lines can point at each other before anything is written.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import connection

from lending.models import (
    Program,
)
from lending.scoring.bulk import reserve_ids
from orders.services.parties import uscc_complete
from scf.money import CENT

from .history_context import Context, from_cents
from .history_loans import detail_rows, loan_row, repayment_row
from .history_plan import PlannedAgent

LINE_STEP = 10_000
MIN_LINE = 100_000
LINE_VOLUME_SHARE = 0.6


@dataclass
class GeneratedHistory:
    program: Program
    line_ids: list[int] = field(default_factory=list)
    quality: dict[int, float] = field(default_factory=dict)  # by line id
    true_pd: dict[int, float] = field(default_factory=dict)  # by line id
    orders: int = 0
    loans: int = 0
    bad_loans: int = 0
    repayments: int = 0
    open_principal: Decimal = Decimal("0.00")


def _counts(ctx: Context, plans: list[PlannedAgent]) -> dict[str, int]:
    orders = sum(len(p.orders) for p in plans)
    loans = [loan for p in plans for loan in p.loans]
    repaid = sum(1 for loan in loans if loan.repaid_on <= ctx.today)
    detail = 1 if ctx.detail else 0
    return {
        "agent": len(plans),
        "relationship": len(plans),
        "line": len(plans),
        "order": orders,
        "order_line": orders * detail,
        "loan": len(loans),
        "decision": len(loans) * detail,
        "disbursement": len(loans) * detail,
        "repayment": repaid,
        "entry": (len(loans) - repaid) * detail,
        "entry_line": 2 * (len(loans) - repaid) * detail,
    }


def _agent_rows(ctx: Context, plan: PlannedAgent, ids: dict[str, Any]) -> tuple[int, int]:
    agent_id, line_id = next(ids["agent"]), next(ids["line"])
    since = plan.orders[0][0] if plan.orders else ctx.today
    ctx.tables["agent"].add(
        id=agent_id,
        code=f"{ctx.prefix}-{plan.index:06d}",
        name=f"Synthetic dealer {ctx.prefix}-{plan.index}",
        uscc=uscc_complete(f"9144{ctx.uscc_base + plan.index:013d}"),
        created_at=ctx.at(since, 8),
        settlement_account_name=f"Synthetic dealer {ctx.prefix}-{plan.index}",
        settlement_account_no=f"62{ctx.uscc_base + plan.index:014d}",
        settlement_bank="Synthetic Bank",
    )
    ctx.tables["relationship"].add(
        id=next(ids["relationship"]),
        agent_id=agent_id,
        enterprise_id=ctx.program.enterprise_id,
        since=since,
        active=True,
    )
    return agent_id, line_id


def _order_rows(ctx: Context, plan: PlannedAgent, agent_id: int, ids: dict[str, Any]) -> list[int]:
    order_ids = []
    for number, (day, cents, status) in enumerate(plan.orders):
        order_id = next(ids["order"])
        order_ids.append(order_id)
        amount = from_cents(cents)
        ctx.tables["order"].add(
            id=order_id,
            enterprise_id=ctx.program.enterprise_id,
            agent_id=agent_id,
            external_id=f"{ctx.prefix}-{plan.index:06d}-{number:05d}",
            amount=amount,
            currency=ctx.program.currency,
            status=status,
            order_date=day,
            version=2 if status == "cancelled" else 1,
            raw_payload={"source": "synthetic history"},
            created_at=ctx.at(day, 9),
            updated_at=ctx.at(day, 9),
        )
        if ctx.detail:
            ctx.tables["order_line"].add(
                id=next(ids["order_line"]),
                order_id=order_id,
                line_no=1,
                sku="SYN-GOODS",
                quantity=Decimal(1),
                unit_price=amount,
                amount=amount,
            )
    return order_ids


def _line_limit(plan: PlannedAgent, today: dt.date, outstanding: Decimal) -> Decimal:
    since = today - dt.timedelta(days=90)
    volume = sum(c for d, c, s in plan.orders if d > since and s != "cancelled") / 100
    by_volume = math.floor(volume * LINE_VOLUME_SHARE / LINE_STEP) * LINE_STEP
    covering = math.ceil(outstanding / LINE_STEP) * LINE_STEP
    return Decimal(max(MIN_LINE, by_volume, covering)).quantize(CENT)


def _line_row(ctx: Context, plan: PlannedAgent, ids: tuple[int, int], outstanding: Decimal) -> None:
    agent_id, line_id = ids
    ctx.tables["line"].add(
        id=line_id,
        agent_id=agent_id,
        program_id=ctx.program.pk,
        limit=_line_limit(plan, ctx.today, outstanding),
        outstanding_principal=outstanding,
        risk_grade="C",
        created_at=ctx.at(plan.orders[0][0] if plan.orders else ctx.today, 8),
        updated_at=ctx.at(ctx.today, 8),
    )


WRITE_ORDER = (
    "agent",
    "relationship",
    "line",
    "order",
    "order_line",
    "loan",
    "decision",
    "disbursement",
    "repayment",
    "entry",
    "entry_line",
)


def write_batch(ctx: Context, plans: list[PlannedAgent], history: GeneratedHistory) -> None:
    counts = _counts(ctx, plans)
    ids = {name: iter(reserve_ids(ctx.tables[name].model, n)) for name, n in counts.items()}
    for plan in plans:
        agent_id, line_id = _agent_rows(ctx, plan, ids)
        order_ids = _order_rows(ctx, plan, agent_id, ids)
        open_principal = Decimal("0.00")
        for loan in plan.loans:
            loan_id = next(ids["loan"])
            keys = (loan_id, line_id, agent_id, order_ids[loan.order])
            open_principal += loan_row(ctx, loan, keys, plan.orders[loan.order][1])
            if loan.repaid_on <= ctx.today:
                repayment_row(ctx, loan, loan_id, ids)
            if ctx.detail:
                detail_rows(ctx, loan, loan_id, ids)
        _line_row(ctx, plan, (agent_id, line_id), open_principal)
        history.line_ids.append(line_id)
        history.quality[line_id], history.true_pd[line_id] = plan.quality, plan.true_pd
        history.open_principal += open_principal
    history.orders += counts["order"]
    history.loans += counts["loan"]
    history.repayments += counts["repayment"]
    history.bad_loans += sum(1 for p in plans for loan in p.loans if loan.bad)
    for name in WRITE_ORDER:
        ctx.tables[name].write()


def analyze(ctx: Context) -> None:
    """PostgreSQL: refresh the planner's statistics of the tables just loaded (as after any bulk
    load; ANALYZE counts this transaction's own rows). Without it a freshly loaded table looks
    empty and a batch query over it gets nested loops."""
    if connection.vendor != "postgresql":
        return
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        for table in ctx.tables.values():
            cursor.execute(f"ANALYZE {qn(table.model._meta.db_table)}")
