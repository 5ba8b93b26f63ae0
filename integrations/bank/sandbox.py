"""The sandbox bank: an in-process bank that behaves like a real one, faults included.

What it does, like a bank:

* keeps every transfer it receives (``SandboxTransfer``), one row per end-to-end id, ever. A
  repeat of an id is the same payment: the first receipt again (``requests_received`` counts the
  repeats), never a second transfer. A repeat with a different amount or creditor is refused
  (``AM05``, duplication);
* settles asynchronously: ``settle_at = received_at + settle_delay_seconds``. The state is worked
  out against ``settle_at`` whenever the transfer is looked at, and written back (row locked)
  the first time it is seen settled. With no delay a transfer settles as it is accepted, like a
  real-time rail, and the receipt says so;
* refuses what a bank would: no creditor account (``AC01``), accounts listed in
  ``reject_accounts`` (e.g. ``{"6222...": "AC04"}``), and ``reject_rate`` of the rest
  (``reject_code``, default ``AM04``); ``late_reject_rate`` accepts first and rejects at
  settlement (a return from the creditor's bank);
* lists money paid in to the lender (``SandboxIncomingCredit``); ``credit_incoming`` simulates
  an agent paying (tests, the demo).

Faults, from ``settings.SANDBOX_BANK`` (all off by default): ``latency_ms`` per call;
``unavailable_rate`` (``BankUnavailable`` before anything happens); ``timeout_after_accept_rate``
(the transfer is stored, then ``BankTimeout``); ``duplicate_reply_rate`` (the reply is delivered
a second time, as an unsolicited status report to ``report_sink``, which by default queues the
``integrations.bank_status_report`` task). ``seed`` makes the fault sequence reproducible.

Uses ``scf.clock.now`` for time, so tests can move the clock.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.db.models import F

from scf import clock
from scf.enqueue import enqueue

from ..models import SandboxIncomingCredit, SandboxTransfer, SandboxTransferStatus
from .interface import (
    BankRejected,
    BankTimeout,
    BankUnavailable,
    IncomingCredit,
    TransferReceipt,
    TransferRequest,
    TransferState,
    TransferStatus,
)

StatusReportSink = Callable[[TransferStatus], None]
STATUS_REPORT_TASK = "integrations.bank_status_report"


@dataclass(frozen=True)
class SandboxConfig:
    """How the sandbox behaves; rates are probabilities per call, 0.0 to 1.0."""

    settle_delay_seconds: float = 0.0
    timeout_after_accept_rate: float = 0.0
    unavailable_rate: float = 0.0
    reject_rate: float = 0.0
    reject_code: str = "AM04"
    late_reject_rate: float = 0.0
    duplicate_reply_rate: float = 0.0
    latency_ms: int = 0
    seed: int | None = None
    reject_accounts: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls) -> SandboxConfig:
        """``settings.SANDBOX_BANK`` (a dict; missing keys take the defaults above)."""
        raw: dict[str, Any] = dict(settings.SANDBOX_BANK or {})
        unknown = set(raw) - {f.name for f in fields(cls)}
        if unknown:
            raise ImproperlyConfigured(f"Unknown SANDBOX_BANK keys: {sorted(unknown)}")
        return cls(**raw)


def queue_status_report(status: TransferStatus) -> None:
    """Deliver a bank status report to the platform the way a bank's push would arrive."""
    enqueue(STATUS_REPORT_TASK, [status.to_json()])


def _state_of(row: SandboxTransfer) -> TransferStatus:
    state = TransferState(row.status)
    return TransferStatus(
        end_to_end_id=row.end_to_end_id,
        state=state,
        reason_code=row.reason_code if state is TransferState.REJECTED else "",
        bank_reference=row.bank_reference,
        settled_at=row.settled_at if state is TransferState.SETTLED else None,
    )


def _credit_of(row: SandboxIncomingCredit) -> IncomingCredit:
    return IncomingCredit(
        bank_reference=row.bank_reference,
        amount=row.amount,
        currency=row.currency,
        value_date=row.value_date,
        booked_at=row.booked_at,
        debtor_name=row.debtor_name,
        debtor_account=row.debtor_account,
        remittance_info=row.remittance_info,
    )


def _same_payment(row: SandboxTransfer, request: TransferRequest) -> bool:
    return (
        row.amount == request.amount
        and row.currency == request.currency
        and row.creditor_account == request.creditor_account
    )


class SandboxBank:
    """A ``BankAdapter`` backed by the database. Thread-safe; one instance may serve a process."""

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        report_sink: StatusReportSink | None = queue_status_report,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config or SandboxConfig.from_settings()
        self.report_sink = report_sink
        self._rng = rng or random.Random(self.config.seed)
        self._rng_lock = threading.Lock()

    # --- faults ---------------------------------------------------------------------------

    def _roll(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._rng_lock:
            return self._rng.random() < rate

    def _call_begins(self) -> None:
        """Every call: the configured latency, then maybe the bank is not there at all."""
        if self.config.latency_ms:
            time.sleep(self.config.latency_ms / 1000)
        if self._roll(self.config.unavailable_rate):
            raise BankUnavailable("sandbox bank: service unavailable (simulated)")

    def _maybe_duplicate(self, status: TransferStatus) -> None:
        if self.report_sink is not None and self._roll(self.config.duplicate_reply_rate):
            self.report_sink(status)

    # --- transfers ------------------------------------------------------------------------

    def _verdict(self, request: TransferRequest) -> tuple[SandboxTransferStatus, str]:
        """Accept or reject a new transfer; a late rejection is accepted now with its code kept."""
        if not request.creditor_account.strip():
            return SandboxTransferStatus.REJECTED, "AC01"
        listed = self.config.reject_accounts.get(request.creditor_account)
        if listed:
            return SandboxTransferStatus.REJECTED, listed
        if self._roll(self.config.reject_rate):
            return SandboxTransferStatus.REJECTED, self.config.reject_code
        if self._roll(self.config.late_reject_rate):
            return SandboxTransferStatus.ACCEPTED, self.config.reject_code
        return SandboxTransferStatus.ACCEPTED, ""

    def _new_row(self, request: TransferRequest) -> SandboxTransfer:
        status, reason = self._verdict(request)
        now = clock.now()
        settle_at = now + dt.timedelta(seconds=self.config.settle_delay_seconds)
        row = SandboxTransfer(
            end_to_end_id=request.end_to_end_id,
            bank_reference=f"SBX{uuid.uuid4().hex[:24].upper()}",
            amount=request.amount,
            currency=request.currency,
            debtor_account=request.debtor_account,
            creditor_name=request.creditor_name,
            creditor_account=request.creditor_account,
            status=status,
            reason_code=reason,
            received_at=now,
            settle_at=settle_at,
        )
        return self._settled_if_due(row, now)

    @staticmethod
    def _settled_if_due(row: SandboxTransfer, now: dt.datetime) -> SandboxTransfer:
        """Move an accepted transfer whose time has come to settled (or to its late rejection)."""
        if row.status == SandboxTransferStatus.ACCEPTED and row.settle_at <= now:
            if row.reason_code:
                row.status = SandboxTransferStatus.REJECTED
            else:
                row.status = SandboxTransferStatus.SETTLED
                row.settled_at = row.settle_at
        return row

    def _record(self, request: TransferRequest) -> tuple[SandboxTransfer, bool]:
        """The transfer for this end-to-end id, created if new: (row, created).

        A new id is one INSERT; a repeat meets the unique index (a racing first request waits
        there until the winner commits) and is then counted in a second transaction with the
        row locked (``SELECT ... FOR UPDATE``).
        """
        try:
            with transaction.atomic():
                new = self._new_row(request)
                new.save(force_insert=True)
                return new, True
        except IntegrityError:
            pass
        with transaction.atomic():
            row = SandboxTransfer.objects.select_for_update().get(
                end_to_end_id=request.end_to_end_id
            )
            if not _same_payment(row, request):
                raise BankRejected("AM05", "Duplicate end-to-end id for a different payment")
            SandboxTransfer.objects.filter(pk=row.pk).update(
                requests_received=F("requests_received") + 1
            )
            row.requests_received += 1
            return row, False

    def initiate_transfer(self, request: TransferRequest) -> TransferReceipt:
        """Accept (or refuse) a transfer, once per end-to-end id; see the module docstring."""
        self._call_begins()
        row, _created = self._record(request)
        row = self._persist_settlement(row)
        status = _state_of(row)
        if status.state is TransferState.REJECTED:
            self._maybe_duplicate(status)
            raise BankRejected(row.reason_code)
        if self._roll(self.config.timeout_after_accept_rate):
            raise BankTimeout("sandbox bank: accepted, but the reply was lost (simulated)")
        self._maybe_duplicate(status)
        return TransferReceipt(
            end_to_end_id=row.end_to_end_id,
            bank_reference=row.bank_reference,
            state=status.state,
            accepted_at=row.received_at,
            settled_at=status.settled_at,
        )

    def _persist_settlement(self, row: SandboxTransfer) -> SandboxTransfer:
        """If an accepted transfer is now due, write its final state (row locked, once)."""
        if row.status != SandboxTransferStatus.ACCEPTED or row.settle_at > clock.now():
            return row
        with transaction.atomic():
            locked = SandboxTransfer.objects.select_for_update().get(pk=row.pk)
            before = locked.status
            self._settled_if_due(locked, clock.now())
            if locked.status != before:
                locked.save(update_fields=["status", "settled_at"])
            return locked

    def transfer_status(self, end_to_end_id: str) -> TransferStatus:
        """The transfer's state now (``UNKNOWN`` if the bank never received it)."""
        self._call_begins()
        row = SandboxTransfer.objects.filter(end_to_end_id=end_to_end_id).first()
        if row is None:
            return TransferStatus(end_to_end_id=end_to_end_id, state=TransferState.UNKNOWN)
        status = _state_of(self._persist_settlement(row))
        self._maybe_duplicate(status)
        return status

    # --- money in -------------------------------------------------------------------------

    def incoming_credits(
        self, since: dt.datetime | None, until: dt.datetime
    ) -> list[IncomingCredit]:
        """Credits booked in ``(since, until]``, oldest first."""
        self._call_begins()
        rows = SandboxIncomingCredit.objects.filter(booked_at__lte=until)
        if since is not None:
            rows = rows.filter(booked_at__gt=since)
        return [_credit_of(row) for row in rows.order_by("booked_at", "id")]

    def credit_incoming(
        self,
        *,
        amount: Decimal,
        currency: str,
        debtor_name: str,
        debtor_account: str = "",
        remittance_info: str = "",
        booked_at: dt.datetime | None = None,
        value_date: dt.date | None = None,
        bank_reference: str | None = None,
    ) -> IncomingCredit:
        """Simulate money paid into the lender's account. Idempotent on ``bank_reference``."""
        if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
            raise ValueError("amount must be a positive Decimal")
        booked = booked_at or clock.now()
        row, _ = SandboxIncomingCredit.objects.get_or_create(
            bank_reference=bank_reference or f"SBXIN{uuid.uuid4().hex[:20].upper()}",
            defaults={
                "amount": amount,
                "currency": currency,
                "value_date": value_date or clock.business_date(settings.TIME_ZONE, booked),
                "booked_at": booked,
                "debtor_name": debtor_name,
                "debtor_account": debtor_account,
                "remittance_info": remittance_info[:140],
            },
        )
        return _credit_of(row)
