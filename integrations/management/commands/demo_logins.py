"""``demo_logins demo.json``: print the demo logins and where to use them."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from integrations.demo.data import DEFAULT_BASE_URL
from orders.models import Role

COLUMNS = ("username", "password", "role", "agent/enterprise")
# The three front ends and who works in each (``/`` sends everyone else to theirs); then the admin.
FRONT_ENDS = (
    ("Agent portal", "/", "agents", (Role.AGENT,)),
    ("Enterprise dashboard", "/dashboard/", "enterprise admins", (Role.ENTERPRISE_ADMIN,)),
    ("Risk review queue", "/reviews/", "risk staff", (Role.RISK_REVIEWER, Role.RISK_APPROVER)),
    ("Admin", "/admin/", "operations admin", (Role.OPS_ADMIN,)),
)


def login_rows(credentials: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [
        (
            user["username"],
            user["password"],
            user["role"],
            user.get("agent_code") or user.get("enterprise_code") or "-",
        )
        for user in credentials.get("users", [])
    ]


def front_end_rows(credentials: dict[str, Any], base: str) -> list[tuple[str, str, str]]:
    """(front end, its URL, who uses it: the role and the demo usernames that have it)."""
    users = credentials.get("users", [])
    rows = []
    for name, path, who, roles in FRONT_ENDS:
        names = [u["username"] for u in users if u["role"] in roles]
        rows.append((name, base + path, f"{who}: {', '.join(names) or '-'}"))
    return rows


def table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in rows]  # fmt: skip


class Command(BaseCommand):
    help = "Print the demo logins (username, password, role) and URLs from a credentials file."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("credentials", nargs="?", default="demo.json")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["credentials"])
        try:
            credentials = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot read {path}: {exc}. Run seed_demo first.") from None
        base = str(credentials.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
        rows = login_rows(credentials)
        self.stdout.write(f"Demo logins ({path}; API tokens, webhook secrets and keys are there):")
        for line in table([COLUMNS, *rows]):
            self.stdout.write("  " + line)
        self.stdout.write("")
        self.stdout.write(
            "Where to sign in (bank staff also see their bank's dashboards and the queue):"
        )
        for line in table(front_end_rows(credentials, base)):
            self.stdout.write("  " + line)
        self.stdout.write("")
        self.stdout.write(f"  API docs     {base}/api/docs/")
        self.stdout.write(f"  Order feed   {base}/api/v1/integrations/orders/webhook/")
        self.stdout.write(
            f"  Push orders  python manage.py feed_orders --url {base} --count 100 "
            f"--credentials {path}"
        )
