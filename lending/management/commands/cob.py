"""``cob``: close of business up to and including a business date, for every program.

Catches up any dates a program missed, in order (``cob_run_through``), and prints one line per
program and date: loans accrued, loans caught up, interest and penalty totals. Exits non-zero if
any program could not be closed.
"""

from __future__ import annotations

import datetime as dt
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from lending.models import Program
from lending.services.cob import CobResult, cob_run_through


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--date must be YYYY-MM-DD, not {text!r}.") from None


class Command(BaseCommand):
    help = (
        "Run close of business (daily accrual) through a business date, catching up missed dates."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--date",
            type=_date,
            default=None,
            help="last business date to close (default: yesterday in each program's zone)",
        )
        parser.add_argument(
            "--program", action="append", type=int, help="program id (repeatable; default all)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        results = cob_run_through(through_date=options["date"], program_ids=options["program"])
        codes = dict(Program.objects.values_list("pk", "code"))
        for result in results:
            self.stdout.write(self._line(codes.get(result.program_id, "?"), result))
        ran = sum(1 for r in results if r.ran)
        self.stdout.write(f"{ran} program-date(s) closed, {len(results) - ran} not run.")
        failed = [r for r in results if r.error]
        if failed:
            raise CommandError(f"cob: {len(failed)} program(s) could not be closed.")

    def _line(self, code: str, result: CobResult) -> str:
        head = f"{result.business_date} {code}"
        if result.error:
            return self.style.ERROR(f"{head}  FAILED: {result.error}")
        if not result.ran:
            return f"{head}  already closed"
        return (
            f"{head}  loans {result.loans_accrued}  caught up {result.caught_up}  "
            f"interest {result.interest_total}  penalty {result.penalty_total}"
        )
