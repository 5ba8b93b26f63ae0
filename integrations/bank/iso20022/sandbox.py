"""The file-speaking sandbox bank's message logic: pain.001 in; pain.002, camt.054, camt.053 out.

It keeps one account (the lender's) in memory and answers files the way a bank's host-to-host
link does. Where the files come from and go to (directories, a periodic task) is the caller's
business: every method takes bytes or dataclasses and returns the ``BankFile``s due now.

* ``receive_payments(pain001)``: the file is read with the same checks as any inbound file (a
  hostile or inconsistent file raises ``BankFileRejected``, as a bank refuses it outright). A
  message id seen before is a duplicate file: the whole file is rejected (group ``RJCT``,
  ``DU01``), nothing booked. Each payment is rejected with its configured reason code, or as a
  duplicate (``AM05``) when its end-to-end id was paid before, or for insufficient funds
  (``AM04``) when the balance does not cover it; the rest are settled at once and booked as
  debits (one entry per payment; one batched entry per block when the file asks for batch
  booking, each payment a ``TxDtls``). Out: a pain.002 (``ACSC`` / ``RJCT`` per transaction;
  group ``ACSC``, ``PART`` or ``RJCT``) and a camt.054 debit notification for what was booked.
* ``receive_credit(transfer)``: an incoming payment (an agent's repayment, with its reference)
  is booked as a credit; out: a camt.054 credit notification.
* ``next_cycle()``: withheld status reports count down and go out when due; payments configured
  to be returned are reversed (a credit entry with ``RvslInd`` and the return reason) and
  notified by camt.054.
* ``end_of_day()``: the camt.053 for the business day (opening and closing booked balances and
  every entry booked that day); the next day opens with the closing balance.

Faults (``Faults``): ``reject`` (end-to-end id -> ISO reason code, e.g. ``AC04``, ``AM04``);
``returns`` (end-to-end id -> return reason: settled, then reversed on the next cycle);
``status_delay_cycles`` (every pain.002 is withheld that many cycles: a late status; the camt.054
still goes out at once, as a bank's booking and its status report travel separately);
``duplicate_delivery`` (every file is delivered twice, byte for byte).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal

from .camt import build_camt
from .model import (
    CAMT_053,
    CAMT_054,
    AccountReport,
    Balance,
    BankFile,
    CamtMessage,
    CreditDebit,
    Entry,
    PaymentBlock,
    PaymentInstruction,
    PaymentStatus,
    PaymentStatusReport,
    StatusReason,
    TransactionDetail,
    TransactionStatus,
    check_amount,
)
from .pain001 import parse_pain001
from .pain002 import build_pain002

DEBIT_CODE = "PMNT/ICDT/DMCT"  # issued credit transfer, domestic
CREDIT_CODE = "PMNT/RCDT/DMCT"  # received credit transfer, domestic
RETURN_CODE = "PMNT/ICDT/RRTN"  # issued credit transfer, reversal due to a return


@dataclass(frozen=True)
class Faults:
    reject: Mapping[str, str] = field(default_factory=dict)
    returns: Mapping[str, str] = field(default_factory=dict)
    status_delay_cycles: int = 0
    duplicate_delivery: bool = False


@dataclass(frozen=True, slots=True)
class IncomingTransfer:
    """Money paid into the lender's account (a repayment), as the payer's bank sends it."""

    amount: Decimal
    currency: str
    debtor_name: str
    debtor_account: str
    remittance: str = ""  # what the payer wrote: the loan or repayment reference
    creditor_reference: str = ""  # a structured creditor reference, when the payer used one
    end_to_end_id: str = ""  # the payer's, often not provided

    def __post_init__(self) -> None:
        check_amount(self.amount)


@dataclass
class _Settled:
    payment: PaymentInstruction
    returned: bool = False


class FileSandboxBank:
    """One account at a sandbox bank that speaks ISO 20022 files (see the module docstring)."""

    def __init__(
        self,
        *,
        account: str,
        currency: str,
        opening_balance: Decimal,
        business_date: dt.date,
        faults: Faults | None = None,
        bank_code: str = "SBX",
    ) -> None:
        self.account = account
        self.currency = currency
        self.balance = opening_balance
        self.business_date = business_date
        self.faults = faults or Faults()
        self.bank_code = bank_code
        self._opening = opening_balance
        self._entries: list[Entry] = []  # booked today
        self._seen_messages: set[str] = set()
        self._settled: dict[str, _Settled] = {}
        self._withheld: list[tuple[int, BankFile]] = []
        self._counter = 0
        self._statements = 0

    # Inbound --------------------------------------------------------------------------------

    def receive_payments(self, content: bytes, *, at: dt.datetime) -> list[BankFile]:
        """Answer a pain.001 (the files due now; a late status report comes in a later cycle)."""
        initiation = parse_pain001(content)
        if initiation.message_id in self._seen_messages:
            report = self._status_report(
                initiation.message_id, at, PaymentStatus.RJCT, [], StatusReason("DU01")
            )
            return self._deliver([], status=report)
        self._seen_messages.add(initiation.message_id)
        statuses: list[TransactionStatus] = []
        booked: list[Entry] = []
        for block in initiation.blocks:
            settled = self._settle_block(block, statuses)
            booked.extend(self._book_debits(block, settled))
        report = self._status_report(
            initiation.message_id, at, _group_status(statuses), statuses, None
        )
        files = [self._notification(booked, at)] if booked else []
        return self._deliver(files, status=report)

    def receive_credit(self, transfer: IncomingTransfer, *, at: dt.datetime) -> list[BankFile]:
        """Book an incoming payment and notify it (camt.054)."""
        return self.receive_batched_credit([transfer], at=at)

    def receive_batched_credit(
        self, transfers: list[IncomingTransfer], *, at: dt.datetime, amount: Decimal | None = None
    ) -> list[BankFile]:
        """Book several incoming payments as one entry (a batched booking, one ``TxDtls``
        each) and notify it. ``amount``: the entry's, when the bank books other than the sum."""
        details = tuple(
            TransactionDetail(
                end_to_end_id=t.end_to_end_id,
                amount=t.amount,
                currency=t.currency,
                remittance=t.remittance,
                creditor_reference=t.creditor_reference,
                debtor_name=t.debtor_name,
                debtor_account=t.debtor_account,
            )
            for t in transfers
        )
        total = sum((t.amount for t in transfers), Decimal("0.00")) if amount is None else amount
        entry = self._book(total, CreditDebit.CREDIT, CREDIT_CODE, details)
        return self._deliver([self._notification([entry], at)])

    # Cycles ---------------------------------------------------------------------------------

    def next_cycle(self, *, at: dt.datetime) -> list[BankFile]:
        """Release the status reports now due, and book the configured returns."""
        due = [f for cycles, f in self._withheld if cycles <= 1]
        self._withheld = [(cycles - 1, f) for cycles, f in self._withheld if cycles > 1]
        reversals = []
        for end_to_end_id, reason in self.faults.returns.items():
            settled = self._settled.get(end_to_end_id)
            if settled is None or settled.returned:
                continue
            settled.returned = True
            reversals.append(self._book_return(settled.payment, reason))
        files = [self._notification(reversals, at)] if reversals else []
        return self._deliver(due + files)

    def end_of_day(self, *, at: dt.datetime) -> list[BankFile]:
        """The day's camt.053; the next business day opens with today's closing balance."""
        day = self.business_date
        report = AccountReport(
            report_id=f"{self.bank_code}-{day:%Y%m%d}",
            account=self.account,
            currency=self.currency,
            created_at=at,
            sequence_number=self._statements + 1,
            balances=(
                _balance("OPBD", self._opening, self.currency, day),
                _balance("CLBD", self.balance, self.currency, day),
            ),
            entries=tuple(self._entries),
        )
        message = CamtMessage(CAMT_053, self._next_id("STM"), at, (report,))
        self._statements += 1
        self._opening = self.balance
        self._entries = []
        self.business_date = day + dt.timedelta(days=1)
        return self._deliver([build_camt(message)])

    # Internals ------------------------------------------------------------------------------

    def _settle_block(
        self, block: PaymentBlock, statuses: list[TransactionStatus]
    ) -> list[PaymentInstruction]:
        settled = []
        for payment in block.payments:
            reason = self._rejection(payment)
            status = PaymentStatus.RJCT if reason else PaymentStatus.ACSC
            reasons = (StatusReason(reason),) if reason else ()
            statuses.append(
                TransactionStatus(
                    payment.end_to_end_id, status, reasons, block.payment_information_id
                )
            )
            if not reason:
                self.balance -= payment.amount
                self._settled[payment.end_to_end_id] = _Settled(payment)
                settled.append(payment)
        return settled

    def _rejection(self, payment: PaymentInstruction) -> str:
        if payment.end_to_end_id in self.faults.reject:
            return self.faults.reject[payment.end_to_end_id]
        if payment.end_to_end_id in self._settled:
            return "AM05"  # duplication
        if payment.debtor_account != self.account:
            return "AC02"  # invalid debtor account number
        if payment.currency != self.currency:
            return "AM03"  # currency not allowed
        if payment.amount > self.balance:
            return "AM04"  # insufficient funds
        return ""

    def _book_debits(self, block: PaymentBlock, settled: list[PaymentInstruction]) -> list[Entry]:
        details = [_debit_detail(p) for p in settled]
        if not settled:
            return []
        if block.batch_booking:
            total = sum((p.amount for p in settled), Decimal(0))
            return [
                self._book(total, CreditDebit.DEBIT, DEBIT_CODE, tuple(details), move_balance=False)
            ]
        return [
            self._book(p.amount, CreditDebit.DEBIT, DEBIT_CODE, (d,), move_balance=False)
            for p, d in zip(settled, details, strict=True)
        ]

    def _book_return(self, payment: PaymentInstruction, reason: str) -> Entry:
        detail = replace(_debit_detail(payment), return_reason=reason)
        return self._book(payment.amount, CreditDebit.CREDIT, RETURN_CODE, (detail,), reversal=True)

    def _book(
        self,
        amount: Decimal,
        credit_debit: CreditDebit,
        code: str,
        details: tuple[TransactionDetail, ...],
        *,
        reversal: bool = False,
        move_balance: bool = True,
    ) -> Entry:
        """An entry booked today (``move_balance=False``: settling moved the balance already)."""
        if move_balance:
            self.balance += amount if credit_debit is CreditDebit.CREDIT else -amount
        self._counter += 1
        entry = Entry(
            account_servicer_reference=f"{self.bank_code}{self.business_date:%Y%m%d}"
            f"{self._counter:08d}",
            amount=amount,
            currency=self.currency,
            credit_debit=credit_debit,
            status="BOOK",
            booking_date=self.business_date,
            value_date=self.business_date,
            bank_transaction_code=code,
            reversal=reversal,
            details=details,
        )
        self._entries.append(entry)
        return entry

    def _notification(self, entries: list[Entry], at: dt.datetime) -> BankFile:
        message_id = self._next_id("NTF")
        report = AccountReport(
            message_id, self.account, self.currency, at, None, (), tuple(entries)
        )
        return build_camt(CamtMessage(CAMT_054, message_id, at, (report,)))

    def _status_report(
        self,
        original_id: str,
        at: dt.datetime,
        group_status: PaymentStatus,
        statuses: list[TransactionStatus],
        group_reason: StatusReason | None,
    ) -> BankFile:
        report = PaymentStatusReport(
            message_id=self._next_id("STS"),
            created_at=at,
            original_message_id=original_id,
            original_message_type="pain.001.001.09",
            group_status=group_status,
            group_reasons=(group_reason,) if group_reason else (),
            transactions=tuple(statuses),
        )
        return build_pain002(report)

    def _deliver(self, files: list[BankFile], *, status: BankFile | None = None) -> list[BankFile]:
        if status is not None:
            if self.faults.status_delay_cycles > 0:
                self._withheld.append((self.faults.status_delay_cycles, status))
            else:
                files = [status, *files]
        if self.faults.duplicate_delivery:
            return [f for f in files for _ in range(2)]
        return files

    def _next_id(self, kind: str) -> str:
        self._counter += 1
        return f"{self.bank_code}-{kind}-{self._counter:08d}"


def _group_status(statuses: list[TransactionStatus]) -> PaymentStatus:
    rejected = sum(1 for s in statuses if s.status is PaymentStatus.RJCT)
    if rejected == len(statuses):
        return PaymentStatus.RJCT
    return PaymentStatus.PART if rejected else PaymentStatus.ACSC


def _debit_detail(payment: PaymentInstruction) -> TransactionDetail:
    return TransactionDetail(
        end_to_end_id=payment.end_to_end_id,
        amount=payment.amount,
        currency=payment.currency,
        remittance=payment.remittance,
        creditor_name=payment.creditor_name,
        creditor_account=payment.creditor_account,
    )


def _balance(type_code: str, amount: Decimal, currency: str, day: dt.date) -> Balance:
    credit_debit = CreditDebit.CREDIT if amount >= 0 else CreditDebit.DEBIT
    return Balance(type_code, abs(amount), currency, credit_debit, day)
