"""pain.001.001.09: the golden file, its key values read independently, the XSD, and the reader."""

from __future__ import annotations

import dataclasses
import hashlib
from decimal import Decimal
from pathlib import Path

import pytest
import xmlschema
from lxml import etree

from integrations.bank.iso20022 import (
    Engine,
    build_pain001,
    parse_pain001,
)
from integrations.bank.iso20022.schemas import xsd_path

from .factories import CREATED_AT, DAY, LENDER_NAME, golden_payments, many_payments, payment

GOLDEN = Path(__file__).parent / "golden" / "pain.001.001.09.xml"
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"}


def golden_file() -> bytes:
    return build_pain001(
        message_id="SCF-20260302-0001",
        created_at=CREATED_AT,
        initiating_party=LENDER_NAME,
        payments=golden_payments(),
    ).content


def test_built_file_equals_the_committed_golden_file() -> None:
    assert golden_file() == GOLDEN.read_bytes()


def test_golden_file_carries_the_header_totals_and_every_payment() -> None:
    root = etree.fromstring(GOLDEN.read_bytes())
    header = root.find("p:CstmrCdtTrfInitn/p:GrpHdr", NS)
    assert header.findtext("p:MsgId", namespaces=NS) == "SCF-20260302-0001"
    assert header.findtext("p:CreDtTm", namespaces=NS) == "2026-03-02T09:30:00+08:00"
    assert header.findtext("p:NbOfTxs", namespaces=NS) == "3"
    assert header.findtext("p:CtrlSum", namespaces=NS) == "81234.51"  # 80000 + 1234.50 + 0.01
    transactions = root.findall(".//p:CdtTrfTxInf", NS)
    assert [
        (
            t.findtext("p:PmtId/p:EndToEndId", namespaces=NS),
            t.findtext("p:Amt/p:InstdAmt", namespaces=NS),
            t.find("p:Amt/p:InstdAmt", NS).get("Ccy"),
            t.findtext("p:RmtInf/p:Ustrd", namespaces=NS),
        )
        for t in transactions
    ] == [
        ("DSB-000001", "80000.00", "CNY", "LN-2026-000001"),
        ("DSB-000002", "1234.50", "CNY", "LN-2026-000002"),
        ("DSB-000003", "0.01", "CNY", "LN-2026-000003"),
    ]


def test_golden_file_has_one_block_per_debtor_account_and_date_with_its_own_totals() -> None:
    root = etree.fromstring(GOLDEN.read_bytes())
    blocks = root.findall(".//p:PmtInf", NS)
    assert [
        (
            b.findtext("p:PmtInfId", namespaces=NS),
            b.findtext("p:ReqdExctnDt/p:Dt", namespaces=NS),
            b.findtext("p:DbtrAcct/p:Id/p:Othr/p:Id", namespaces=NS),
            b.findtext("p:NbOfTxs", namespaces=NS),
            b.findtext("p:CtrlSum", namespaces=NS),
        )
        for b in blocks
    ] == [
        ("SCF-20260302-0001-00001", "2026-03-02", "6222020200001234567", "2", "81234.50"),
        ("SCF-20260302-0001-00002", "2026-03-03", "6222020200001234567", "1", "0.01"),
    ]


def test_golden_file_writes_each_kind_of_account_and_agent_as_iso_20022_has_it() -> None:
    root = etree.fromstring(GOLDEN.read_bytes())
    first, second, third = root.findall(".//p:CdtTrfTxInf", NS)
    member = first.find("p:CdtrAgt/p:FinInstnId/p:ClrSysMmbId", NS)
    assert member.findtext("p:ClrSysId/p:Cd", namespaces=NS) == "CNAPS"
    assert member.findtext("p:MmbId", namespaces=NS) == "102100099996"
    assert first.findtext("p:CdtrAcct/p:Id/p:Othr/p:Id", namespaces=NS) == "6228480010000000001"
    assert second.findtext("p:CdtrAgt/p:FinInstnId/p:BICFI", namespaces=NS) == "COBADEFFXXX"
    assert second.findtext("p:CdtrAcct/p:Id/p:IBAN", namespaces=NS) == "DE89370400440532013000"
    assert third.find("p:CdtrAgt", NS) is None  # no creditor agent given: none written


def test_golden_file_is_valid_against_the_packaged_xsd_by_both_validators() -> None:
    path = xsd_path("pain.001.001.09")
    assert path.parts[-3:] == ("sepaxml", "schemas", "pain.001.001.09.xsd")
    xmlschema.XMLSchema10(str(path)).validate(str(GOLDEN))
    assert etree.XMLSchema(etree.parse(str(path))).validate(etree.parse(str(GOLDEN)))


def test_digest_is_the_sha256_of_the_bytes_returned() -> None:
    built = build_pain001(
        message_id="M-1", created_at=CREATED_AT, initiating_party="X", payments=[payment()]
    )
    assert built.sha256 == hashlib.sha256(built.content).hexdigest()
    assert built.message_type == "pain.001.001.09"
    assert built.filename == "pain.001.001.09.M-1.xml"


def test_reader_gives_back_exactly_the_instructions_built() -> None:
    initiation = parse_pain001(GOLDEN.read_bytes())
    assert initiation.message_id == "SCF-20260302-0001"
    assert initiation.created_at == CREATED_AT
    assert initiation.initiating_party == LENDER_NAME
    assert initiation.payments == tuple(golden_payments())
    assert initiation.control_sum == Decimal("81234.51")
    assert [b.payment_information_id for b in initiation.blocks] == [
        "SCF-20260302-0001-00001",
        "SCF-20260302-0001-00002",
    ]


def test_batch_booking_is_asked_for_in_every_block_and_read_back() -> None:
    built = build_pain001(
        message_id="M-2",
        created_at=CREATED_AT,
        initiating_party="X",
        payments=golden_payments(),
        batch_booking=True,
    )
    assert all(block.batch_booking for block in parse_pain001(built.content).blocks)


def test_lxml_validation_gives_the_same_file() -> None:
    kwargs = {"message_id": "M-3", "created_at": CREATED_AT, "initiating_party": "X"}
    payments = many_payments(50)
    by_xmlschema = build_pain001(payments=payments, engine=Engine.XMLSCHEMA, **kwargs)
    by_lxml = build_pain001(payments=payments, engine=Engine.LXML, **kwargs)
    assert by_xmlschema.content == by_lxml.content


def test_payments_of_two_debtor_accounts_go_in_two_blocks() -> None:
    other = payment(end_to_end_id="DSB-9", debtor_account="6222020200007654321")
    built = build_pain001(
        message_id="M-4", created_at=CREATED_AT, initiating_party="X", payments=[payment(), other]
    )
    blocks = parse_pain001(built.content).blocks
    assert [b.payments[0].debtor_account for b in blocks] == [
        "6222020200001234567",
        "6222020200007654321",
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"amount": Decimal("10.001")}, "more than two places"),
        ({"amount": Decimal("0")}, "positive"),
        ({"amount": 10.5}, "must be a Decimal"),
        ({"end_to_end_id": "E" * 36}, "at most 35"),
        ({"currency": "cny"}, "ISO 4217"),
        ({"remittance": "R" * 141}, "at most 140"),
        ({"creditor_name": " "}, "creditor_name is required"),
    ],
)
def test_an_instruction_that_cannot_be_written_as_is_is_refused(
    change: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(payment(), **change)


def test_the_same_end_to_end_id_twice_in_one_file_is_refused() -> None:
    with pytest.raises(ValueError, match="DSB-000001 is there twice"):
        build_pain001(
            message_id="M-5",
            created_at=CREATED_AT,
            initiating_party="X",
            payments=[payment(), payment(amount=Decimal("1.00"))],
        )


def test_one_debtor_account_with_two_names_is_refused() -> None:
    with pytest.raises(ValueError, match="two debtor names or agents"):
        build_pain001(
            message_id="M-6",
            created_at=CREATED_AT,
            initiating_party="X",
            payments=[payment(), payment(end_to_end_id="DSB-2", debtor_name="Someone else")],
        )


def test_a_long_message_id_still_gives_block_ids_of_at_most_35_characters() -> None:
    built = build_pain001(
        message_id="M" * 35,
        created_at=CREATED_AT,
        initiating_party="X",
        payments=[
            payment(),
            payment(end_to_end_id="D2", requested_execution_date=DAY.replace(day=9)),
        ],
    )
    ids = [b.payment_information_id for b in parse_pain001(built.content).blocks]
    assert len(set(ids)) == 2
    assert all(len(i) <= 35 for i in ids)
