"""camt.053 and camt.054: a bank's files read to the expected dataclasses, the checks beyond the
XSD, and the builder's files read back to what it was given."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from integrations.bank.iso20022 import (
    AccountReport,
    Balance,
    BankFileRejected,
    CamtMessage,
    CreditDebit,
    Engine,
    Entry,
    RejectReason,
    TransactionDetail,
    build_camt,
    parse_camt053,
    parse_camt054,
)

from . import samples
from .factories import CST, DAY, LENDER_ACCOUNT


def statement() -> AccountReport:
    (report,) = parse_camt053(samples.CAMT_053).reports
    return report


def test_statement_header_account_and_balances() -> None:
    message = parse_camt053(samples.CAMT_053)
    assert message.message_type == "camt.053.001.08"
    assert message.message_id == "HBSC-STMT-20260302"
    assert message.created_at == dt.datetime(2026, 3, 2, 23, 10, tzinfo=CST)
    report = statement()
    assert (report.report_id, report.account, report.currency, report.sequence_number) == (
        "STMT-20260302-001",
        LENDER_ACCOUNT,
        "CNY",
        42,
    )
    assert report.opening_booked == Balance(
        "OPBD", Decimal("500000.00"), "CNY", CreditDebit.CREDIT, DAY
    )
    assert report.closing_booked == Balance(
        "CLBD", Decimal("443265.50"), "CNY", CreditDebit.CREDIT, DAY
    )
    assert [b.type_code for b in report.balances] == ["OPBD", "CLBD", "CLAV"]


def test_a_batched_entry_carries_each_payment_as_a_transaction() -> None:
    batch = statement().entries[0]
    assert (batch.account_servicer_reference, batch.amount, batch.credit_debit) == (
        "HB20260302000101",
        Decimal("81234.50"),
        CreditDebit.DEBIT,
    )
    assert batch.entry_reference == "1"
    assert batch.bank_transaction_code == "PMNT/ICDT/DMCT"
    assert batch.details == (
        TransactionDetail(
            end_to_end_id="DSB-000001",
            amount=Decimal("80000.00"),
            currency="CNY",
            remittance="LN-2026-000001",
            creditor_name="华东机械制造有限公司",
            creditor_account="6228480010000000001",
        ),
        TransactionDetail(
            end_to_end_id="DSB-000002",
            amount=Decimal("1234.50"),
            currency="CNY",
            remittance="LN-2026-000002",
            creditor_name="Rhein Präzision GmbH",
            creditor_account="DE89370400440532013000",
        ),
    )
    assert sum(d.amount or 0 for d in batch.details) == batch.amount


def test_a_repayment_reads_its_loan_reference_and_payer_and_no_end_to_end_id() -> None:
    repayment = statement().entries[1]
    assert repayment.signed_amount == Decimal("20500.00")
    assert repayment.booked
    (detail,) = repayment.details
    assert detail.end_to_end_id == ""  # NOTPROVIDED
    assert detail.remittance == "LN-2026-000001 repayment"  # both Ustrd lines
    assert (detail.debtor_name, detail.debtor_account) == (
        "苏州恒达经销有限公司",
        "6217000010001112223",
    )


def test_a_credit_by_creditor_reference_and_a_value_date_given_as_a_time() -> None:
    credit = statement().entries[2]
    assert credit.details[0].creditor_reference == "RF18539007547034"
    assert credit.details[0].amount is None
    assert credit.value_date == DAY


def test_a_returned_payment_is_a_reversal_with_its_return_reason() -> None:
    reversal = statement().entries[3]
    assert reversal.reversal is True
    assert reversal.credit_debit is CreditDebit.CREDIT
    assert reversal.bank_transaction_code == "PMNT/ICDT/RRTN"
    assert reversal.details[0].end_to_end_id == "DSB-000003"
    assert reversal.details[0].return_reason == "AC04"


def test_a_credit_with_an_unknown_reference_is_read_like_any_other() -> None:
    unknown = statement().entries[4]
    assert unknown.account_servicer_reference == "HB20260302000105"
    assert unknown.bank_transaction_code == "CN-TRF-IN"  # proprietary code
    assert unknown.details[0].remittance == "payment for invoice 7781"
    assert unknown.details[0].debtor_account == ""


def test_a_pending_entry_is_read_but_not_booked() -> None:
    pending = statement().entries[5]
    assert (pending.status, pending.booked, pending.booking_date) == ("PDNG", False, None)
    assert pending.account_servicer_reference == ""


def test_notification_reads_debits_and_credits_with_the_same_shape() -> None:
    message = parse_camt054(samples.CAMT_054)
    assert message.message_type == "camt.054.001.08"
    (report,) = message.reports
    assert report.balances == ()
    debit, credit = report.entries
    assert debit.details[0].end_to_end_id == "DSB-000004"
    assert debit.details[0].instruction_id == "INS-1"
    assert debit.signed_amount == Decimal("-80000.00")
    assert credit.details[0].remittance == "LN-2026-000004"
    assert credit.signed_amount == Decimal("15000.00")


def test_a_statement_whose_balances_do_not_add_up_is_rejected() -> None:
    broken = samples.CAMT_053.replace(
        b"443265.50</Amt>\n    <CdtDbtInd>CRDT</CdtDbtInd>",
        b"443265.51</Amt>\n    <CdtDbtInd>CRDT</CdtDbtInd>",
        1,
    )
    with pytest.raises(BankFileRejected) as caught:
        parse_camt053(broken)
    assert caught.value.reason_code is RejectReason.BALANCE_MISMATCH
    assert "opening 500000.00 + booked entries -56734.50 != closing 443265.51" in str(caught.value)


def test_a_statement_without_its_closing_balance_is_rejected() -> None:
    broken = samples.CAMT_053.replace(b"<Cd>CLBD</Cd>", b"<Cd>ITBD</Cd>")
    with pytest.raises(BankFileRejected) as caught:
        parse_camt053(broken)
    assert caught.value.reason_code is RejectReason.INCONSISTENT
    assert "closing (CLBD)" in caught.value.detail


@pytest.mark.parametrize(
    ("find", "replace", "reason", "detail"),
    [
        (
            b"<NbOfNtries>6</NbOfNtries>",
            b"<NbOfNtries>7</NbOfNtries>",
            "count_mismatch",
            "TtlNtries/NbOfNtries 7, but 6",
        ),
        (
            b"<Sum>24600.00</Sum>",
            b"<Sum>24600.01</Sum>",
            "control_sum_mismatch",
            "TtlCdtNtries/Sum 24600.01",
        ),
        (
            b"HB20260302000105",
            b"HB20260302000101",
            "inconsistent",
            "AcctSvcrRef HB20260302000101 is twice",
        ),
        (
            b"<AcctSvcrRef>HB20260302000103</AcctSvcrRef>",
            b"",
            "inconsistent",
            "a booked entry has no AcctSvcrRef",
        ),
        (
            b'<Amt Ccy="CNY">999.99</Amt><CdtDbtInd>CRDT',
            b'<Amt Ccy="CNY">999.995</Amt><CdtDbtInd>CRDT',
            "inconsistent",
            "more than two decimal places",
        ),
    ],
)
def test_a_statement_breaking_a_rule_beyond_the_xsd_is_rejected(
    find: bytes, replace: bytes, reason: str, detail: str
) -> None:
    assert find in samples.CAMT_053
    with pytest.raises(BankFileRejected) as caught:
        parse_camt053(samples.CAMT_053.replace(find, replace))
    assert caught.value.reason_code == reason
    assert detail in caught.value.detail


def built_statement() -> CamtMessage:
    at = dt.datetime(2026, 3, 2, 18, 0, tzinfo=CST)
    debit = Entry(
        account_servicer_reference="SBX-1",
        amount=Decimal("80000.00"),
        currency="CNY",
        credit_debit=CreditDebit.DEBIT,
        status="BOOK",
        booking_date=DAY,
        value_date=DAY,
        bank_transaction_code="PMNT/ICDT/DMCT",
        details=(
            TransactionDetail(end_to_end_id="DSB-1", amount=Decimal("50000.00"), currency="CNY"),
            TransactionDetail(end_to_end_id="DSB-2", amount=Decimal("30000.00"), currency="CNY"),
        ),
    )
    credit = Entry(
        account_servicer_reference="SBX-2",
        amount=Decimal("100.50"),
        currency="CNY",
        credit_debit=CreditDebit.CREDIT,
        status="BOOK",
        booking_date=DAY,
        value_date=DAY,
        bank_transaction_code="PMNT/ICDT/RRTN",
        reversal=True,
        entry_reference="R1",
        details=(
            TransactionDetail(end_to_end_id="DSB-0", return_reason="AC04", remittance="LN-0"),
        ),
    )
    report = AccountReport(
        report_id="S-1",
        account=LENDER_ACCOUNT,
        currency="CNY",
        created_at=at,
        sequence_number=7,
        balances=(
            Balance("OPBD", Decimal("100000.00"), "CNY", CreditDebit.CREDIT, DAY),
            Balance("CLBD", Decimal("20100.50"), "CNY", CreditDebit.CREDIT, DAY),
        ),
        entries=(debit, credit),
    )
    return CamtMessage("camt.053.001.08", "M-1", at, (report,))


@pytest.mark.parametrize(
    ("content", "parse"),
    [(samples.CAMT_053, parse_camt053), (samples.CAMT_054, parse_camt054)],
)
def test_a_banks_file_read_and_built_again_reads_the_same(content: bytes, parse: Any) -> None:
    message = parse(content)
    assert parse(build_camt(message).content) == message


def test_a_built_statement_reads_back_to_what_was_given() -> None:
    message = built_statement()
    built = build_camt(message)
    assert built.message_type == "camt.053.001.08"
    assert parse_camt053(built.content) == message


def test_validators_agree_on_a_built_statement() -> None:
    message = built_statement()
    assert build_camt(message, engine=Engine.LXML).content == build_camt(message).content
    content = build_camt(message).content
    assert parse_camt053(content, engine=Engine.LXML) == parse_camt053(
        content, engine=Engine.XMLSCHEMA
    )


def test_a_statement_the_builder_cannot_make_valid_is_refused_not_written() -> None:
    message = built_statement()
    bad = dataclasses.replace(message.reports[0], currency="yuan")
    with pytest.raises(BankFileRejected) as caught:
        build_camt(CamtMessage(message.message_type, "M-2", message.created_at, (bad,)))
    assert caught.value.reason_code is RejectReason.SCHEMA_INVALID
    assert "Ccy" in caught.value.detail
