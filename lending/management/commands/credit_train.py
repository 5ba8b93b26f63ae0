"""``credit_train``: train a scorecard on the platform's history, store it, promote it unless worse.

    python manage.py credit_train [--as-of YYYY-MM-DD] [--program ID] [--features a,b,...] [--json]

Uses what the platform knew on ``--as-of`` (default: yesterday): one row per loan whose 30-day
past-due outcome is known, features as of the month before it was disbursed, the latest months
(30 % of rows) held out. Prints the version, hold-out AUC and KS, the naive baseline's AUC,
calibration by grade, the features kept and whether the model was promoted (and why not). Exits
with an error when there is not enough history. See ``lending.scoring.training``.
"""

from __future__ import annotations

import datetime as dt
import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from lending.models import CreditModel
from lending.scoring.training import NotEnoughHistory
from lending.services.credit_models import credit_model_train
from scf.errors import ValidationFailed


class Command(BaseCommand):
    help = "Train a credit scorecard from history; store it and promote it unless it is worse."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--as-of", type=dt.date.fromisoformat, help="cut-off date (YYYY-MM-DD)")
        parser.add_argument("--program", type=int, help="train on one program's loans")
        parser.add_argument("--features", help="comma-separated candidate features (default all)")
        parser.add_argument("--json", action="store_true", help="print the model as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        features = [f.strip() for f in (options["features"] or "").split(",") if f.strip()]
        try:
            model = credit_model_train(
                as_of=options["as_of"], features=features or None, program_id=options["program"]
            )
        except (NotEnoughHistory, ValidationFailed) as exc:
            raise CommandError(f"credit_train: {exc.detail}") from None
        if options["json"]:
            self.stdout.write(json.dumps(_as_json(model), indent=2))
        else:
            self._print(model)

    def _print(self, model: CreditModel) -> None:
        holdout = model.metrics["holdout"]
        self.stdout.write(
            f"Model v{model.version} (history to {model.as_of}): hold-out AUC {model.auc}, "
            f"KS {model.ks}, {holdout['rows']} loans, {holdout['bads']} went 30+ days past due; "
            f"baseline ({holdout['baseline']['rule']}) AUC {holdout['baseline']['auc']:.4f}."
        )
        self.stdout.write(f"Features: {', '.join(model.features) or '(none)'}")
        for row in holdout["calibration"]:
            self.stdout.write(
                f"  grade {row['grade']}: {row['count']} loans, predicted {row['predicted']}, "
                f"observed {row['observed']}"
            )
        if model.promoted:
            self.stdout.write(self.style.SUCCESS(f"Promoted v{model.version}."))
        else:
            self.stdout.write(self.style.WARNING(f"Not promoted: {model.refusal_reason}"))


def _as_json(model: CreditModel) -> dict[str, Any]:
    return {
        "version": model.version,
        "as_of": model.as_of.isoformat(),
        "features": model.features,
        "auc": str(model.auc),
        "ks": str(model.ks),
        "promoted": model.promoted,
        "refusal_reason": model.refusal_reason,
        "metrics": model.metrics,
    }
