"""The file rail: a bank reached through ISO 20022 files in two directories.

Which banks use it is a setting (``BANK_RAILS``: bank code -> ``"files"``; anything else, or a
bank not listed, uses the API sandbox). For such a bank:

* ``adapter.FileBank`` is its ``BankAdapter``: a transfer is queued (``OutboundPayment``) for the
  next payment file and reported accepted; its status is whatever the bank's status reports
  said;
* ``export.bank_files_export`` gathers the queued payments of each bank into one
  ``pain.001.001.09`` file per bank and cycle, written to ``BANK_FILES_OUTBOUND_DIR/<code>/``;
* ``inbound.bank_files_import`` reads ``BANK_FILES_INBOUND_DIR/<code>/``: pain.002 status reports
  settle or fail the payments (``statuses``), camt.054/053 entries are stored, matched and
  applied (``entries``), each file once and whole, or quarantined with its reason;
* ``unapplied`` is the unapplied-credit queue operations works; ``reconcile`` compares the
  statements with the book.

The Celery task ``integrations.bank_files_cycle`` (beat) runs an export and an import;
``python manage.py bank_files --export / --import`` runs one by hand.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

FILES_RAIL = "files"
PROCESSED = "processed"
QUARANTINE = "quarantine"


def rail_of(bank_code: str) -> str:
    """``"files"`` or ``"sandbox"`` for a bank code (``settings.BANK_RAILS``)."""
    rails: dict[str, str] = settings.BANK_RAILS
    return rails.get(bank_code, "sandbox")


def file_bank_codes() -> list[str]:
    rails: dict[str, str] = settings.BANK_RAILS
    return sorted(code for code, rail in rails.items() if rail == FILES_RAIL)


def outbound_dir(bank_code: str) -> Path:
    return Path(settings.BANK_FILES_OUTBOUND_DIR) / bank_code


def inbound_dir(bank_code: str) -> Path:
    return Path(settings.BANK_FILES_INBOUND_DIR) / bank_code
