"""Bank files benchmark, end to end on PostgreSQL: a camt.053 of 100,000 entries imported through
the file rail (``integrations.bank.files``), matching and posting included.

In its own database (``scf_bench_bankfiles``, or another whose name starts so; dropped and
recreated each run; no other database is touched):

1. seeds a program of the bench bank (on the file rail) with ``2 x --repayments`` active loans
   (disbursed the day before, their ``disburse:<id>`` ledger entries posted);
2. builds a camt.053 of ``--entries`` credits for the bank's settlement account: the first
   ``--repayments`` quote a loan's reference (each a partial repayment of 100.00), the rest
   quote references no loan has (they go to the unapplied-credit queue), and drops it in the
   bank's inbound directory;
3. times ``bank_files_import`` (one file: digest, parse with the hardened reader and libxml2's
   XSD validation, the entries stored, matched, the unapplied credits booked and queued, in one
   transaction; then the matched credits recorded a batch at a time by the set-based repayment
   path, ``files.matched``), with the database backend's CPU seconds, and for the split the
   message layer alone (``parse_camt053``) and a second import of a file of ``--repayments``
   repayments only (what one matched entry costs);
4. times ``reconcile`` for the day (it must be clean) and checks the counts and the books.

Usage::

    .venv/bin/python -m bench.bankfiles_import [--entries 100000] [--repayments 2000] \
        [--database-url postgres://postgres@127.0.0.1:5432/scf_bench_bankfiles] [--json out.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.lib.cpu import backend_cpu_seconds
from bench.lib.db import analyze, django_setup, ensure_database, scratch_name
from bench.lib.report import load_average, write_json
from bench.lib.seeding import BANK_CODE, ROOMY_TERMS, agents_seed, program_seed

ACCOUNT = "SCF-LENDER-0001"  # settings.LENDER_SETTLEMENT_ACCOUNT: the bench bank has no own
REPAID = Decimal("100.00")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.bankfiles_import")
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--repayments", type=int, default=2_000)
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/scf_bench_bankfiles"
    )
    parser.add_argument("--json", type=Path)
    return parser.parse_args(argv)


def seed_loans(count: int, day: dt.date) -> list[str]:
    """``count`` active loans of the bench bank's program, disbursed on ``day``; references."""
    from django.db import transaction

    from lending.models import AccountCode, EntryKind, Loan, LoanStatus
    from lending.services.ledger import Posting, ledger_post
    from orders.models import Agent, CoreEnterprise, SalesOrder
    from orders.services.parties import uscc_complete

    with transaction.atomic():
        enterprise = CoreEnterprise.objects.create(
            code="BENCH-CE-BF", name="Bench enterprise", uscc=uscc_complete("9131" + "0" * 12 + "7")
        )
        program = program_seed(
            enterprise=enterprise,
            code="BENCH-BF",
            name="Bench bank files",
            **ROOMY_TERMS,
        )
        [seeded] = agents_seed(
            enterprise=enterprise,
            program_id=program.pk,
            agents=[
                Agent(code="BF-00001", name="Bench agent", uscc=uscc_complete("9131" + "1" * 13))
            ],
            limit=lambda k: Decimal("9000000000000.00"),
        )
        now = dt.datetime.now(dt.UTC)
        orders = SalesOrder.objects.bulk_create(
            SalesOrder(
                enterprise=enterprise,
                agent=seeded.agent,
                external_id=f"BF-{n:08d}",
                amount=Decimal("10000.00"),
                currency="CNY",
                status="confirmed",
                order_date=day,
                version=1,
                created_at=now,
                updated_at=now,
            )
            for n in range(count)
        )
        loans = Loan.objects.bulk_create(
            Loan(
                program=program,
                credit_line=seeded.line,
                agent=seeded.agent,
                order=order,
                status=LoanStatus.ACTIVE,
                currency="CNY",
                order_amount=order.amount,
                principal=order.amount,
                advance_rate=Decimal("1"),
                annual_rate=program.annual_rate,
                penalty_rate=program.penalty_rate,
                day_count=program.day_count,
                tenor_days=90,
                grace_days=3,
                outstanding_principal=order.amount,
                value_date=day,
                due_date=day + dt.timedelta(days=90),
                reference=f"SCFBF{n:08d}",
                requested_at=now,
                disbursed_at=now,
            )
            for n, order in enumerate(orders)
        )
        for loan in loans:
            ledger_post(
                kind=EntryKind.DISBURSEMENT,
                idempotency_key=f"disburse:{loan.pk}",
                business_date=day,
                currency="CNY",
                postings=[
                    Posting.dr(AccountCode.PRINCIPAL_RECEIVABLE, loan.principal, loan=loan),
                    Posting.cr(AccountCode.SETTLEMENT, loan.principal),
                ],
                loan=loan,
                program=program,
            )
        total = Decimal("10000.00") * count
        type(seeded.line).objects.filter(pk=seeded.line.pk).update(outstanding_principal=total)
        type(program).objects.filter(pk=program.pk).update(outstanding_principal=total)
    return [loan.reference for loan in loans]


def statement(
    references: list[str], entries: int, day: dt.date, tag: str, *, notification: bool = False
) -> bytes:
    """A camt.053 of ``entries`` credits: the first ones quote ``references``, the rest none
    (a camt.054 without balances with ``notification``)."""
    from integrations.bank.iso20022 import (
        CAMT_053,
        CAMT_054,
        AccountReport,
        Balance,
        CamtMessage,
        CreditDebit,
        Engine,
        Entry,
        TransactionDetail,
        build_camt,
    )

    rows = []
    for n in range(entries):
        matched = n < len(references)
        amount = REPAID if matched else Decimal(100 + n % 5000) + Decimal(n % 100) / 100
        detail = TransactionDetail(
            amount=amount,
            currency="CNY",
            remittance=f"repay {references[n]}" if matched else f"invoice INV-{n:08d}",
            debtor_name=f"Payer {n % 5000:04d}",
            debtor_account=f"62170000{n % 5000:011d}",
        )
        rows.append(
            Entry(
                f"BF{tag}{n:010d}",
                amount,
                "CNY",
                CreditDebit.CREDIT,
                "BOOK",
                day,
                day,
                "PMNT/RCDT/DMCT",
                details=(detail,),
            )
        )
    # The statement opens with the book's balance (the loans paid out from 100,000,000.00).
    opening = Decimal("100000000.00") - Decimal("10000.00") * len(references)
    closing = opening + sum((e.amount for e in rows), Decimal(0))
    balances = tuple(
        Balance(code, value, "CNY", CreditDebit.CREDIT, day)
        for code, value in (("OPBD", opening), ("CLBD", closing))
    )
    if notification:
        balances = ()
    report = AccountReport(f"STMT-{tag}", ACCOUNT, "CNY", None, 1, balances, tuple(rows))
    kind = CAMT_054 if notification else CAMT_053
    message = CamtMessage(kind, f"BENCH-BF-{tag}", dt.datetime.now(dt.UTC), (report,))
    return build_camt(message, engine=Engine.LXML).content


COMMITS: list[float] = []


def time_commits() -> None:
    """Record how long each COMMIT takes (the deferred checks run there)."""
    from django.db.backends.base.base import BaseDatabaseWrapper

    original = BaseDatabaseWrapper._commit

    def commit(self: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(self)
        finally:
            COMMITS.append(time.perf_counter() - started)

    BaseDatabaseWrapper._commit = commit  # type: ignore[method-assign]


MATCHED: list[float] = []


def time_matched() -> None:
    """Record how long recording the matched credits takes (after the file's commit)."""
    from integrations.bank.files import inbound

    original = inbound.matched_credits_apply

    def apply(**kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(**kwargs)
        finally:
            MATCHED.append(time.perf_counter() - started)

    inbound.matched_credits_apply = apply  # type: ignore[assignment]


def timed_import(inbound: Path, name: str, content: bytes) -> tuple[float, float]:
    from integrations.bank.files.inbound import bank_files_import

    (inbound / name).write_bytes(content)
    COMMITS.clear()
    MATCHED.clear()
    cpu = backend_cpu_seconds()
    started = time.perf_counter()
    result = bank_files_import()
    wall = time.perf_counter() - started
    assert result.count("imported") == 1, result.files
    return wall, backend_cpu_seconds() - cpu


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scratch_name(args.database_url, "scf_bench_bankfiles")
    ensure_database(args.database_url, fresh=True)
    directory = Path(tempfile.mkdtemp(prefix="scf-bench-bankfiles-"))
    django_setup(
        args.database_url,
        {
            "BANK_RAILS": json.dumps({BANK_CODE: "files"}),
            "BANK_FILES_INBOUND_DIR": str(directory / "inbound"),
            "BANK_FILES_OUTBOUND_DIR": str(directory / "outbound"),
            "BANK_FILES_MAX_BYTES": str(1 << 30),
        },
    )
    from integrations.bank.files.reconcile import reconcile
    from integrations.bank.iso20022 import parse_camt053
    from integrations.bank_models import StatementEntry, UnappliedCredit
    from lending.models import Bank, Repayment
    from lending.services.book_check import book_check
    from scf import clock

    day = clock.business_date("Asia/Shanghai")
    # Disbursed the day before: the statement's day has only the repayments and credits.
    references = seed_loans(args.repayments * 2, day - dt.timedelta(days=1))
    analyze()
    inbound = directory / "inbound" / BANK_CODE
    inbound.mkdir(parents=True)
    results: dict[str, Any] = {
        "entries": args.entries,
        "repayments": args.repayments,
        "cpus": os.cpu_count(),
        "load_average_at_start": load_average(),
    }
    content = statement(references[: args.repayments], args.entries, day, "A")
    results["file_bytes"] = len(content)
    started = time.perf_counter()
    parse_camt053(content, max_bytes=len(content))
    results["message_layer_seconds"] = round(time.perf_counter() - started, 2)
    time_commits()
    time_matched()
    wall, cpu = timed_import(inbound, "statement-a.xml", content)
    results["import_seconds"] = round(wall, 2)
    results["import_commit_seconds"] = round(sum(COMMITS), 2)
    results["import_matched_seconds"] = round(sum(MATCHED), 2)
    results["import_db_cpu_seconds"] = round(cpu, 2)
    results["entries_per_second"] = round(args.entries / wall)
    assert StatementEntry.objects.count() == args.entries
    assert Repayment.objects.count() == args.repayments
    assert UnappliedCredit.objects.count() == args.entries - args.repayments
    started = time.perf_counter()
    run = reconcile(bank=Bank.objects.get(code=BANK_CODE), account=ACCOUNT, day=day)
    results["reconcile_seconds"] = round(time.perf_counter() - started, 2)
    results["reconcile_breaks"] = run.breaks_count
    if args.repayments:
        # What a matched entry costs: a notification (camt.054) of repayments only, other loans.
        small = statement(
            references[args.repayments :], args.repayments, day, "B", notification=True
        )
        wall_b, cpu_b = timed_import(inbound, "notification-b.xml", small)
        results["repayments_only_seconds"] = round(wall_b, 2)
        results["repayments_only_commit_seconds"] = round(sum(COMMITS), 2)
        results["repayments_only_matched_seconds"] = round(sum(MATCHED), 2)
        results["repayments_only_db_cpu_seconds"] = round(cpu_b, 2)
        results["ms_per_matched_entry"] = round(1000 * wall_b / args.repayments, 2)
        assert Repayment.objects.count() == 2 * args.repayments
    results["book_check_problems"] = len(book_check())
    results["load_average_at_end"] = load_average()
    print(json.dumps(results, indent=2))
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
