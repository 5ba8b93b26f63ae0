"""The file rail's settings (``integrations.bank.files``, docs/bank-files.md), read from the
environment like the rest of ``base.py``, which imports them; kept apart so that ``base.py`` stays
within the module size bound."""

from __future__ import annotations

from pathlib import Path

import environ
from celery.schedules import crontab

__all__ = [
    "BANK_FILES_BEAT",
    "BANK_FILES_INBOUND_DIR",
    "BANK_FILES_INITIATING_PARTY",
    "BANK_FILES_MAX_BYTES",
    "BANK_FILES_OUTBOUND_DIR",
    "BANK_RAILS",
]

env = environ.Env()
_BASE_DIR = Path(__file__).resolve().parent.parent.parent
environ.Env.read_env(_BASE_DIR / ".env", overwrite=False)  # imported before base.py reads it
_ROOT = _BASE_DIR / "var" / "bankfiles"

# Which rail each bank uses, by bank code: "sandbox" (the in-process API sandbox, the default for
# a bank not listed) or "files" (pain.001 out, pain.002/camt in, through the directories below).
BANK_RAILS = env.json("BANK_RAILS", default={})
# Per bank a subdirectory named by its code: we write pain.001 files to OUTBOUND/<code>/, the
# bank's host-to-host link drops pain.002/camt files in INBOUND/<code>/. Imported files move to
# INBOUND/<code>/processed/, refused ones to INBOUND/<code>/quarantine/.
BANK_FILES_OUTBOUND_DIR = env.str("BANK_FILES_OUTBOUND_DIR", default=str(_ROOT / "outbound"))
BANK_FILES_INBOUND_DIR = env.str("BANK_FILES_INBOUND_DIR", default=str(_ROOT / "inbound"))
# Inbound files over this size are quarantined unread; raise it for accounts with very large
# statements (a 100,000-entry camt.053 is about 120 MB).
BANK_FILES_MAX_BYTES = env.int("BANK_FILES_MAX_BYTES", default=32 * 1024 * 1024)
# The name we write as the initiating party and debtor of every pain.001.
BANK_FILES_INITIATING_PARTY = env.str("BANK_FILES_INITIATING_PARTY", default="SCF Platform")
BANK_FILES_BEAT: dict[str, dict[str, object]] = {
    # One cycle: export the queued payments, import what the banks delivered.
    "integrations-bank-files-cycle": {
        "task": "integrations.bank_files_cycle",
        "schedule": env.int("BANK_FILES_CYCLE_SECONDS", default=60),
    },
    # Yesterday's statements against the book, every morning (after the end-of-day files).
    "integrations-bank-reconcile": {
        "task": "integrations.bank_reconcile",
        "schedule": crontab(hour=6, minute=0),
    },
}
