"""Inbound: each file in a file-rail bank's inbound directory, imported once and whole.

Per file, in one transaction:

1. its SHA-256 is inserted as a ``BankFile`` row (unique). A second worker importing the same
   bytes at the same time waits on the unique index until the first commits, then finds it
   there: the file is a duplicate and nothing is applied again. (Should the first roll back, the
   second imports it.) The same bytes delivered again later are a duplicate the same way;
2. the kind is told from the root namespace; the file is read by the message layer (size cap,
   no DTD, well-formed, the XSD, counts and sums) and applied (``statuses`` for a pain.002,
   ``entries`` for a camt.054/053) inside a savepoint;
3. a file the message layer refuses (``BankFileRejected``) or that does not fit our records
   (``FileRefused``: another account, a status for a payment file we never sent, a status that
   contradicts a final one) rolls the savepoint back, so nothing of it is applied, and is
   recorded ``quarantined`` with its reason.

Credits matched to a loan are stored ``matched`` with the file and become repayments after
the commit, a batch per transaction (``matched``, which explains why).

After the commit the file moves to ``processed/`` or ``quarantine/`` beside it (a duplicate to
``processed/`` too, with a ``.duplicate`` suffix). A crash before the move leaves it in place;
the next cycle finds its digest recorded and moves it as a duplicate: still applied once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction

from lending.models import Bank
from scf import clock

from ...bank_models import BankFile, BankFileDirection, BankFileKind, BankFileStatus
from ..iso20022 import BankFileRejected
from . import PROCESSED, QUARANTINE, file_bank_codes, inbound_dir
from .entries import camt_apply
from .errors import FileRefused
from .matched import matched_credits_apply
from .statuses import pain002_apply

logger = logging.getLogger(__name__)

_ROOT = re.compile(rb"urn:iso:std:iso:20022:tech:xsd:(pain\.002|camt\.053|camt\.054)\.\d{3}\.\d{2}")


class Outcome:
    IMPORTED = "imported"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"


@dataclass
class CycleResult:
    files: dict[str, str] = field(default_factory=dict)  # path -> outcome

    def count(self, outcome: str) -> int:
        return sum(1 for value in self.files.values() if value == outcome)


def kind_of(content: bytes) -> str:
    """The message kind named in the file's first 4 KiB; ``unknown`` when none we read."""
    found = _ROOT.search(content[:4096])
    return found.group(1).decode() if found else BankFileKind.UNKNOWN


def _apply(row: BankFile, content: bytes, bank: Bank) -> None:
    max_bytes = settings.BANK_FILES_MAX_BYTES
    if row.kind == BankFileKind.PAIN_002:
        pain002_apply(row, content, bank, max_bytes=max_bytes)
    elif row.kind in (BankFileKind.CAMT_053, BankFileKind.CAMT_054):
        camt_apply(row, content, bank, max_bytes=max_bytes)
    else:
        raise FileRefused("unexpected_message", "not a pain.002, camt.053 or camt.054 file")


def _move(path: Path, folder: str, suffix: str = "") -> None:
    target = path.parent / folder
    target.mkdir(exist_ok=True)
    with contextlib.suppress(FileNotFoundError):  # another worker moved it first
        os.replace(path, target / (path.name + suffix))


def bank_file_import(*, bank: Bank, path: Path, now: dt.datetime | None = None) -> str:
    """Import one inbound file (see the module docstring); returns the outcome."""
    now = now or clock.now()
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        return Outcome.DUPLICATE  # another worker imported and moved it
    row = BankFile(
        direction=BankFileDirection.INBOUND,
        kind=kind_of(content),
        bank=bank,
        sha256=hashlib.sha256(content).hexdigest(),
        path=str(path),
        status=BankFileStatus.IMPORTED,
        created_at=now,
        imported_at=now,
    )
    with transaction.atomic():
        try:
            with transaction.atomic():
                row.save(force_insert=True)
        except IntegrityError:
            transaction.on_commit(lambda: _move(path, PROCESSED, ".duplicate"))
            return Outcome.DUPLICATE
        try:
            with transaction.atomic():
                _apply(row, content, bank)
        except (BankFileRejected, FileRefused) as exc:
            row.status = BankFileStatus.QUARANTINED
            row.quarantine_reason = str(exc.reason_code)
            row.quarantine_detail = exc.detail[:2000]
            logger.warning(
                "bank file quarantined",
                extra={"path": str(path), "reason": row.quarantine_reason},
            )
        row.save()
        folder = PROCESSED if row.status == BankFileStatus.IMPORTED else QUARANTINE
        transaction.on_commit(lambda: _move(path, folder))
    return Outcome.IMPORTED if row.status == BankFileStatus.IMPORTED else Outcome.QUARANTINED


def bank_files_import(*, now: dt.datetime | None = None) -> CycleResult:
    """One import cycle over every file-rail bank's inbound directory, oldest file first."""
    result = CycleResult()
    for bank in Bank.objects.filter(code__in=file_bank_codes()).order_by("code"):
        directory = inbound_dir(bank.code)
        if not directory.is_dir():
            matched_credits_apply(bank=bank)
            continue
        files = sorted(
            (p for p in directory.iterdir() if p.is_file() and not p.name.startswith(".")),
            key=lambda p: (p.stat().st_mtime_ns, p.name),
        )
        for path in files:
            result.files[str(path)] = bank_file_import(bank=bank, path=path, now=now)
        matched_credits_apply(bank=bank)
    return result
