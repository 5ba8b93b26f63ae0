"""``python manage.py reconcile --date YYYY-MM-DD``: statement against book for every file-rail
bank account; exit 0 when they agree, 1 with the breaks listed."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from integrations.bank.files.reconcile import reconcile_date


class Command(BaseCommand):
    help = "Reconcile bank statements with the ledger for a date; non-zero exit on a break."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--date", required=True, help="statement date, YYYY-MM-DD")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            day = dt.date.fromisoformat(options["date"])
        except ValueError:
            raise CommandError(f"--date must be YYYY-MM-DD, not {options['date']!r}") from None
        runs = reconcile_date(day)
        breaks = 0
        for run in runs:
            self.stdout.write(
                f"{run.bank.code} {run.account} {run.statement_date}: {run.entries} entries, "
                f"statement {run.statement_opening} -> {run.statement_closing}, "
                f"book {run.book_opening} -> {run.book_closing}, {run.breaks_count} breaks"
            )
            for item in run.breaks.all():
                breaks += 1
                self.stdout.write(
                    f"  BREAK {item.kind} {item.reference} statement={item.statement_amount} "
                    f"book={item.book_amount} {item.detail}".rstrip()
                )
        if not runs:
            self.stdout.write("no bank is on the file rail (BANK_RAILS)")
        if breaks:
            sys.exit(1)
