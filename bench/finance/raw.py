"""The raw SQL floor: the database work of a finance decision written by hand with psycopg2
(lock the line FOR UPDATE, insert loan and decision, reserve on line and program with
conditional UPDATEs, commit), from ``--clients`` threads with a connection each: what the click
would cost with no framework at all, to compare the app with."""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from typing import Any

from bench.finance.clicks import ADVANCE_RATE, AUTO_APPROVE_LIMIT, Click, Cohort, Setup
from bench.finance.phases import PhaseResult
from bench.lib.cpu import CpuMeter
from bench.lib.db import bench_dsn
from bench.lib.processes import run_threads

RULE_NAMES = [
    "order_status",
    "order_not_financed",
    "order_age",
    "currency",
    "program_active",
    "agent_active",
    "line_frozen",
    "agent_overdue",
    "amount_range",
    "line_headroom",
    "program_headroom",
    "auto_approve_limit",
    "auto_approve_grade",
]


def _raw_decision_json(click: Click, principal: Decimal, available: Decimal) -> tuple[str, str]:
    """Rules and inputs of about the size the service stores, so the rows weigh the same."""
    rules = [{"rule": r, "outcome": "pass", "code": None, "detail": ""} for r in RULE_NAMES]
    inputs = {
        "order_id": click.order_id,
        "order_amount": str(click.amount),
        "principal": str(principal),
        "line_available": str(available),
        "order_status": "confirmed",
        "order_currency": "CNY",
        "agent_status": "active",
        "relationship_active": True,
        "agent_max_dpd": 0,
        "risk_grade": "B",
        "program_status": "active",
    }
    return json.dumps(rules), json.dumps(inputs)


# Columns the raw path sets itself; any other NOT NULL column without a database default (the
# schema grows with the project) gets the zero value of its type, as the model defaults do.
LOAN_PARAMS = [
    "program_id",
    "credit_line_id",
    "agent_id",
    "order_id",
    "status",
    "order_amount",
    "principal",
    "reserved_amount",
    "due_date",
    "reference",
    "requested_by_id",
    "requested_at",
    "decided_at",
    "approved_at",
]
LOAN_CONSTANTS = {
    "currency": "'CNY'",
    "advance_rate": "0.8",
    "annual_rate": "0.054",
    "penalty_rate": "0.081",
    "day_count": "'ACT/360'",
    "tenor_days": "90",
    "grace_days": "3",
}
ZERO_BY_TYPE = {
    "numeric": "0",
    "integer": "0",
    "bigint": "0",
    "smallint": "0",
    "boolean": "false",
    "character varying": "''",
    "text": "''",
    "jsonb": "'{}'",
    "date": "CURRENT_DATE",
    "timestamp with time zone": "now()",
}


def insert_sql(cur: Any, table: str, params: list[str], constants: dict[str, str]) -> str:
    """``INSERT INTO table`` with ``params`` as named placeholders, ``constants`` as literals and
    every other required column (NOT NULL, no default) as its type's zero."""
    cur.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s "
        "AND is_nullable = 'NO' AND column_default IS NULL AND is_identity = 'NO'",
        [table],
    )
    fill = dict(constants)
    for column, data_type in cur.fetchall():
        if column not in params and column not in fill:
            fill[column] = ZERO_BY_TYPE[data_type]
    columns = [*params, *fill]
    values = [f"%({c})s" for c in params] + list(fill.values())
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(values)}) RETURNING id"


RESERVE_SQL = """
UPDATE {table} SET reserved = reserved + %s
WHERE id = %s AND "limit" >= outstanding_principal + reserved + %s"""


def _raw_one(conn: Any, sql: dict[str, str], program_id: int, click: Click) -> str:
    principal = (click.amount * ADVANCE_RATE).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
    now = dt.datetime.now(dt.UTC)
    with conn.cursor() as cur:
        cur.execute(
            'SELECT "limit" - outstanding_principal - reserved FROM lending_creditline '
            "WHERE id = %s FOR UPDATE",
            [click.line_id],
        )
        available = cur.fetchone()[0]
        if principal > available:
            outcome, reasons = "declined", [{"code": "insufficient_credit_line", "detail": ""}]
        elif principal > AUTO_APPROVE_LIMIT:
            outcome, reasons = "in_review", [{"code": "above_auto_approve_limit", "detail": ""}]
        else:
            outcome, reasons = "approved", []
        reserved = principal if outcome != "declined" else Decimal("0.00")
        cur.execute(
            sql["loan"],
            {
                "program_id": program_id,
                "credit_line_id": click.line_id,
                "agent_id": click.agent_id,
                "order_id": click.order_id,
                "status": outcome,
                "order_amount": click.amount,
                "principal": principal,
                "reserved_amount": reserved,
                "due_date": now.date() + dt.timedelta(days=90),
                "reference": f"RAW{uuid.uuid4().hex[:12].upper()}",
                "requested_by_id": click.user_id,
                "requested_at": now,
                "decided_at": now,
                "approved_at": now if outcome == "approved" else None,
            },
        )
        loan_id = cur.fetchone()[0]
        rules, inputs = _raw_decision_json(click, principal, available)
        cur.execute(
            sql["decision"],
            {
                "loan_id": loan_id,
                "outcome": outcome,
                "reasons": json.dumps(reasons),
                "rules": rules,
                "inputs": inputs,
                "decided_at": now,
            },
        )
        if reserved:
            cur.execute(
                RESERVE_SQL.format(table="lending_creditline"), [reserved, click.line_id, reserved]
            )
            cur.execute(
                RESERVE_SQL.format(table="lending_program"), [reserved, program_id, reserved]
            )
            if cur.rowcount != 1:
                conn.rollback()
                return "program_exhausted"
    conn.commit()
    return outcome


def bench_raw(url: str, setup: Setup, cohort: Cohort, args: argparse.Namespace) -> PhaseResult:
    import psycopg2

    res = PhaseResult("raw-sql", f"raw SQL psycopg2, {args.clients} threads", args.clients)
    conns = [psycopg2.connect(**bench_dsn(url)) for _ in range(args.clients)]
    with conns[0].cursor() as cur:
        decision_params = ["loan_id", "outcome", "reasons", "rules", "inputs", "decided_at"]
        sql = {
            "loan": insert_sql(cur, "lending_loan", LOAN_PARAMS, LOAN_CONSTANTS),
            "decision": insert_sql(
                cur, "lending_decision", decision_params, {"engine_version": "'raw-sql'"}
            ),
        }
    conns[0].commit()
    warm, measured = cohort.clicks[: args.warmup], cohort.clicks[args.warmup :]
    lock = threading.Lock()

    def worker(clicks: list[Click], record: bool) -> Callable[[int], None]:
        counter = itertools.count()

        def run(i: int) -> None:
            latencies: list[float] = []
            outcomes = Counter[str]()
            errors: list[str] = []
            while (n := next(counter)) < len(clicks):
                start = time.perf_counter()
                try:
                    outcomes[_raw_one(conns[i], sql, setup.program_id, clicks[n])] += 1
                except psycopg2.Error as exc:
                    conns[i].rollback()
                    errors.append(f"order {clicks[n].order_id}: {exc!r}")
                    continue
                latencies.append((time.perf_counter() - start) * 1000)
            if record:
                with lock:
                    res.latencies_ms.extend(latencies)
                    res.outcomes.update(outcomes)
                    res.errors.extend(errors)

        return run

    try:
        run_threads(args.clients, worker(warm, record=False))
        meter = CpuMeter(lambda pid, comm, pgrp: False, bench_dsn(url))
        with meter:
            res.seconds = run_threads(args.clients, worker(measured, record=True))
    finally:
        for conn in conns:
            conn.close()
    res.cpu, res.waits = meter.result, meter.wait_profile()
    res.decisions = len(res.latencies_ms)
    return res
