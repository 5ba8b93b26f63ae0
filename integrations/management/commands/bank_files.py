"""``python manage.py bank_files --export`` / ``--import``: one file-rail cycle by hand."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from integrations.bank.files.export import bank_files_export
from integrations.bank.files.inbound import bank_files_import


class Command(BaseCommand):
    help = (
        "Write queued payments to pain.001 files (--export); import inbound bank files (--import)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--export", action="store_true", help="write pain.001 files")
        parser.add_argument("--import", action="store_true", dest="import_", help="import files")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["export"] and not options["import_"]:
            raise CommandError("Say --export, --import or both.")
        if options["export"]:
            for row in bank_files_export():
                self.stdout.write(
                    f"wrote {row.path} ({row.transactions} payments, {row.control_sum})"
                )
        if options["import_"]:
            result = bank_files_import()
            for path, outcome in result.files.items():
                self.stdout.write(f"{outcome}: {path}")
