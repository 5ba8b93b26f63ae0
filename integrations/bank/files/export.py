"""Outbound: the queued payments of each file-rail bank, as one pain.001.001.09 per bank and cycle.

In one transaction per bank: lock the queued payments (``SKIP LOCKED``, so a second exporter
running at once takes none of them), build the file (message id, control sum, number of
transactions; end-to-end id = the payment's, remittance = the loan reference), write it under a
temporary name, record the ``BankFile`` (its SHA-256) and mark the payments exported. The file
takes its final name only after the commit, so the bank never reads a file the database does
not know. A crash between the commit and the rename leaves the temporary file of a recorded
``BankFile``: the next cycle finishes the rename (``_finish_renames``); a temporary file without
a row (the transaction rolled back) is deleted, and its payments are still queued.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from django.conf import settings
from django.db import transaction

from lending.models import Bank
from scf import clock

from ...bank_models import (
    BankFile,
    BankFileDirection,
    BankFileKind,
    BankFileStatus,
    OutboundPayment,
    PaymentStatus,
)
from ..iso20022 import PaymentInstruction, build_pain001
from . import file_bank_codes, outbound_dir
from .locks import queued_payments_lock

MAX_PAYMENTS_PER_FILE = 10_000
TEMPORARY = ".part"


def _instruction(payment: OutboundPayment, bank: Bank, day: dt.date) -> PaymentInstruction:
    agent = payment.creditor_bank if 0 < len(payment.creditor_bank) <= 35 else ""
    return PaymentInstruction(
        end_to_end_id=payment.end_to_end_id,
        amount=payment.amount,
        currency=payment.currency,
        debtor_name=settings.BANK_FILES_INITIATING_PARTY,
        debtor_account=payment.debtor_account,
        debtor_agent=bank.code,
        creditor_name=payment.creditor_name[:140],
        creditor_account=payment.creditor_account,
        creditor_agent=agent,
        requested_execution_date=day,
        remittance=payment.remittance,
    )


def _finish_renames(directory: Path) -> None:
    for part in directory.glob(f"*{TEMPORARY}"):
        final = part.with_name(part.name.removesuffix(TEMPORARY))
        if BankFile.objects.filter(path=str(final)).exists():
            os.replace(part, final)
        else:
            part.unlink(missing_ok=True)


def _export_bank(bank: Bank, now: dt.datetime) -> BankFile | None:
    directory = outbound_dir(bank.code)
    directory.mkdir(parents=True, exist_ok=True)
    _finish_renames(directory)
    with transaction.atomic():
        payments = queued_payments_lock(bank, MAX_PAYMENTS_PER_FILE)
        if not payments:
            return None
        day = clock.business_date(settings.TIME_ZONE, now)
        message_id = f"SCF{now:%Y%m%d%H%M%S}-{payments[0].pk}"[:35]
        built = build_pain001(
            message_id=message_id,
            created_at=now,
            initiating_party=settings.BANK_FILES_INITIATING_PARTY,
            payments=[_instruction(p, bank, day) for p in payments],
        )
        final = directory / built.filename
        part = final.with_name(final.name + TEMPORARY)
        part.write_bytes(built.content)
        row = BankFile.objects.create(
            direction=BankFileDirection.OUTBOUND,
            kind=BankFileKind.PAIN_001,
            bank=bank,
            message_id=message_id,
            sha256=built.sha256,
            path=str(final),
            status=BankFileStatus.WRITTEN,
            transactions=len(payments),
            control_sum=sum((p.amount for p in payments), start=payments[0].amount * 0),
            created_at=now,
        )
        OutboundPayment.objects.filter(pk__in=[p.pk for p in payments]).update(
            status=PaymentStatus.EXPORTED, bank_file=row
        )
        transaction.on_commit(lambda: os.replace(part, final))
    return row


def bank_files_export(*, now: dt.datetime | None = None) -> list[BankFile]:
    """One export cycle: a pain.001 for every file-rail bank with queued payments."""
    now = now or clock.now()
    written = []
    for bank in Bank.objects.filter(code__in=file_bank_codes()).order_by("code"):
        row = _export_bank(bank, now)
        if row is not None:
            written.append(row)
    return written
