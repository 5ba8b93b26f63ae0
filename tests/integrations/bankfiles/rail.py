"""A file-rail bank for tests: the platform's directories on one side, the file sandbox bank on
the other, and a cycle that moves files between them the way a host-to-host link does."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.db import transaction

from integrations.bank.files import inbound_dir, outbound_dir
from integrations.bank.files.export import bank_files_export
from integrations.bank.files.inbound import CycleResult, bank_files_import
from integrations.bank.iso20022 import BankFile, Faults, FileSandboxBank, IncomingTransfer
from lending.models import Loan, LoanStatus
from lending.services.finance import loan_finance
from scf import clock
from tests.orders.factories import OrderFactory

BANK_CODE = "BANK-1"
ACCOUNT = "SCF-LENDER-0001"  # settings.LENDER_SETTLEMENT_ACCOUNT: the bank has no own number
OPENING = Decimal("1000000.00")


class Rail:
    """The sandbox bank behind the two directories of ``BANK-1``."""

    def __init__(self, faults: Faults | None = None, *, today: dt.date | None = None) -> None:
        self.today = today or clock.business_date("Asia/Shanghai")
        self.bank = FileSandboxBank(
            account=ACCOUNT,
            currency="CNY",
            opening_balance=OPENING,
            business_date=self.today,
            faults=faults,
        )
        self._names = itertools.count(1)

    @property
    def inbound(self) -> Path:
        return inbound_dir(BANK_CODE)

    def deliver(self, files: list[BankFile]) -> list[Path]:
        """The bank drops files into our inbound directory (a duplicate gets its own name)."""
        self.inbound.mkdir(parents=True, exist_ok=True)
        paths = []
        for built in files:
            path = self.inbound / f"{next(self._names):04d}-{built.filename}"
            path.write_bytes(built.content)
            paths.append(path)
        return paths

    def bank_reads_payments(self) -> int:
        """The bank picks up our pain.001 files and answers them."""
        directory = outbound_dir(BANK_CODE)
        read = 0
        for path in sorted(directory.glob("*.xml")) if directory.is_dir() else []:
            self.deliver(self.bank.receive_payments(path.read_bytes(), at=clock.now()))
            (directory / "sent").mkdir(exist_ok=True)
            path.rename(directory / "sent" / path.name)
            read += 1
        return read

    def pay_in(self, amount: str, **refs: Any) -> list[Path]:
        transfer = IncomingTransfer(
            amount=Decimal(amount),
            currency="CNY",
            debtor_name=refs.pop("debtor_name", "Dealer Ltd"),
            debtor_account=refs.pop("debtor_account", "6222000011112222"),
            **refs,
        )
        return self.deliver(self.bank.receive_credit(transfer, at=clock.now()))

    def pay_in_batched(self, *payments: dict[str, Any], amount: str | None = None) -> list[Path]:
        """Several payments booked by the bank as one credit entry (``amount``: the entry's,
        when it is not their sum)."""
        transfers = [
            IncomingTransfer(
                amount=Decimal(p.pop("amount")),
                currency="CNY",
                debtor_name=p.pop("debtor_name", "Dealer Ltd"),
                debtor_account=p.pop("debtor_account", "6222000011112222"),
                **p,
            )
            for p in (dict(payment) for payment in payments)
        ]
        total = Decimal(amount) if amount is not None else None
        return self.deliver(
            self.bank.receive_batched_credit(transfers, at=clock.now(), amount=total)
        )

    def next_cycle(self) -> list[Path]:
        return self.deliver(self.bank.next_cycle(at=clock.now()))

    def end_of_day(self) -> list[Path]:
        return self.deliver(self.bank.end_of_day(at=clock.now()))


def export(capture: Any) -> list[Any]:
    with capture(execute=True):
        return bank_files_export()


def import_files(capture: Any) -> CycleResult:
    with capture(execute=True):
        return bank_files_import()


def cycle(rail: Rail, capture: Any) -> CycleResult:
    """Our export, the bank's answer, our import."""
    export(capture)
    rail.bank_reads_payments()
    return import_files(capture)


def finance(user: Any, capture: Any, **order: Any) -> Loan:
    """A new order financed and approved; its disbursement queued for the next payment file."""
    row = OrderFactory(agent=user.agent, enterprise=user.agent.enterprises.first(), **order)
    with capture(execute=True), transaction.atomic():
        loan = loan_finance(user=user, order_id=row.pk)
    loan.refresh_from_db()
    assert loan.status == LoanStatus.DISBURSING
    return loan
