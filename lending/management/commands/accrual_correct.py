"""``accrual_correct``: correct the loans accrued before exact interest (``0008_exact_interest``).

Run once after migrating to 0008, with COB stopped or not (each loan is corrected under the
locks a repayment takes). Lists each open or repaid loan whose posted accruals are a cent off
the exact rounding on some night, and corrects it (``lending.services.accrual_correct``): its
days are replayed with exact arithmetic, or, where that would ask the agent for a cent the bank
did not charge, it is left (audited). ``--dry-run`` only lists. Running it again changes
nothing. Exits non-zero if a loan could not be corrected.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from lending.services.accrual_correct import accrual_discrepancies, loan_accrual_correct


class Command(BaseCommand):
    help = "Correct loans whose accruals were rounded before exact interest (migration 0008)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="list the loans, change nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        found = list(accrual_discrepancies())
        failed = 0
        counts: dict[str, int] = {}
        for discrepancy in found:
            head = f"loan {discrepancy.loan_id}: off from {discrepancy.first_night}"
            if options["dry_run"]:
                self.stdout.write(head)
                continue
            try:
                outcome = loan_accrual_correct(
                    loan_id=discrepancy.loan_id, actor="command:accrual_correct"
                )
            except Exception as exc:  # reported; the other loans are still corrected
                failed += 1
                self.stdout.write(self.style.ERROR(f"{head}  FAILED: {exc}"))
                continue
            counts[outcome] = counts.get(outcome, 0) + 1
            self.stdout.write(f"{head}  {outcome}")
        summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(counts.items()))
        self.stdout.write(f"{len(found)} loan(s) off the exact rounding. {summary}".strip())
        if failed:
            raise CommandError(f"accrual_correct: {failed} loan(s) could not be corrected.")
