"""``ledger_check``: prove the whole book agrees with the ledger.

Prints a summary (entries, lines, loans, lines and programs checked, totals per currency) and exits
0 when every check passes; otherwise prints each difference and exits 1. ``--json`` prints one
JSON document instead, amounts as strings.
"""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from lending.services.book_check import (
    BookSummary,
    Difference,
    book_check,
    book_snapshot,
    book_summary,
)


def summary_dict(summary: BookSummary, differences: list[Difference]) -> dict[str, Any]:
    return {
        "ok": not differences,
        "entries": summary.entries,
        "lines": summary.lines,
        "loans": summary.loans,
        "credit_lines": summary.credit_lines,
        "programs": summary.programs,
        "totals": [
            {"currency": t.currency, "debit": str(t.debit), "credit": str(t.credit)}
            for t in summary.totals
        ],
        "differences": [d.as_dict() for d in differences],
    }


class Command(BaseCommand):
    help = (
        "Check that every entry balances and every loan, line and program agrees with the ledger."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args: Any, **options: Any) -> None:
        with book_snapshot():
            differences = book_check()
            summary = book_summary()
        if options["json"]:
            self.stdout.write(json.dumps(summary_dict(summary, differences), indent=2))
        else:
            self._print(summary, differences)
        if differences:
            raise CommandError(f"ledger_check: {len(differences)} difference(s) found.")

    def _print(self, summary: BookSummary, differences: list[Difference]) -> None:
        self.stdout.write(
            f"Checked {summary.entries} entries, {summary.lines} lines, {summary.loans} loans, "
            f"{summary.credit_lines} credit lines, {summary.programs} programs."
        )
        for total in summary.totals:
            self.stdout.write(f"  {total.currency}  debit {total.debit}  credit {total.credit}")
        if not differences:
            self.stdout.write(self.style.SUCCESS("The book agrees with the ledger."))
            return
        self.stdout.write(self.style.ERROR(f"{len(differences)} difference(s):"))
        for diff in differences:
            self.stdout.write(f"  {diff.what}  expected {diff.expected}  actual {diff.actual}")
