"""Close of business with tripartite guarantee claims, side by side with the plain night.

``python -m bench.cob --tripartite`` (or ``python -m bench.cob_claims``), in its own database
(``scf_bench_cob*``; dropped and recreated unless ``--reuse``). It seeds, set-based, two programs of
``--loans`` identical open loans (70 % of the order lent): ``plain``, without tripartite terms,
and ``claims``, with terms (30 % margin, buyback guarantee, trigger 60 days past due), an
agreement per agent and what the finance path leaves per loan: goods held, the margin paid out
with the loan, a security deposit on two loans in three, the margin's worth of goods released on
one in four; margin accounts and the ledger hold the totals (per account, not per loan). Due dates
fall on 100 consecutive days: ``--share`` (1 %) of the loans reach the trigger each night. Before
each night with claims the caps are set to fit about three quarters of them (the program's) and
half of its own for one agent in ten: claims are cut short and ``cap_exhausted`` every night.

Nights alternate plain / claims / claims / plain (``--days`` pairs), each one committed
``cob_run`` with its claims step timed inside. Checks: one claim per loan at the trigger, raised
or ``cap_exhausted``, within the caps; each night's entries (one per loan) equal its claims; the
book check's tripartite part clean, margin security reconciled; a rerun raises nothing.
``--check`` also runs the whole ``ledger_check``. Usage::

    .venv/bin/python -m bench.cob --tripartite [--loans 1000000] [--days 2] [--reuse]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import statistics
import sys
import time
from typing import Any

from bench.cob import (
    SEED_ENTRIES,
    SEED_HEADROOM,
    SEED_LINES,
    SEED_ORDERS,
    out_of_time,
    seed_program,
    timed_cob,
)
from bench.lib.db import analyze, django_setup, ensure_database, scratch_name

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/scf_bench_cob_claims"
TRIGGER_DPD = 60
TARGET_RATIO = 1.15
TAGS = ("plain", "claims")

# As bench.cob's loans, but 70 % of the order lent and due dates on ``buckets`` consecutive days
# from 60 days before the first night: ``1 / buckets`` of the loans reach the trigger each night.
SEED_LOANS = """
INSERT INTO lending_loan (program_id, credit_line_id, agent_id, order_id, status, currency,
    order_amount, principal, advance_rate, annual_rate, penalty_rate, day_count, tenor_days,
    grace_days, reserved_amount, outstanding_principal, accrued_interest, accrued_penalty,
    days_past_due, interest_numerator, interest_posted_cumulative, penalty_numerator,
    penalty_posted_cumulative, accrued_through, value_date, due_date, reference, requested_at,
    decided_at, approved_at, disbursed_at)
SELECT %(program)s, cl.id, o.agent_id, o.id,
       CASE WHEN v.due < %(first)s::date - 1 THEN 'overdue' ELSE 'active' END, 'CNY',
       o.amount, v.principal, 0.7, 0.035 + (o.id %% 40) / 2000.0, 0.07 + (o.id %% 20) / 1000.0,
       CASE WHEN o.id %% 3 = 0 THEN 'ACT/365F' ELSE 'ACT/360' END, v.tenor, o.id %% 5, 0,
       v.principal, 0, 0, greatest(%(first)s::date - 1 - v.due, 0), 0, 0, 0, 0,
       %(first)s::date - 1, v.due - v.tenor, v.due, %(tag)s || o.id, now(), now(), now(), now()
FROM orders_salesorder o
JOIN lending_creditline cl ON cl.agent_id = o.agent_id AND cl.program_id = %(program)s
CROSS JOIN LATERAL (
    SELECT trunc(o.amount * 0.7, 2) AS principal, (30 + (o.id %% 4) * 30)::int AS tenor,
           %(first)s::date - %(trigger)s + (o.id %% %(buckets)s)::int AS due) v
WHERE o.enterprise_id = %(enterprise)s
"""

SEED_ADVANCE = "UPDATE lending_program SET advance_rate = 0.7 WHERE id = %(program)s"

SEED_TRIPARTITE = """
INSERT INTO lending_tripartiteterms (program_id, enabled, margin_ratio, security_ratio,
    guarantee_type, trigger_dpd, claim_window_days, program_cap, program_cap_used,
    margin_withdraw_approval_threshold, version, created_at, updated_at)
VALUES (%(program)s, true, 0.3, 0.1, 'buyback', %(trigger)s, 30, 0, 0, 0, 1, now(), now());
INSERT INTO lending_agreement (program_id, agent_id, version, signed_on, document_reference,
    agent_cap, agent_cap_used, status, created_at, updated_at)
SELECT %(program)s, cl.agent_id, 1, %(first)s::date - 400, '', 0, 0, 'active', now(), now()
FROM lending_creditline cl WHERE cl.program_id = %(program)s;
INSERT INTO lending_marginaccount (program_id, agent_id, currency, reference, free, committed,
    security, created_at, updated_at)
SELECT %(program)s, cl.agent_id, 'CNY', 'MG-' || %(program)s || '-' || cl.agent_id, 0, 0, 0,
       now(), now()
FROM lending_creditline cl WHERE cl.program_id = %(program)s;
INSERT INTO lending_goodshold (loan_id, program_id, agent_id, margin_account_id, currency,
    order_value, margin, security, released_value, releasable_value, status, created_at,
    updated_at)
SELECT l.id, l.program_id, l.agent_id, m.id, 'CNY', l.order_amount,
       l.order_amount - l.principal,
       CASE WHEN l.id %% 3 = 0 THEN 0 ELSE ceil(l.principal * 10) / 100 END,
       CASE WHEN l.id %% 4 = 0 THEN l.order_amount - l.principal ELSE 0 END,
       l.order_amount - l.principal,
       CASE WHEN l.id %% 4 = 0 THEN 'partly_released' ELSE 'held' END, now(), now()
FROM lending_loan l
JOIN lending_marginaccount m ON m.program_id = l.program_id AND m.agent_id = l.agent_id
WHERE l.program_id = %(program)s;
INSERT INTO lending_release (hold_id, value, lines, requested_by_kind, status, reason,
                             releasable_at_request, created_at)
SELECT h.id, h.released_value, '[]'::jsonb, 'enterprise', 'authorised', '', h.releasable_value,
       now()
FROM lending_goodshold h WHERE h.program_id = %(program)s AND h.released_value > 0;
UPDATE lending_marginaccount m SET security = s.security
FROM (SELECT margin_account_id, sum(security) AS security FROM lending_goodshold
      WHERE program_id = %(program)s GROUP BY margin_account_id) s
WHERE m.id = s.margin_account_id;
"""

# The margin's round trip per account, as movements and one ledger entry per program: the agent
# lodged margin + security, both committed, the margin paid out with the loans, the security held.
SEED_MARGIN_LEDGER = """
INSERT INTO lending_marginmovement (account_id, kind, amount, value_date, reference, source,
                                    created_at)
SELECT h.margin_account_id, k.kind, k.amount, %(first)s::date - 200, '', 'system', now()
FROM (SELECT margin_account_id, sum(margin) AS margin, sum(security) AS security
      FROM lending_goodshold WHERE program_id = %(program)s GROUP BY margin_account_id) h
CROSS JOIN LATERAL (VALUES ('deposit', h.margin + h.security), ('commit', h.margin + h.security),
                           ('pay_out', h.margin), ('security_hold', h.security)) k(kind, amount)
WHERE k.amount > 0;
INSERT INTO lending_journalentry (kind, idempotency_key, business_date, currency, program_id,
                                  description, posted_at)
VALUES ('margin_deposit', 'bench-margin:' || %(program)s, %(first)s::date - 200, 'CNY',
        %(program)s, 'bench: margin and security lodged, committed, paid out and held', now());
INSERT INTO lending_journalline (entry_id, account, currency, debit, credit)
SELECT e.id, x.account, 'CNY', x.debit, x.credit
FROM lending_journalentry e,
     (SELECT sum(margin) AS m, sum(security) AS s FROM lending_goodshold
      WHERE program_id = %(program)s) t
CROSS JOIN LATERAL (VALUES ('settlement', t.m + t.s, 0), ('margin_free', 0, t.m + t.s),
                           ('margin_free', t.m + t.s, 0), ('margin_committed', 0, t.m + t.s),
                           ('margin_committed', t.m, 0), ('settlement', 0, t.m),
                           ('margin_committed', t.s, 0), ('security_deposits', 0, t.s)
                   ) x(account, debit, credit)
WHERE e.idempotency_key = 'bench-margin:' || %(program)s;
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cob --tripartite", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--tripartite", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--loans", type=int, default=1_000_000, help="loans in each program")
    parser.add_argument("--share", type=float, default=0.01, help="loans at the trigger a night")
    parser.add_argument("--days", type=int, default=2, help="pairs of nights (plain, claims)")
    parser.add_argument("--reuse", action="store_true", help="reuse a seeded database")
    parser.add_argument("--check", action="store_true", help="run ledger_check at the end")
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    return parser.parse_args(argv)


def seed(tag: str, count: int, buckets: int) -> int:
    """One program of ``count`` loans (with the tripartite rows for ``claims``); its id."""
    statements = [SEED_ADVANCE, SEED_ORDERS, SEED_LOANS, SEED_ENTRIES, SEED_LINES, SEED_HEADROOM]
    if tag == "claims":
        statements += [SEED_TRIPARTITE, SEED_MARGIN_LEDGER]
    return seed_program(tag, count, statements, trigger=TRIGGER_DPD, buckets=buckets)


def vacuum() -> None:
    analyze("lending_loan", "lending_guaranteeclaim", "lending_goodshold", vacuum=True)


# --- the caps, the timed nights -------------------------------------------------------------


def set_caps(program_id: int, day: dt.date) -> dict[str, Any]:
    """Room for about three quarters of the night's claims in the program's cap and for half of
    their own in one agent's of ten (operations raising the caps); what the night will claim."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            """
            WITH due AS (
                SELECT l.agent_id, l.outstanding_principal AS p FROM lending_loan l
                WHERE l.program_id = %(program)s AND l.status IN ('active', 'overdue')
                  AND l.due_date = %(due)s AND l.outstanding_principal > 0),
            agents AS (
                UPDATE lending_agreement a SET agent_cap = a.agent_cap_used
                    + CASE WHEN a.agent_id %% 10 = 0 THEN round(d.total / 2, 2) ELSE d.total END
                FROM (SELECT agent_id, sum(p) AS total FROM due GROUP BY agent_id) d
                WHERE a.program_id = %(program)s AND a.status = 'active'
                  AND a.agent_id = d.agent_id
                RETURNING a.id),
            terms AS (
                UPDATE lending_tripartiteterms SET program_cap = program_cap_used
                    + (SELECT round(coalesce(sum(p), 0) * 0.75, 2) FROM due)
                WHERE program_id = %(program)s RETURNING program_cap - program_cap_used)
            SELECT (SELECT count(*) FROM due), (SELECT * FROM terms), (SELECT count(*) FROM agents)
            """,
            {"program": program_id, "due": day - dt.timedelta(days=TRIGGER_DPD)},
        )
        loans, room, agents = cur.fetchone()
    return {"loans": loans, "room": room, "agents": agents}


def timed_night(program_id: int, day: dt.date) -> dict[str, Any]:
    """One committed ``cob_run`` with its claims step timed inside (``cob_claims`` wrapped)."""
    from lending.services import cob

    inner = cob.cob_claims
    spent: list[float] = []

    def claims_timed(**kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return inner(**kwargs)
        finally:
            spent.append(time.perf_counter() - started)

    cob.cob_claims = claims_timed  # type: ignore[assignment]
    try:
        day, wall, cpu, result = timed_cob(program_id, day, today_after=1)
    finally:
        cob.cob_claims = inner
    return {"day": day, "wall": wall, "cpu": cpu, "result": result, "claims_s": sum(spent)}


def night_checks(program_id: int, day: dt.date, expected: dict[str, Any]) -> list[str]:
    """The night's claims against what it had to claim, its caps and its two entries."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            """
            WITH night_entries AS (
                SELECT e.id, e.kind FROM lending_guaranteeclaim c
                JOIN lending_journalentry e ON e.loan_id = c.loan_id
                WHERE c.program_id = %(program)s AND c.raised_on = %(day)s
                  AND e.kind IN ('guarantee_claim', 'security_applied'))
            SELECT count(*), count(DISTINCT c.loan_id),
                   count(*) FILTER (WHERE c.status = 'raised'),
                   count(*) FILTER (WHERE c.status = 'cap_exhausted' AND c.amount = 0),
                   coalesce(sum(c.amount), 0), coalesce(sum(c.security_applied), 0),
                   count(*) FILTER (WHERE l.due_date <> %(due)s),
                   (SELECT coalesce(sum(jl.debit), 0) FROM night_entries e
                    JOIN lending_journalline jl ON jl.entry_id = e.id
                    WHERE e.kind = 'guarantee_claim' AND jl.account = 'guarantee_receivable'),
                   (SELECT coalesce(sum(jl.debit), 0) FROM night_entries e
                    JOIN lending_journalline jl ON jl.entry_id = e.id
                    WHERE e.kind = 'security_applied' AND jl.account = 'security_deposits'),
                   (SELECT count(*) FROM lending_review r JOIN lending_guaranteeclaim c2
                    ON c2.loan_id = r.loan_id WHERE c2.program_id = %(program)s
                    AND c2.raised_on = %(day)s AND r.kind = 'cap_exhausted')
            FROM lending_guaranteeclaim c JOIN lending_loan l ON l.id = c.loan_id
            WHERE c.program_id = %(program)s AND c.raised_on = %(day)s
            """,
            {
                "program": program_id,
                "day": day,
                "due": day - dt.timedelta(days=TRIGGER_DPD),
            },
        )
        count, loans, raised, exhausted, amount, security, stray, posted, applied, flagged = (
            cur.fetchone()
        )
    facts = (
        f"{day}: {count:,} claims ({raised:,} raised, {exhausted:,} cap_exhausted, {flagged:,} "
        f"flagged), {amount:,} claimed of {expected['room']:,} room, security {security:,}"
    )
    print(facts)
    problems = []
    if count != expected["loans"] or loans != count or stray:
        problems.append(f"{day}: {count} claims on {loans} loans, {expected['loans']} due")
    if amount > expected["room"] or not raised or not exhausted:
        problems.append(f"{day}: claimed {amount} of {expected['room']}, {exhausted} exhausted")
    if posted != amount or applied != security:
        problems.append(f"{day}: entries {posted} / {applied} != claims {amount} / {security}")
    return problems


def books_checks(program_id: int, last: dt.date) -> list[str]:
    """No loan at the trigger left without a claim, a rerun of the raise finds nothing, the book
    check's tripartite part is clean, and the margin accounts' security equals their movements
    and, in total, the ledger (the book check's margin part, for this program only: its
    per-program ledger sums take many minutes over a book of this size)."""
    from django.db import connection, transaction

    from lending.models import Program
    from lending.services.book_check_goods import goods_differences
    from lending.services.claims import cob_claims_raise

    problems = [f"book check: {row}" for row in goods_differences()]
    with connection.cursor() as cur:
        cur.execute(MARGIN_CHECK, {"program": program_id})
        accounts, ledger, held = cur.fetchone()
    if accounts or ledger != held:
        problems.append(f"margin: {accounts} accounts off, ledger {ledger} != accounts {held}")
    with connection.cursor() as cur:
        cur.execute(
            """SELECT count(*) FROM lending_loan l WHERE l.program_id = %s
               AND l.status IN ('active', 'overdue') AND l.days_past_due >= %s
               AND NOT EXISTS (SELECT 1 FROM lending_guaranteeclaim c WHERE c.loan_id = l.id)""",
            [program_id, TRIGGER_DPD],
        )
        (unclaimed,) = cur.fetchone()
    if unclaimed:
        problems.append(f"{unclaimed} loans at the trigger without a claim")
    with transaction.atomic():
        again = cob_claims_raise(program=Program.objects.get(pk=program_id), business_date=last)
        transaction.set_rollback(True)
    if again.raised or again.cap_exhausted:
        problems.append(f"a rerun of {last} raised {again}")
    return problems


MARGIN_CHECK = """
SELECT (SELECT count(*) FROM lending_marginaccount m
        WHERE m.program_id = %(program)s AND m.security <> coalesce((
            SELECT sum(CASE mm.kind WHEN 'security_hold' THEN mm.amount ELSE -mm.amount END)
            FROM lending_marginmovement mm WHERE mm.account_id = m.id
              AND mm.kind IN ('security_hold', 'security_apply', 'security_release')), 0)),
       (SELECT coalesce(sum(jl.credit - jl.debit), 0) FROM lending_journalline jl
        JOIN lending_journalentry e ON e.id = jl.entry_id
        WHERE jl.account = 'security_deposits' AND e.program_id = %(program)s),
       (SELECT coalesce(sum(security), 0) FROM lending_marginaccount
        WHERE program_id = %(program)s)
"""


def report(nights: list[tuple[str, dict[str, Any]]]) -> None:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n== close of business, plain and with claims; load average now {load} ==")
    for tag, night in nights:
        result = night["result"]
        print(
            f"{tag:>6} {night['day']}: {result.loans_accrued:,} loans in {night['wall']:.1f} s "
            f"wall, {night['cpu']:.1f} s PostgreSQL CPU; claims step {night['claims_s']:.2f} s"
        )
    plain = statistics.median(n["wall"] for t, n in nights if t == "plain")
    claims = statistics.median(n["wall"] for t, n in nights if t == "claims")
    cpu_plain = statistics.median(n["cpu"] for t, n in nights if t == "plain")
    cpu_claims = statistics.median(n["cpu"] for t, n in nights if t == "claims")
    ratio, cpu_ratio = claims / plain, cpu_claims / cpu_plain
    verdict = " / ".join(
        f"{what} {'MET' if r <= TARGET_RATIO else 'MISSED'}"
        for what, r in (("wall", ratio), ("PostgreSQL CPU", cpu_ratio))
    )
    print(
        f"median wall: plain {plain:.1f} s, with claims {claims:.1f} s, ratio {ratio:.3f} "
        f"(PostgreSQL CPU {cpu_plain:.1f} / {cpu_claims:.1f} s, {cpu_ratio:.3f})"
    )
    print(f"target: the night with claims within 15 % of the plain night: {verdict}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGALRM, out_of_time)
    signal.alarm(int(args.max_seconds))
    scratch_name(args.database_url, "scf_bench_cob")  # dropped unless --reuse: only its own
    reused = ensure_database(args.database_url, fresh=not args.reuse)
    django_setup(args.database_url)
    from lending.models import Program
    from lending.services.cob import cob_next_date

    programs = dict(Program.objects.filter(code__startswith="BENCH-").values_list("code", "pk"))
    if not reused or set(programs) != {f"BENCH-{tag}" for tag in TAGS}:
        started = time.perf_counter()
        buckets = round(1 / args.share)
        programs = {f"BENCH-{tag}": seed(tag, args.loans, buckets) for tag in TAGS}
        analyze()
        print(f"seeded 2 x {args.loans:,} loans in {time.perf_counter() - started:.0f} s")
    plain, claims = programs["BENCH-plain"], programs["BENCH-claims"]
    vacuum()
    first = cob_next_date(Program.objects.get(pk=claims))
    assert first is not None and first == cob_next_date(Program.objects.get(pk=plain))
    nights: list[tuple[str, dict[str, Any]]] = []
    problems: list[str] = []
    for n in range(args.days):
        day = first + dt.timedelta(days=n)
        order = TAGS if n % 2 == 0 else TAGS[::-1]
        for tag in order:
            expected = set_caps(claims, day) if tag == "claims" else {}
            nights.append((tag, timed_night(plain if tag == "plain" else claims, day)))
            if tag == "claims":
                problems += night_checks(claims, day, expected)
            vacuum()
    rerun = timed_cob(claims, first, today_after=1)[3]
    if rerun.ran:
        problems.append(f"a second run of {first} ran")
    report(nights)
    problems += books_checks(claims, first + dt.timedelta(days=args.days - 1))
    print("verification:", "OK" if not problems else f"{len(problems)} problem(s)")
    for problem in problems[:20]:
        print("  ", problem)
    if args.check:
        from django.core.management import call_command

        call_command("ledger_check")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
