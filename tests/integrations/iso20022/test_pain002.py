"""pain.002: a bank's status reports read to the expected dataclasses; the structural check
against pyiso20022's classes refuses what the XSD would refuse."""

from __future__ import annotations

import datetime as dt

import pytest

from integrations.bank.interface import TransferState
from integrations.bank.iso20022 import (
    BankFileRejected,
    BlockStatus,
    PaymentStatus,
    PaymentStatusReport,
    RejectReason,
    StatusReason,
    TransactionStatus,
    build_pain002,
    parse_pain002,
)

from . import samples
from .factories import CST

BLOCK_1 = "SCF-20260302-0001-00001"
BLOCK_2 = "SCF-20260302-0001-00002"


def test_partly_accepted_file_reads_to_each_transactions_status_and_reasons() -> None:
    report = parse_pain002(samples.PAIN_002)
    assert report == PaymentStatusReport(
        message_id="HBSC-STS-000123",
        created_at=dt.datetime(2026, 3, 2, 10, 5, tzinfo=CST),
        original_message_id="SCF-20260302-0001",
        original_message_type="pain.001.001.09",
        group_status=PaymentStatus.PART,
        blocks=(BlockStatus(BLOCK_2, PaymentStatus.ACSP),),
        transactions=(
            TransactionStatus("DSB-000001", PaymentStatus.ACSC, (), BLOCK_1, "S-1"),
            TransactionStatus(
                "DSB-000002",
                PaymentStatus.RJCT,
                (StatusReason("AC04", "Creditor account closed"),),
                BLOCK_1,
                "S-2",
            ),
            TransactionStatus("DSB-000003", PaymentStatus.PDNG, (), BLOCK_1),
            TransactionStatus(
                "DSB-000005",
                PaymentStatus.RJCT,
                (StatusReason("HB-LIMIT", "Daily limit reached"),),
                BLOCK_1,
            ),
            # No status of its own: its block's.
            TransactionStatus("DSB-000004", PaymentStatus.ACSP, (), BLOCK_2),
        ),
    )


def test_statuses_map_to_what_the_platform_concludes() -> None:
    states = {
        t.end_to_end_id: t.status.transfer_state
        for t in parse_pain002(samples.PAIN_002).transactions
    }
    assert states == {
        "DSB-000001": TransferState.SETTLED,
        "DSB-000002": TransferState.REJECTED,
        "DSB-000003": TransferState.ACCEPTED,
        "DSB-000005": TransferState.REJECTED,
        "DSB-000004": TransferState.ACCEPTED,
    }
    assert parse_pain002(samples.PAIN_002).transactions[1].reason_code == "AC04"


def test_a_whole_file_rejected_reads_as_a_group_status_with_its_reason() -> None:
    report = parse_pain002(samples.PAIN_002_FILE_REJECTED)
    assert report.group_status is PaymentStatus.RJCT
    assert report.group_reasons == (StatusReason("FF01"),)
    assert report.transactions == ()
    assert report.created_at == dt.datetime(2026, 3, 2, 10, 6, tzinfo=dt.UTC)


def test_a_built_report_reads_back_to_what_was_given() -> None:
    report = parse_pain002(samples.PAIN_002)
    rebuilt = build_pain002(report)
    assert rebuilt.message_type == "pain.002.001.10"
    assert parse_pain002(rebuilt.content) == report


@pytest.mark.parametrize(
    ("find", "replace", "detail"),
    [
        (
            b"<MsgId>HBSC-STS-000123</MsgId>",
            b"<MsgId>" + b"M" * 36 + b"</MsgId>",
            "GrpHdr/MsgId: longer than 35",
        ),
        (b"<GrpSts>PART</GrpSts>", b"<GrpSts>PARTIAL</GrpSts>", "GrpSts: longer than 4"),
        (
            b"<OrgnlNbOfTxs>5</OrgnlNbOfTxs>",
            b"<OrgnlNbOfTxs>five</OrgnlNbOfTxs>",
            "does not match [0-9]{1,15}",
        ),
        (
            b"<StsId>S-1</StsId><OrgnlEndToEndId>DSB-000001</OrgnlEndToEndId>",
            b"<OrgnlEndToEndId>DSB-000001</OrgnlEndToEndId><StsId>S-1</StsId>",
            "TxInfAndSts/StsId: out of order",
        ),
        (
            b"<Rsn><Cd>AC04</Cd></Rsn>",
            b"<Rsn><Cd>AC04</Cd><Prtry>X</Prtry></Rsn>",
            "Rsn: a choice needs exactly one",
        ),
        (
            b"<OrgnlMsgId>SCF-20260302-0001</OrgnlMsgId>",
            b"",
            "OrgnlGrpInfAndSts/OrgnlMsgId: missing",
        ),
        (
            b"<TxSts>PDNG</TxSts>",
            b"<TxSts>PDNG</TxSts><Surprise/>",
            "TxInfAndSts/Surprise: unexpected element",
        ),
        (
            b"<TxSts>PDNG</TxSts>",
            b"<TxSts>PDNG</TxSts>stray text",
            "text where only elements may be",
        ),
        (
            b'<InstdAmt Ccy="CNY">1234.50',
            b'<InstdAmt Ccy="CNY" Rate="1">1234.50',
            "unexpected attribute Rate",
        ),
        (
            b'<InstdAmt Ccy="CNY">1234.50',
            b'<InstdAmt Ccy="yuan">1234.50',
            "does not match [A-Z]{3,3}",
        ),
        (
            b"<CreDtTm>2026-03-02T10:05:00+08:00</CreDtTm>",
            b"<CreDtTm>yesterday</CreDtTm>",
            "not a valid",
        ),
        (
            b"<AccptncDtTm>2026-03-02T10:01:00+08:00",
            b"<AccptncDtTm>2026-13-02T10:01:00+08:00",
            "not a valid",
        ),
    ],
)
def test_a_report_that_breaks_the_schema_is_rejected_with_where(
    find: bytes, replace: bytes, detail: str
) -> None:
    assert find in samples.PAIN_002
    with pytest.raises(BankFileRejected) as caught:
        parse_pain002(samples.PAIN_002.replace(find, replace, 1))
    assert caught.value.reason_code is RejectReason.SCHEMA_INVALID
    assert detail in caught.value.detail


def test_an_unknown_status_code_is_rejected_rather_than_guessed() -> None:
    with pytest.raises(BankFileRejected) as caught:
        parse_pain002(samples.PAIN_002.replace(b"<TxSts>PDNG</TxSts>", b"<TxSts>ZZZZ</TxSts>"))
    assert caught.value.reason_code is RejectReason.UNKNOWN_STATUS
    assert "DSB-000003: status 'ZZZZ'" in caught.value.detail


def test_two_statuses_for_one_payment_in_one_report_are_rejected() -> None:
    twice = samples.PAIN_002.replace(b"DSB-000005", b"DSB-000001")
    with pytest.raises(BankFileRejected) as caught:
        parse_pain002(twice)
    assert caught.value.reason_code is RejectReason.INCONSISTENT


def test_a_report_on_another_kind_of_message_is_unexpected() -> None:
    other = samples.PAIN_002.replace(
        b"pain.001.001.09</OrgnlMsgNmId>", b"pain.008.001.08</OrgnlMsgNmId>"
    )
    with pytest.raises(BankFileRejected) as caught:
        parse_pain002(other)
    assert caught.value.reason_code is RejectReason.UNEXPECTED_MESSAGE


def test_a_transaction_with_no_status_anywhere_is_rejected() -> None:
    no_status = samples.PAIN_002.replace(b"<PmtInfSts>ACSP</PmtInfSts>", b"").replace(
        b"<GrpSts>PART</GrpSts>", b""
    )
    with pytest.raises(BankFileRejected) as caught:
        parse_pain002(no_status)
    assert caught.value.detail == "OrgnlEndToEndId DSB-000004 has no status"
