"""The file-speaking sandbox bank: a pain.001 in, pain.002 and camt.054 out, camt.053 at the end
of the day; its faults; everything it writes is valid and reads back through our readers."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from integrations.bank.iso20022 import (
    BankFile,
    BankFileRejected,
    CamtMessage,
    CreditDebit,
    Engine,
    Faults,
    FileSandboxBank,
    IncomingTransfer,
    PaymentStatus,
    PaymentStatusReport,
    RejectReason,
    build_pain001,
    parse_camt053,
    parse_camt054,
    parse_pain002,
)

from .factories import CREATED_AT, DAY, LENDER_ACCOUNT, LENDER_NAME, golden_payments, payment

AT = CREATED_AT + dt.timedelta(minutes=5)
OPENING = Decimal("1000000.00")
GOLDEN_TOTAL = Decimal("81234.51")


def bank(faults: Faults | None = None, opening: Decimal = OPENING) -> FileSandboxBank:
    return FileSandboxBank(
        account=LENDER_ACCOUNT,
        currency="CNY",
        opening_balance=opening,
        business_date=DAY,
        faults=faults,
    )


def payment_file(
    message_id: str = "SCF-1", payments: list | None = None, **kwargs: object
) -> bytes:
    return build_pain001(
        message_id=message_id,
        created_at=CREATED_AT,
        initiating_party=LENDER_NAME,
        payments=payments or golden_payments(),
        **kwargs,  # type: ignore[arg-type]
    ).content


def kinds(files: list[BankFile]) -> list[str]:
    return [f.message_type for f in files]


def status_of(files: list[BankFile]) -> PaymentStatusReport:
    (report,) = [parse_pain002(f.content) for f in files if f.message_type == "pain.002.001.10"]
    return report


def notification(files: list[BankFile]) -> CamtMessage:
    (message,) = [
        parse_camt054(f.content, engine=Engine.XMLSCHEMA)
        for f in files
        if f.message_type == "camt.054.001.08"
    ]
    return message


def test_payments_are_settled_reported_and_notified() -> None:
    sandbox = bank()
    files = sandbox.receive_payments(payment_file(), at=AT)
    assert kinds(files) == ["pain.002.001.10", "camt.054.001.08"]
    report = status_of(files)
    assert report.original_message_id == "SCF-1"
    assert report.group_status is PaymentStatus.ACSC
    assert [(t.end_to_end_id, t.status) for t in report.transactions] == [
        ("DSB-000001", PaymentStatus.ACSC),
        ("DSB-000002", PaymentStatus.ACSC),
        ("DSB-000003", PaymentStatus.ACSC),
    ]
    assert {t.payment_information_id for t in report.transactions} == {"SCF-1-00001", "SCF-1-00002"}
    (account,) = notification(files).reports
    assert account.account == LENDER_ACCOUNT
    assert [(e.details[0].end_to_end_id, e.signed_amount) for e in account.entries] == [
        ("DSB-000001", Decimal("-80000.00")),
        ("DSB-000002", Decimal("-1234.50")),
        ("DSB-000003", Decimal("-0.01")),
    ]
    assert account.entries[0].details[0].remittance == "LN-2026-000001"
    assert sandbox.balance == OPENING - GOLDEN_TOTAL


def test_configured_rejections_carry_their_iso_reason_codes() -> None:
    sandbox = bank(Faults(reject={"DSB-000002": "AC04", "DSB-000003": "AM04"}))
    files = sandbox.receive_payments(payment_file(), at=AT)
    report = status_of(files)
    assert report.group_status is PaymentStatus.PART
    assert [(t.end_to_end_id, t.status, t.reason_code) for t in report.transactions] == [
        ("DSB-000001", PaymentStatus.ACSC, ""),
        ("DSB-000002", PaymentStatus.RJCT, "AC04"),
        ("DSB-000003", PaymentStatus.RJCT, "AM04"),
    ]
    (account,) = notification(files).reports
    assert [e.details[0].end_to_end_id for e in account.entries] == ["DSB-000001"]
    assert sandbox.balance == OPENING - Decimal("80000.00")


def test_a_file_with_every_payment_rejected_books_nothing() -> None:
    sandbox = bank(Faults(reject={p.end_to_end_id: "AC01" for p in golden_payments()}))
    files = sandbox.receive_payments(payment_file(), at=AT)
    assert kinds(files) == ["pain.002.001.10"]
    assert status_of(files).group_status is PaymentStatus.RJCT
    assert sandbox.balance == OPENING


def test_a_payment_the_balance_does_not_cover_is_rejected_for_insufficient_funds() -> None:
    sandbox = bank(opening=Decimal("80001.00"))
    report = status_of(sandbox.receive_payments(payment_file(), at=AT))
    assert [(t.status, t.reason_code) for t in report.transactions] == [
        (PaymentStatus.ACSC, ""),
        (PaymentStatus.RJCT, "AM04"),
        (PaymentStatus.ACSC, ""),
    ]
    assert sandbox.balance == Decimal("0.99")


def test_the_same_file_twice_is_rejected_whole_as_a_duplicate() -> None:
    sandbox = bank()
    content = payment_file()
    sandbox.receive_payments(content, at=AT)
    files = sandbox.receive_payments(content, at=AT)
    assert kinds(files) == ["pain.002.001.10"]
    report = status_of(files)
    assert (report.group_status, report.group_reasons[0].code, report.transactions) == (
        PaymentStatus.RJCT,
        "DU01",
        (),
    )
    assert sandbox.balance == OPENING - GOLDEN_TOTAL


def test_a_payment_sent_again_in_a_new_file_is_rejected_as_a_duplication() -> None:
    sandbox = bank()
    sandbox.receive_payments(payment_file("SCF-1", [payment()]), at=AT)
    again = status_of(sandbox.receive_payments(payment_file("SCF-2", [payment()]), at=AT))
    assert again.transactions[0].reason_code == "AM05"
    assert sandbox.balance == OPENING - Decimal("80000.00")


def test_a_late_status_report_comes_after_the_configured_number_of_cycles() -> None:
    sandbox = bank(Faults(status_delay_cycles=2))
    files = sandbox.receive_payments(payment_file(), at=AT)
    assert kinds(files) == ["camt.054.001.08"]  # the booking is notified at once
    assert sandbox.next_cycle(at=AT) == []
    late = sandbox.next_cycle(at=AT)
    assert kinds(late) == ["pain.002.001.10"]
    assert status_of(late).group_status is PaymentStatus.ACSC
    assert sandbox.next_cycle(at=AT) == []


def test_duplicate_delivery_sends_every_file_twice_byte_for_byte() -> None:
    sandbox = bank(Faults(duplicate_delivery=True))
    files = sandbox.receive_payments(payment_file(), at=AT)
    assert kinds(files) == ["pain.002.001.10"] * 2 + ["camt.054.001.08"] * 2
    assert files[0].content == files[1].content and files[2].sha256 == files[3].sha256


def test_a_late_status_report_is_delivered_twice_too_when_both_faults_are_on() -> None:
    sandbox = bank(Faults(status_delay_cycles=1, duplicate_delivery=True))
    assert kinds(sandbox.receive_payments(payment_file(), at=AT)) == ["camt.054.001.08"] * 2
    late = sandbox.next_cycle(at=AT)
    assert kinds(late) == ["pain.002.001.10"] * 2
    assert late[0].content == late[1].content


def test_batch_booking_gives_one_entry_per_block_with_each_payment_in_it() -> None:
    sandbox = bank()
    files = sandbox.receive_payments(payment_file(batch_booking=True), at=AT)
    (account,) = notification(files).reports
    first, second = account.entries
    assert first.amount == Decimal("81234.50")
    assert [(d.end_to_end_id, d.amount) for d in first.details] == [
        ("DSB-000001", Decimal("80000.00")),
        ("DSB-000002", Decimal("1234.50")),
    ]
    assert [d.end_to_end_id for d in second.details] == ["DSB-000003"]


def test_a_configured_return_is_reversed_on_the_next_cycle() -> None:
    sandbox = bank(Faults(returns={"DSB-000002": "AC04"}))
    sandbox.receive_payments(payment_file(), at=AT)
    files = sandbox.next_cycle(at=AT)
    (account,) = notification(files).reports
    (reversal,) = account.entries
    assert (reversal.reversal, reversal.credit_debit, reversal.amount) == (
        True,
        CreditDebit.CREDIT,
        Decimal("1234.50"),
    )
    assert reversal.details[0].end_to_end_id == "DSB-000002"
    assert reversal.details[0].return_reason == "AC04"
    assert sandbox.balance == OPENING - GOLDEN_TOTAL + Decimal("1234.50")
    assert sandbox.next_cycle(at=AT) == []  # returned once


def test_an_incoming_repayment_is_booked_and_notified_with_its_reference() -> None:
    sandbox = bank()
    transfer = IncomingTransfer(
        amount=Decimal("20500.00"),
        currency="CNY",
        debtor_name="苏州恒达经销有限公司",
        debtor_account="6217000010001112223",
        remittance="LN-2026-000001",
    )
    (account,) = notification(sandbox.receive_credit(transfer, at=AT)).reports
    (entry,) = account.entries
    assert entry.signed_amount == Decimal("20500.00")
    assert entry.details[0].remittance == "LN-2026-000001"
    assert entry.details[0].debtor_account == "6217000010001112223"
    assert entry.bank_transaction_code == "PMNT/RCDT/DMCT"
    assert sandbox.balance == OPENING + Decimal("20500.00")


def test_the_end_of_day_statement_holds_the_days_entries_and_adds_up() -> None:
    sandbox = bank(Faults(returns={"DSB-000003": "AC04"}, reject={"DSB-000002": "AC04"}))
    sandbox.receive_payments(payment_file(), at=AT)
    sandbox.receive_credit(
        IncomingTransfer(Decimal("20500.00"), "CNY", "Agent", "6217", remittance="LN-2026-000001"),
        at=AT,
    )
    sandbox.receive_credit(
        IncomingTransfer(Decimal("999.99"), "CNY", "Someone", "6218", remittance="who knows"),
        at=AT,
    )
    sandbox.next_cycle(at=AT)
    (file,) = sandbox.end_of_day(at=AT)
    assert file.message_type == "camt.053.001.08"
    (statement,) = parse_camt053(file.content, engine=Engine.XMLSCHEMA).reports
    assert statement.opening_booked.amount == OPENING
    closing = OPENING - Decimal("80000.00") - Decimal("0.01") + Decimal("20500.00")
    closing += Decimal("999.99") + Decimal("0.01")
    assert statement.closing_booked.amount == closing == sandbox.balance
    assert [(e.signed_amount, e.reversal) for e in statement.entries] == [
        (Decimal("-80000.00"), False),
        (Decimal("-0.01"), False),
        (Decimal("20500.00"), False),
        (Decimal("999.99"), False),
        (Decimal("0.01"), True),
    ]
    references = [e.account_servicer_reference for e in statement.entries]
    assert len(set(references)) == len(references)


def test_the_next_day_opens_with_the_closing_balance() -> None:
    sandbox = bank()
    sandbox.receive_payments(payment_file(), at=AT)
    (first,) = parse_camt053(sandbox.end_of_day(at=AT)[0].content).reports
    (second,) = parse_camt053(sandbox.end_of_day(at=AT)[0].content).reports
    assert second.opening_booked.amount == first.closing_booked.amount == OPENING - GOLDEN_TOTAL
    assert second.closing_booked.amount == second.opening_booked.amount
    assert second.entries == ()
    assert second.opening_booked.date == DAY + dt.timedelta(days=1)
    assert (first.sequence_number, second.sequence_number) == (1, 2)


def test_a_hostile_payment_file_is_refused_and_nothing_is_booked() -> None:
    sandbox = bank()
    broken = payment_file().replace(b"<NbOfTxs>3</NbOfTxs>", b"<NbOfTxs>2</NbOfTxs>")
    with pytest.raises(BankFileRejected) as caught:
        sandbox.receive_payments(broken, at=AT)
    assert caught.value.reason_code is RejectReason.COUNT_MISMATCH
    assert sandbox.balance == OPENING
    assert sandbox.receive_payments(payment_file(), at=AT)  # and the good file is still new
