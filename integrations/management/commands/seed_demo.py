"""``seed_demo``: build the demo data set and write the credentials file a client needs.

With ``--if-empty`` an existing demo is not built again: its credentials are rotated and its
users' passwords reset, and the file is rewritten, so the file always matches the database.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import time
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from integrations.demo.build import demo_build, demo_exists, demo_refresh
from integrations.demo.contents import demo_contents, demo_loan_counts, demo_order_counts
from integrations.demo.data import DEFAULT_BASE_URL, ENTERPRISE_CODES, DemoData
from integrations.demo.history import DEMO_COHORT
from integrations.demo.logins import demo_credentials_json

MAX_AGENTS = 9999


def credentials_write(path: Path, content: dict[str, Any]) -> None:
    """Write the file whole or not at all, readable by its owner only (it holds secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(content, handle, ensure_ascii=False, indent=2)
            handle.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Command(BaseCommand):
    help = "Seed demo data (bank, enterprises, agents, orders, users) and write demo.json."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--out", default="demo.json", help="credentials file to write")
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--orders", type=int, default=5000)
        parser.add_argument("--agents", type=int, default=50)
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="if the demo exists, rotate its credentials and rewrite the file instead",
        )
        parser.add_argument(
            "--today", type=dt.date.fromisoformat, help="date orders count back from (YYYY-MM-DD)"
        )
        parser.add_argument("--base-url", default=DEFAULT_BASE_URL)
        parser.add_argument(
            "--no-credit-history",
            action="store_true",
            help="skip the synthetic dealers' history and the first scorecard (faster)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["orders"] < 0 or not 1 <= options["agents"] <= MAX_AGENTS:
            raise CommandError(f"--orders must be >= 0 and --agents between 1 and {MAX_AGENTS}.")
        path = Path(options["out"])
        started = time.monotonic()
        # The file is written inside the transaction: if it cannot be written, nothing is kept.
        with transaction.atomic():
            if demo_exists():
                if not options["if_empty"]:
                    raise CommandError(
                        f"Demo data already exists ({', '.join(ENTERPRISE_CODES)}). Use "
                        "--if-empty to rotate its credentials and rewrite the file."
                    )
                data = demo_refresh()
            else:
                data = demo_build(
                    seed=options["seed"],
                    orders=options["orders"],
                    agents=options["agents"],
                    today=options["today"] or timezone.localdate(),
                    credit_history=not options["no_credit_history"],
                )
            credentials_write(path, demo_credentials_json(data, base_url=options["base_url"]))
        self._summary(data, path, time.monotonic() - started)

    def _summary(self, data: DemoData, path: Path, seconds: float) -> None:
        contents = demo_contents()
        orders = ", ".join(f"{status} {n}" for status, n in demo_order_counts(data).items())
        loans = ", ".join(f"{status} {n}" for status, n in demo_loan_counts().items())
        action = "Seeded demo data" if data.created else "Demo data already present; refreshed"
        self.stdout.write(
            f"{action} in {seconds:.1f} s: bank {data.bank.code}, "
            f"{contents['enterprises']} enterprises with {contents['programs']} programs, "
            f"{contents['agents']} agents, {contents['credit_lines']} credit lines, "
            f"{contents['users']} users;\n"
            f"  {contents['orders']} orders ({orders or 'none'});\n"
            f"  {contents['finance_requests']} finance requests ({loans or 'none'})."
        )
        if contents["agreements"]:
            self.stdout.write(
                f"Tripartite program: {contents['agreements']} tripartite agreements, "
                f"{contents['margin_deposits']} margin deposits, "
                f"{contents['releases']} goods releases, {contents['breaches']} release breaches, "
                f"{contents['claims']} guarantee claims."
            )
        if contents["history_agents"]:
            self.stdout.write(
                f"Scoring history (program PRG-{DEMO_COHORT}, seen by bank staff only): "
                f"{contents['history_agents']} synthetic dealers, "
                f"{contents['history_orders']} orders, {contents['history_loans']} loans."
            )
        if not data.created:
            self.stdout.write(
                "Rotated the enterprises' webhook secrets and API keys; reset the demo passwords."
            )
        self.stdout.write(self.style.SUCCESS(f"Wrote {path} (credentials; keep it private)."))
