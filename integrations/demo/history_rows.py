"""Writing a planned synthetic history in bulk: ids reserved up front, rows by column.

Each model's rows carry every concrete column (the field's default where the generator sets
nothing), converted once per column for the backend, and are written with ``COPY`` on PostgreSQL
and multi-row ``INSERT`` on SQLite (``scf.sql``). Primary keys are reserved first (a sequence on
PostgreSQL; on SQLite, whose writers are serialised, the keys above the largest), so orders,
loans, repayments and journal lines can point at each other before anything is written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection, models

from lending.models import (
    AccountCode,
    CreditLine,
    Decision,
    Disbursement,
    EntryKind,
    JournalEntry,
    JournalLine,
    Loan,
    Program,
    Repayment,
)
from lending.scoring.bulk import BulkRows, reserve_ids
from lending.services.terms import interest_for
from orders.models import Agent, AgentRelationship, SalesOrder, SalesOrderLine
from orders.services.parties import uscc_complete
from scf.money import CENT

from .history_plan import PlannedAgent, PlannedLoan

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


def _cents(cents: int) -> Decimal:
    return Decimal(cents) / 100


@dataclass
class _Context:
    program: Program
    today: dt.date
    prefix: str
    detail: bool
    zone: ZoneInfo
    uscc_base: int
    tables: dict[str, BulkRows]

    def at(self, day: dt.date, hour: int) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(hour), tzinfo=self.zone)


def context(program: Program, today: dt.date, prefix: str, detail: bool) -> _Context:
    digest = int(hashlib.sha256(prefix.encode()).hexdigest(), 16)
    models_by_name: dict[str, type[models.Model]] = {
        "agent": Agent,
        "relationship": AgentRelationship,
        "line": CreditLine,
        "order": SalesOrder,
        "order_line": SalesOrderLine,
        "loan": Loan,
        "decision": Decision,
        "disbursement": Disbursement,
        "repayment": Repayment,
        "entry": JournalEntry,
        "entry_line": JournalLine,
    }
    return _Context(
        program=program,
        today=today,
        prefix=prefix,
        detail=detail,
        zone=ZoneInfo(program.time_zone),
        uscc_base=(digest % 10**5) * 10**8,
        tables={name: BulkRows(model) for name, model in models_by_name.items()},
    )


def _counts(ctx: _Context, plans: list[PlannedAgent]) -> dict[str, int]:
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


def _agent_rows(ctx: _Context, plan: PlannedAgent, ids: dict[str, Any]) -> tuple[int, int]:
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


def _order_rows(ctx: _Context, plan: PlannedAgent, agent_id: int, ids: dict[str, Any]) -> list[int]:
    order_ids = []
    for number, (day, cents, status) in enumerate(plan.orders):
        order_id = next(ids["order"])
        order_ids.append(order_id)
        amount = _cents(cents)
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


def _line_row(
    ctx: _Context, plan: PlannedAgent, ids: tuple[int, int], outstanding: Decimal
) -> None:
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


def _loan_row(
    ctx: _Context, loan: PlannedLoan, keys: tuple[int, int, int, int], order_cents: int
) -> Decimal:
    """Write one loan (and what hangs off it); returns the principal still open."""
    loan_id, line_id, agent_id, order_id = keys
    program, principal = ctx.program, _cents(loan.principal)
    repaid = loan.repaid_on <= ctx.today
    dpd = 0 if repaid else max(0, (ctx.today - loan.due_date).days)
    requested = ctx.at(loan.value_date - dt.timedelta(days=1), 9)
    ctx.tables["loan"].add(
        id=loan_id,
        program_id=program.pk,
        credit_line_id=line_id,
        agent_id=agent_id,
        order_id=order_id,
        status="repaid" if repaid else ("overdue" if dpd > 0 else "active"),
        currency=program.currency,
        order_amount=_cents(order_cents),
        principal=principal,
        advance_rate=program.advance_rate,
        annual_rate=program.annual_rate,
        penalty_rate=program.penalty_rate,
        day_count=program.day_count,
        tenor_days=program.tenor_days,
        grace_days=program.grace_days,
        outstanding_principal=Decimal("0.00") if repaid else principal,
        days_past_due=dpd,
        value_date=loan.value_date,
        due_date=loan.due_date,
        reference=f"{ctx.prefix}L{loan_id}",
        requested_at=requested,
        decided_at=requested,
        approved_at=requested,
        disbursed_at=ctx.at(loan.value_date, 10),
        closed_at=ctx.at(loan.repaid_on, 16) if repaid else None,
    )
    return Decimal("0.00") if repaid else principal


def _float_safe(penalty: Decimal, interest: Decimal, principal: Decimal) -> Decimal:
    """SQLite checks ``amount = to_penalty + to_interest + to_principal + to_overpayment`` in
    binary floating point; a split whose float sum misses the amount is refused. Nudge the interest
    by a cent until the split passes (never needed on PostgreSQL, where NUMERIC is exact)."""
    if connection.vendor == "postgresql":
        return interest
    for nudge in (0, 1, -1, 2, -2, 3, -3):
        candidate = interest + CENT * nudge
        total = penalty + candidate + principal
        if float(penalty) + float(candidate) + float(principal) + 0.0 == float(total):
            return candidate
    return interest


def _repayment_row(ctx: _Context, loan: PlannedLoan, loan_id: int, ids: dict[str, Any]) -> None:
    """Principal, interest for the days lent and penalty for the days past grace, in one payment."""
    program, principal = ctx.program, _cents(loan.principal)
    late = max(0, (loan.repaid_on - loan.due_date).days - program.grace_days)
    days = (loan.repaid_on - loan.value_date).days
    interest = interest_for(principal, program.annual_rate, days, program.day_count)
    penalty = interest_for(principal, program.penalty_rate, late, program.day_count)
    interest = _float_safe(penalty, interest, principal)
    ctx.tables["repayment"].add(
        id=next(ids["repayment"]),
        loan_id=loan_id,
        reference=f"{ctx.prefix}-R{loan_id}",
        amount=principal + interest + penalty,
        currency=program.currency,
        value_date=loan.repaid_on,
        source="bank_statement",
        to_penalty=penalty,
        to_interest=interest,
        to_principal=principal,
        to_overpayment=Decimal("0.00"),
        backdated=False,
        recorded_by="synthetic-history",
        received_at=ctx.at(loan.repaid_on, 11),
    )


def _detail_rows(ctx: _Context, loan: PlannedLoan, loan_id: int, ids: dict[str, Any]) -> None:
    """The loan's decision and settled disbursement; an open loan's disbursement entry."""
    program, principal = ctx.program, _cents(loan.principal)
    decided = ctx.at(loan.value_date - dt.timedelta(days=1), 9)
    settled = ctx.at(loan.value_date, 10)
    ctx.tables["decision"].add(
        id=next(ids["decision"]),
        loan_id=loan_id,
        outcome="approved",
        inputs={"source": "synthetic history"},
        engine_version="synthetic-history",
        decided_at=decided,
    )
    enterprise = program.enterprise
    ctx.tables["disbursement"].add(
        id=next(ids["disbursement"]),
        loan_id=loan_id,
        end_to_end_id=f"{ctx.prefix}E{loan_id}",
        amount=principal,
        currency=program.currency,
        creditor_name=enterprise.settlement_account_name or enterprise.name,
        creditor_account=enterprise.settlement_account_no or "0",
        creditor_bank=enterprise.settlement_bank,
        status="settled",
        attempts=1,
        created_at=decided,
        sent_at=settled,
        settled_at=settled,
    )
    if loan.repaid_on > ctx.today:
        _disbursement_entry(ctx, loan, loan_id, ids)


def _disbursement_entry(
    ctx: _Context, loan: PlannedLoan, loan_id: int, ids: dict[str, Any]
) -> None:
    """Dr principal receivable (the loan) / Cr settlement: an open loan's balance in the ledger."""
    program, principal, entry_id = ctx.program, _cents(loan.principal), next(ids["entry"])
    ctx.tables["entry"].add(
        id=entry_id,
        kind=EntryKind.DISBURSEMENT.value,
        idempotency_key=f"{ctx.prefix}:disburse:{loan_id}",
        business_date=loan.value_date,
        currency=program.currency,
        loan_id=loan_id,
        program_id=program.pk,
        description="Synthetic history: disbursement settled",
        posted_at=ctx.at(loan.value_date, 10),
    )
    for account, debit, credit, line_loan in (
        (AccountCode.PRINCIPAL_RECEIVABLE, principal, Decimal("0.00"), loan_id),
        (AccountCode.SETTLEMENT, Decimal("0.00"), principal, None),
    ):
        ctx.tables["entry_line"].add(
            id=next(ids["entry_line"]),
            entry_id=entry_id,
            account=account.value,
            loan_id=line_loan,
            currency=program.currency,
            debit=debit,
            credit=credit,
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


def write_batch(ctx: _Context, plans: list[PlannedAgent], history: GeneratedHistory) -> None:
    counts = _counts(ctx, plans)
    ids = {name: iter(reserve_ids(ctx.tables[name].model, n)) for name, n in counts.items()}
    for plan in plans:
        agent_id, line_id = _agent_rows(ctx, plan, ids)
        order_ids = _order_rows(ctx, plan, agent_id, ids)
        open_principal = Decimal("0.00")
        for loan in plan.loans:
            loan_id = next(ids["loan"])
            keys = (loan_id, line_id, agent_id, order_ids[loan.order])
            open_principal += _loan_row(ctx, loan, keys, plan.orders[loan.order][1])
            if loan.repaid_on <= ctx.today:
                _repayment_row(ctx, loan, loan_id, ids)
            if ctx.detail:
                _detail_rows(ctx, loan, loan_id, ids)
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


def analyze(ctx: _Context) -> None:
    """PostgreSQL: refresh the planner's statistics of the tables just loaded (as after any bulk
    load; ANALYZE counts this transaction's own rows). Without it a freshly loaded table looks
    empty and a batch query over it gets nested loops."""
    if connection.vendor != "postgresql":
        return
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        for table in ctx.tables.values():
            cursor.execute(f"ANALYZE {qn(table.model._meta.db_table)}")
