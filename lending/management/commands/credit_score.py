"""``credit_score``: the nightly credit run, by hand: score every line, regrade, manage limits.

    python manage.py credit_score [--as-of YYYY-MM-DD] [--program ID ...] [--dry-run] [--json]

Runs what the ``lending.nightly_credit`` beat task runs (``credit_nightly``) with the promoted
model: every active program (or those given) as of ``--as-of`` (default: each program's last
closed day). ``--dry-run`` records the limits it would set as ``proposed`` and changes nothing
else. Prints, per program, the lines scored, regraded, raised, cut and queued for approval, the
grade mix and the time taken. Fails when no model has been promoted (run ``credit_train``).
"""

from __future__ import annotations

import datetime as dt
import json
from argparse import ArgumentParser
from dataclasses import asdict
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from lending.scoring.training import promoted_model
from lending.services.line_changes import RunResult
from lending.services.line_management import credit_nightly


class Command(BaseCommand):
    help = "Score every credit line with the promoted model, regrade it and manage its limit."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--as-of", type=dt.date.fromisoformat, help="score as of (YYYY-MM-DD)")
        parser.add_argument("--program", type=int, action="append", help="a program id (repeat)")
        parser.add_argument("--dry-run", action="store_true", help="propose, change nothing")
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args: Any, **options: Any) -> None:
        if promoted_model() is None:
            raise CommandError("credit_score: no promoted model; run credit_train first.")
        results = credit_nightly(
            as_of=options["as_of"], program_ids=options["program"], dry_run=options["dry_run"]
        )
        if options["json"]:
            self.stdout.write(json.dumps([_as_json(r) for r in results], indent=2))
            return
        for result in results:
            self._print(result)

    def _print(self, r: RunResult) -> None:
        mix = ", ".join(f"{g} {n}" for g, n in r.grades.items())
        self.stdout.write(
            f"Program {r.program_id} as of {r.as_of} (model v{r.model_version}"
            f"{', dry run' if r.dry_run else ''}): {r.lines} lines, {r.scored} scored "
            f"({r.already_scored} already), {r.regraded} regraded, {r.increased} raised, "
            f"{r.decreased} cut, {r.queued} queued for approval, {r.frozen} frozen; "
            f"grades {mix}; {r.seconds:.2f} s."
        )


def _as_json(result: RunResult) -> dict[str, Any]:
    data = asdict(result)
    data["as_of"] = result.as_of.isoformat()
    return data
