"""The sandbox bank behaves like a bank: idempotent transfers, delayed settlement, rejections,
faults that leave the same traces a real bank's would, and a statement of money paid in."""

from __future__ import annotations

import datetime as dt
import random
import threading
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from integrations import bank as bank_package
from integrations.bank import bank_adapter
from integrations.bank.interface import (
    BankAdapter,
    BankRejected,
    BankTimeout,
    BankUnavailable,
    TransferRequest,
    TransferState,
    TransferStatus,
)
from integrations.bank.sandbox import SandboxBank, SandboxConfig
from integrations.models import SandboxIncomingCredit, SandboxTransfer
from scf import clock

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)


def request(e2e: str = "SCFD000000000001", **overrides: Any) -> TransferRequest:
    fields: dict[str, Any] = {
        "end_to_end_id": e2e,
        "amount": Decimal("8000.00"),
        "currency": "CNY",
        "debtor_account": "LENDER-001",
        "creditor_name": "Core Enterprise 1",
        "creditor_account": "6222000000000001",
        "creditor_bank": "Demo Bank Shanghai Branch",
        "remittance_info": "SCF loan SCF123 order SO-1",
    }
    fields.update(overrides)
    return TransferRequest(**fields)


def sandbox(reports: list[TransferStatus] | None = None, **config: Any) -> SandboxBank:
    sink = reports.append if reports is not None else None
    return SandboxBank(SandboxConfig(**config), report_sink=sink)


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> list[dt.datetime]:
    """``scf.clock.now`` returns the last item; append to move time forward."""
    times = [T0]
    monkeypatch.setattr(clock, "now", lambda: times[-1])
    return times


def test_repeat_of_an_end_to_end_id_returns_the_first_receipt_and_never_a_second_transfer():
    bank = sandbox()
    first = bank.initiate_transfer(request())
    again = bank.initiate_transfer(request())
    third = bank.initiate_transfer(request())
    assert again == first and third == first
    row = SandboxTransfer.objects.get()
    assert row.requests_received == 3
    assert (row.end_to_end_id, row.amount, row.creditor_account) == (
        "SCFD000000000001",
        Decimal("8000.00"),
        "6222000000000001",
    )
    assert first.bank_reference == row.bank_reference and first.bank_reference.startswith("SBX")


def test_repeat_with_a_different_amount_is_refused_as_duplication():
    bank = sandbox()
    bank.initiate_transfer(request())
    with pytest.raises(BankRejected) as refused:
        bank.initiate_transfer(request(amount=Decimal("8000.01")))
    assert refused.value.reason_code == "AM05"
    row = SandboxTransfer.objects.get()
    assert (row.amount, row.requests_received) == (Decimal("8000.00"), 1)


def test_zero_delay_settles_as_it_accepts(frozen):
    receipt = sandbox().initiate_transfer(request())
    assert receipt.state is TransferState.SETTLED
    assert receipt.settled_at == T0 == receipt.accepted_at
    assert SandboxTransfer.objects.get().status == "settled"


def test_settlement_comes_after_the_delay_and_is_persisted_when_seen(frozen):
    bank = sandbox(settle_delay_seconds=30)
    receipt = bank.initiate_transfer(request())
    assert receipt.state is TransferState.ACCEPTED and receipt.settled_at is None
    frozen.append(T0 + dt.timedelta(seconds=29))
    assert bank.transfer_status(receipt.end_to_end_id).state is TransferState.ACCEPTED
    assert SandboxTransfer.objects.get().status == "accepted"
    frozen.append(T0 + dt.timedelta(seconds=45))
    status = bank.transfer_status(receipt.end_to_end_id)
    assert status == TransferStatus(
        end_to_end_id=receipt.end_to_end_id,
        state=TransferState.SETTLED,
        bank_reference=receipt.bank_reference,
        settled_at=T0 + dt.timedelta(seconds=30),
    )
    row = SandboxTransfer.objects.get()
    assert (row.status, row.settled_at) == ("settled", T0 + dt.timedelta(seconds=30))


def test_a_repeat_after_the_delay_reports_the_settlement(frozen):
    bank = sandbox(settle_delay_seconds=10)
    bank.initiate_transfer(request())
    frozen.append(T0 + dt.timedelta(seconds=11))
    receipt = bank.initiate_transfer(request())
    assert receipt.state is TransferState.SETTLED
    assert SandboxTransfer.objects.get().requests_received == 2


def test_closed_account_is_rejected_with_ac04_and_stays_rejected():
    bank = sandbox(reject_accounts={"6222000000000001": "AC04"})
    for _ in range(2):
        with pytest.raises(BankRejected) as rejected:
            bank.initiate_transfer(request())
        assert rejected.value.reason_code == "AC04"
        assert rejected.value.detail == "Closed account number"
    row = SandboxTransfer.objects.get()
    assert (row.status, row.reason_code, row.requests_received) == ("rejected", "AC04", 2)
    status = bank.transfer_status("SCFD000000000001")
    assert (status.state, status.reason_code) == (TransferState.REJECTED, "AC04")


def test_missing_creditor_account_is_rejected_ac01():
    with pytest.raises(BankRejected) as rejected:
        sandbox().initiate_transfer(request(creditor_account=""))
    assert rejected.value.reason_code == "AC01"


def test_reject_rate_refuses_with_the_configured_code():
    bank = sandbox(reject_rate=1.0)
    with pytest.raises(BankRejected) as rejected:
        bank.initiate_transfer(request())
    assert rejected.value.reason_code == "AM04"
    assert SandboxTransfer.objects.get().reason_code == "AM04"


def test_late_rejection_is_accepted_first_and_returned_at_settlement(frozen):
    bank = sandbox(settle_delay_seconds=60, late_reject_rate=1.0, reject_code="AC06")
    receipt = bank.initiate_transfer(request())
    accepted = bank.transfer_status(receipt.end_to_end_id)
    assert (accepted.state, accepted.reason_code) == (TransferState.ACCEPTED, "")
    frozen.append(T0 + dt.timedelta(minutes=2))
    returned = bank.transfer_status(receipt.end_to_end_id)
    assert (returned.state, returned.reason_code, returned.settled_at) == (
        TransferState.REJECTED,
        "AC06",
        None,
    )
    assert SandboxTransfer.objects.get().status == "rejected"


def test_timeout_after_accept_keeps_the_transfer_then_raises():
    bank = sandbox(timeout_after_accept_rate=1.0)
    with pytest.raises(BankTimeout):
        bank.initiate_transfer(request())
    row = SandboxTransfer.objects.get()
    assert (row.status, row.requests_received) == ("settled", 1)
    assert bank.transfer_status(row.end_to_end_id).state is TransferState.SETTLED


def test_unavailable_bank_records_nothing():
    bank = sandbox(unavailable_rate=1.0)
    with pytest.raises(BankUnavailable):
        bank.initiate_transfer(request())
    with pytest.raises(BankUnavailable):
        bank.transfer_status("SCFD000000000001")
    assert not SandboxTransfer.objects.exists()


def test_a_transfer_the_bank_never_received_is_unknown():
    status = sandbox().transfer_status("SCFD999999999999")
    assert status == TransferStatus(end_to_end_id="SCFD999999999999", state=TransferState.UNKNOWN)


def test_duplicate_replies_are_delivered_again_as_status_reports():
    reports: list[TransferStatus] = []
    bank = sandbox(reports, duplicate_reply_rate=1.0)
    receipt = bank.initiate_transfer(request())
    bank.transfer_status(receipt.end_to_end_id)
    assert [r.state for r in reports] == [TransferState.SETTLED, TransferState.SETTLED]
    assert {r.bank_reference for r in reports} == {receipt.bank_reference}
    assert TransferStatus.from_json(reports[0].to_json()) == reports[0]


def test_seeded_faults_are_reproducible():
    def outcomes(seed: int) -> list[str]:
        bank = sandbox(unavailable_rate=0.5, seed=seed)
        seen = []
        for i in range(20):
            try:
                bank.transfer_status(f"SCFD{i:012d}")
                seen.append("ok")
            except BankUnavailable:
                seen.append("down")
        return seen

    first = outcomes(7)
    assert first == outcomes(7)
    assert {"ok", "down"} == set(first)


def test_latency_is_applied_to_every_call(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr("integrations.bank.sandbox.time.sleep", slept.append)
    bank = sandbox(latency_ms=250)
    bank.initiate_transfer(request())
    bank.transfer_status("SCFD000000000001")
    assert slept == [0.25, 0.25]


def test_incoming_credits_lists_the_window_oldest_first():
    bank = sandbox()
    booked = [T0 + dt.timedelta(hours=h) for h in (0, 1, 2, 3)]
    for i, at in enumerate(booked):
        bank.credit_incoming(
            amount=Decimal(f"{100 + i}.50"),
            currency="CNY",
            debtor_name=f"Agent {i}",
            remittance_info=f"SCF{i:04d}",
            booked_at=at,
            bank_reference=f"IN-{i}",
        )
    window = bank.incoming_credits(booked[0], booked[2])
    assert [c.bank_reference for c in window] == ["IN-1", "IN-2"]
    assert window[0].amount == Decimal("101.50") and window[0].remittance_info == "SCF0001"
    assert window[0].value_date == dt.date(2026, 3, 2)  # 11:00 in Shanghai
    everything = bank.incoming_credits(None, booked[3])
    assert [c.bank_reference for c in everything] == ["IN-0", "IN-1", "IN-2", "IN-3"]


def test_crediting_the_same_bank_reference_twice_books_it_once():
    bank = sandbox()
    first = bank.credit_incoming(
        amount=Decimal("10.00"), currency="CNY", debtor_name="A", bank_reference="IN-X"
    )
    again = bank.credit_incoming(
        amount=Decimal("10.00"), currency="CNY", debtor_name="A", bank_reference="IN-X"
    )
    assert first == again
    assert SandboxIncomingCredit.objects.count() == 1


def test_crediting_a_float_is_refused():
    with pytest.raises(ValueError):
        sandbox().credit_incoming(amount=10.0, currency="CNY", debtor_name="A")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "overrides",
    [
        {"amount": 8000.0},
        {"amount": Decimal("0")},
        {"end_to_end_id": "X" * 36},
        {"end_to_end_id": ""},
        {"currency": "YUAN"},
    ],
)
def test_transfer_request_refuses_bad_values(overrides):
    with pytest.raises(ValueError):
        request(**overrides)


def test_config_comes_from_settings_and_unknown_keys_are_refused(settings):
    settings.SANDBOX_BANK = {"settle_delay_seconds": 5, "seed": 3}
    config = SandboxConfig.from_settings()
    assert (config.settle_delay_seconds, config.seed, config.reject_rate) == (5, 3, 0.0)
    settings.SANDBOX_BANK = {"settle_delay": 5}
    with pytest.raises(ImproperlyConfigured):
        SandboxConfig.from_settings()


def test_bank_adapter_is_the_configured_class_one_per_configuration(settings, monkeypatch):
    monkeypatch.setattr(bank_package, "_adapters", {})
    settings.SANDBOX_BANK = {"settle_delay_seconds": 1}
    adapter = bank_adapter()
    assert isinstance(adapter, SandboxBank) and isinstance(adapter, BankAdapter)
    assert bank_adapter() is adapter
    settings.SANDBOX_BANK = {"settle_delay_seconds": 2}
    other = bank_adapter()
    assert other is not adapter
    assert isinstance(other, SandboxBank) and other.config.settle_delay_seconds == 2
    settings.BANK_ADAPTER = "tests.integrations.test_bank_sandbox.NullBank"
    assert isinstance(bank_adapter(), NullBank)


class NullBank:
    """A stand-in adapter, to show ``BANK_ADAPTER`` picks the class."""

    def initiate_transfer(self, request: TransferRequest) -> Any:
        raise BankUnavailable("null")

    def transfer_status(self, end_to_end_id: str) -> TransferStatus:
        return TransferStatus(end_to_end_id=end_to_end_id, state=TransferState.UNKNOWN)

    def incoming_credits(self, since: dt.datetime | None, until: dt.datetime) -> list[Any]:
        return []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_requests_for_one_id_make_one_transfer():
    bank = SandboxBank(SandboxConfig(), report_sink=None, rng=random.Random(1))
    barrier = threading.Barrier(12, timeout=30)
    receipts: list[Any] = []
    lock = threading.Lock()

    def send() -> None:
        try:
            barrier.wait()
            receipt = bank.initiate_transfer(request("SCFD000000000077"))
            with lock:
                receipts.append(receipt)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(receipts) == 12 and len({r.bank_reference for r in receipts}) == 1
    row = SandboxTransfer.objects.get()
    assert row.requests_received == 12
