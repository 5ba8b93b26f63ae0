"""Close-of-business benchmark: one night's accrual for 1,000,000 open loans on PostgreSQL.

What it does, in one run against its own database (``scf_bench_cob``, or another whose name
starts so; dropped and recreated unless ``--reuse``; no other database is touched):

1. seeds, set-based (``INSERT ... SELECT generate_series``): one program of ``--loans`` open
   loans (orders, loans in the disbursement service's shape with their ``disburse:<id>`` ledger
   entries, line and program outstanding), a mix of ACT/360 and ACT/365F, rates, principals and
   due dates so that some loans are past due and in penalty; plus a second program of
   ``--sample`` loans for the naive baseline. Both are accrued through the day before;
2. times ``cob_run`` (the service, set-based statement and all) for ``--days`` consecutive
   dates, then re-runs the first date (it must post nothing);
3. times the naive baseline: a per-loan ORM loop (load, ``accrue_day``, ``Accrual`` create,
   ``loan.save``) over the sample program for the same date, scaled to ``--loans``;
4. checks the result: one accrual row per loan and kind due, the ledger entries equal the rows,
   and a random sample of loans equals the Python reference (``accrue_day``) to the digit;
   ``--check`` also runs the whole book check.

Prints both timings, loans per second, the ratio and the target (``--loans`` in under 60 s).
``--max-seconds`` bounds the run (SIGALRM). Usage::

    .venv/bin/python -m bench.cob [--loans 1000000] [--sample 10000] [--days 2] [--reuse]

``--tripartite`` times the night with guarantee claims beside the plain one (``bench.cob_claims``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import signal
import sys
import time
from decimal import Decimal
from typing import Any

from bench.lib.books import accrual_books
from bench.lib.cpu import backend_cpu_seconds
from bench.lib.db import analyze, django_setup, ensure_database, scratch_name
from bench.lib.seeding import ROOMY_TERMS, agents_seed, program_seed

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/scf_bench_cob"
TARGET_SECONDS = 60.0
FIRST_DAY = dt.date(2026, 3, 2)  # the first night timed; loans are accrued through the day before
AGENTS = 1000
SERIALS = {"main": 1, "naive": 2, "plain": 3, "claims": 4}  # claims: bench.cob_claims


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cob", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=10_000, help="loans in the naive baseline")
    parser.add_argument("--days", type=int, default=2, help="consecutive nights to time")
    parser.add_argument("--reuse", action="store_true", help="reuse a seeded database")
    parser.add_argument("--check", action="store_true", help="run ledger_check at the end")
    parser.add_argument("--verify", type=int, default=500, help="loans checked against Python")
    parser.add_argument("--max-seconds", type=float, default=1800.0)
    return parser.parse_args(argv)


# --- seeding ------------------------------------------------------------------------------------


def seed_parties(tag: str) -> tuple[int, int]:
    """A program with ``AGENTS`` agents and lines; (program id, enterprise id)."""
    from orders.models import Agent, CoreEnterprise
    from orders.services.parties import uscc_complete

    def make_uscc(n: int) -> str:
        return uscc_complete("9131" + f"{n:013d}"[-13:])

    serial = SERIALS[tag]
    enterprise = CoreEnterprise.objects.create(
        code=f"BENCH-CE-{tag}", name=f"Bench enterprise {tag}", uscc=make_uscc(900 + serial)
    )
    program = program_seed(
        enterprise=enterprise,
        code=f"BENCH-{tag}",
        name=f"Bench {tag}",
        **ROOMY_TERMS,
    )
    agents_seed(
        enterprise=enterprise,
        program_id=program.pk,
        agents=[
            Agent(
                code=f"B{serial}-{n:05d}",
                name=f"Bench agent {n}",
                uscc=make_uscc(serial * 10**7 + n),
            )
            for n in range(AGENTS)
        ],
        limit=lambda k: Decimal("9000000000000.00"),
    )
    return program.pk, enterprise.pk


SEED_ORDERS = """
INSERT INTO orders_salesorder (enterprise_id, agent_id, external_id, amount, currency, status,
                               order_date, version, raw_payload, created_at, updated_at)
SELECT %(enterprise)s, a.ids[1 + g %% array_length(a.ids, 1)], %(tag)s || '-' || g,
       1000 + (g::bigint * 7919) %% 900000 + (g %% 100) / 100.0, 'CNY', 'confirmed',
       %(first)s::date - 200, 1, '{}'::jsonb, now(), now()
FROM generate_series(1, %(count)s) g,
     (SELECT array_agg(id ORDER BY id) AS ids FROM orders_agent WHERE code LIKE %(agents)s) a
"""

# Value dates up to 150 days back, tenors of 30 to 120 days: about a third are past due and
# some are past grace (in penalty). Accrued through the day before the first timed night.
SEED_LOANS = """
INSERT INTO lending_loan (program_id, credit_line_id, agent_id, order_id, status, currency,
    order_amount, principal, advance_rate, annual_rate, penalty_rate, day_count, tenor_days,
    grace_days, reserved_amount, outstanding_principal, accrued_interest, accrued_penalty,
    days_past_due, interest_numerator, interest_posted_cumulative, penalty_numerator,
    penalty_posted_cumulative, accrued_through, value_date, due_date, reference, requested_at,
    decided_at, approved_at, disbursed_at)
SELECT %(program)s, cl.id, o.agent_id, o.id, 'active', 'CNY', o.amount, o.amount, 1,
       0.035 + (o.id %% 40) / 2000.0, 0.07 + (o.id %% 20) / 1000.0,
       CASE WHEN o.id %% 3 = 0 THEN 'ACT/365F' ELSE 'ACT/360' END,
       30 + (o.id %% 4) * 30, o.id %% 5, 0, o.amount, 0, 0, 0, 0, 0, 0, 0,
       %(first)s::date - 1, v.value_date, v.value_date + (30 + (o.id %% 4) * 30)::int,
       %(tag)s || o.id, now(), now(), now(), now()
FROM orders_salesorder o
JOIN lending_creditline cl ON cl.agent_id = o.agent_id AND cl.program_id = %(program)s
CROSS JOIN LATERAL (SELECT %(first)s::date - 1 - (o.id %% 150)::int AS value_date) v
WHERE o.enterprise_id = %(enterprise)s
"""

SEED_ENTRIES = """
INSERT INTO lending_journalentry (kind, idempotency_key, business_date, currency, loan_id,
                                  program_id, description, posted_at)
SELECT 'disbursement', 'disburse:' || l.id, l.value_date, 'CNY', l.id, l.program_id,
       'disbursement settled', now()
FROM lending_loan l WHERE l.program_id = %(program)s
"""

SEED_LINES = """
INSERT INTO lending_journalline (entry_id, account, loan_id, currency, debit, credit)
SELECT e.id, x.account, e.loan_id, 'CNY', x.debit * l.principal, x.credit * l.principal
FROM lending_journalentry e
JOIN lending_loan l ON l.id = e.loan_id
CROSS JOIN (VALUES ('principal_receivable', 1, 0), ('settlement', 0, 1)) x(account, debit, credit)
WHERE e.program_id = %(program)s AND e.kind = 'disbursement'
"""

SEED_HEADROOM = """
UPDATE lending_creditline cl SET outstanding_principal = s.total
FROM (SELECT credit_line_id, sum(outstanding_principal) AS total FROM lending_loan
      WHERE program_id = %(program)s GROUP BY credit_line_id) s
WHERE cl.id = s.credit_line_id;
UPDATE lending_program SET outstanding_principal =
    (SELECT sum(outstanding_principal) FROM lending_loan WHERE program_id = %(program)s)
WHERE id = %(program)s;
INSERT INTO lending_cobrun (program_id, business_date, started_at, finished_at, loans_accrued,
                            interest_total, penalty_total)
VALUES (%(program)s, %(first)s::date - 1, now(), now(), 0, 0, 0);
"""


def seed_program(tag: str, count: int, statements: list[str] | None = None, **extra: Any) -> int:
    """Seed a program of ``count`` open loans, set-based; returns its id. ``statements`` (named
    parameters: ``extra`` and the program's) replace this bench's loans and ledger."""
    from django.db import connection, transaction

    with transaction.atomic():
        program, enterprise = seed_parties(tag)
        params = {
            "program": program,
            "enterprise": enterprise,
            "count": count,
            "tag": tag.upper()[:1],
            "first": FIRST_DAY,
            "agents": f"B{SERIALS[tag]}-%",
            **extra,
        }
        with connection.cursor() as cur:
            # Bench seeding only: skip the per-row triggers (the journal balance check would run
            # 2 million times); the entries written here balance by construction.
            cur.execute("SET LOCAL session_replication_role = replica")
            default = [SEED_ORDERS, SEED_LOANS, SEED_ENTRIES, SEED_LINES, SEED_HEADROOM]
            for statement in statements or default:
                cur.execute(statement, params)
    return program


def vacuum() -> None:
    analyze(
        "lending_loan",
        "lending_accrual",
        "lending_journalentry",
        "lending_journalline",
        "orders_salesorder",
        vacuum=True,
    )


def seeded_programs() -> dict[str, int]:
    from lending.models import Program

    return dict(Program.objects.filter(code__startswith="BENCH-").values_list("code", "pk"))


# --- the runs -----------------------------------------------------------------------------------


def timed_cob(
    program_id: int, day: dt.date, today_after: int = 30
) -> tuple[dt.date, float, float, Any]:
    """(date, wall seconds, backend CPU seconds, result) of one ``cob_run`` run as if
    ``today_after`` days after ``day`` (the nightly task closes yesterday: 1)."""
    from lending.services.cob import cob_run

    cpu = backend_cpu_seconds()
    started = time.perf_counter()
    today = day + dt.timedelta(days=today_after)
    result = cob_run(program_id=program_id, business_date=day, today=today)
    wall = time.perf_counter() - started
    return day, wall, backend_cpu_seconds() - cpu, result


def naive_loop(program_id: int, day: dt.date) -> tuple[float, int]:
    """The baseline: one loan at a time through the ORM (load, compute, insert, save)."""
    from django.db import transaction

    from lending.models import Accrual, Loan
    from lending.services.accrual import ACCRUAL_FIELDS, AccrualTerms, LoanState, accrue_day

    started = time.perf_counter()
    count = 0
    with transaction.atomic():  # rolled back afterwards: the baseline only has to be timed
        for loan in Loan.objects.filter(program_id=program_id, status__in=["active", "overdue"]):
            state, rows = accrue_day(LoanState.of(loan), AccrualTerms.of(loan), day)
            for row in rows:
                Accrual.objects.create(
                    loan=loan,
                    business_date=row.business_date,
                    kind=row.kind,
                    base=row.base,
                    annual_rate=row.annual_rate,
                    numerator=row.numerator,
                    amount=row.amount,
                )
            state.apply_to(loan)
            loan.save(update_fields=ACCRUAL_FIELDS)
            count += 1
        elapsed = time.perf_counter() - started
        transaction.set_rollback(True)
    return elapsed, count


def snapshot_sample(program_id: int, size: int) -> dict[int, Any]:
    """The state of ``size`` random loans before the first night, to replay in Python."""
    from lending.models import Loan
    from lending.services.accrual import AccrualTerms, LoanState

    ids = list(Loan.objects.filter(program_id=program_id).values_list("pk", flat=True)[: 10**7])
    chosen = random.Random(11).sample(ids, min(size, len(ids)))
    return {
        loan.pk: (LoanState.of(loan), AccrualTerms.of(loan))
        for loan in Loan.objects.filter(pk__in=chosen)
    }


def report(
    args: argparse.Namespace,
    runs: list[tuple[dt.date, float, float, Any]],
    naive: tuple[float, int],
) -> None:
    mode = "schema as migrated"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n== close of business: {mode}; {os.cpu_count()} CPUs, load average now {load} ==")
    for day, seconds, cpu, result in runs:
        print(
            f"{day}: {result.loans_accrued:,} loans in {seconds:.1f} s wall, {cpu:.1f} s "
            f"PostgreSQL CPU ({result.loans_accrued / seconds:,.0f} loans/s); interest "
            f"{result.interest_total:,}, penalty {result.penalty_total:,}; ran={result.ran}"
        )
    best = min(seconds for _, seconds, _, result in runs if result.ran)
    naive_seconds, naive_count = naive
    scaled = naive_seconds * args.loans / max(naive_count, 1)
    print(
        f"naive per-loan ORM loop: {naive_count:,} loans in {naive_seconds:.1f} s "
        f"({naive_count / naive_seconds:,.0f} loans/s) -> {scaled:,.0f} s for {args.loans:,}"
    )
    print(f"set-based is {scaled / best:.0f}x faster than the naive loop")
    verdict = "MET" if best < TARGET_SECONDS else "MISSED"
    print(f"target: {args.loans:,} loans in under {TARGET_SECONDS:.0f} s: {verdict} ({best:.1f} s)")


def out_of_time(signum: int, frame: Any) -> None:
    raise SystemExit("bench.cob: --max-seconds reached, stopping")


def main(argv: list[str] | None = None) -> int:
    if "--tripartite" in (sys.argv[1:] if argv is None else argv):
        from bench.cob_claims import main as tripartite_main

        return tripartite_main(argv)
    args = parse_args(argv)
    signal.signal(signal.SIGALRM, out_of_time)
    signal.alarm(int(args.max_seconds))
    scratch_name(args.database_url, "scf_bench_cob")  # dropped unless --reuse: only its own
    reused = ensure_database(args.database_url, fresh=not args.reuse)
    django_setup(args.database_url)
    started = time.perf_counter()
    programs = seeded_programs()
    if not reused or set(programs) != {"BENCH-main", "BENCH-naive"}:
        main_id = seed_program("main", args.loans)
        naive_id = seed_program("naive", args.sample)
        vacuum()
        print(
            f"seeded {args.loans:,} + {args.sample:,} loans in {time.perf_counter() - started:.0f} s"
        )
    else:
        main_id, naive_id = programs["BENCH-main"], programs["BENCH-naive"]
        vacuum()
    from lending.models import Program
    from lending.services.cob import cob_next_date

    first = cob_next_date(Program.objects.get(pk=main_id))
    assert first is not None
    days = [first + dt.timedelta(days=n) for n in range(args.days)]
    before = snapshot_sample(main_id, args.verify)
    runs = []
    for day in days:
        runs.append(timed_cob(main_id, day))
        vacuum()
    runs.append(timed_cob(main_id, days[0]))  # again: must post nothing
    naive = naive_loop(naive_id, first)
    report(args, runs, naive)
    problems = accrual_books(main_id, before, days)
    print("verification:", "OK" if not problems else f"{len(problems)} problem(s)")
    for problem in problems[:20]:
        print("  ", problem)
    if args.check:
        from django.core.management import call_command

        call_command("ledger_check")
    return 1 if problems or runs[-1][3].ran else 0


if __name__ == "__main__":
    sys.exit(main())
