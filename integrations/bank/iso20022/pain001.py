"""pain.001.001.09 (customer credit transfer initiation): built for the bank, read by the sandbox.

One file per message id: a group header (``MsgId``, ``CreDtTm``, ``NbOfTxs``, ``CtrlSum``, the
initiating party), then one payment-information block (``PmtInf``) per debtor account and
requested execution date, in the order the instructions first name them, each with its own
``NbOfTxs`` and ``CtrlSum``, then one ``CdtTrfTxInf`` per instruction in the order given: the
end-to-end id, the instructed amount with its currency, the creditor's agent, name and account,
and the remittance (the loan reference) as one unstructured line. The creation time is passed
in, so the same instructions always give the same bytes (the golden test relies on it). Every
built file is validated against the XSD before its bytes are returned.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from lxml import etree

from .errors import BankFileRejected, RejectReason
from .model import (
    MAX_ID,
    MAX_NAME,
    PAIN_001,
    BankFile,
    PaymentBlock,
    PaymentInitiation,
    PaymentInstruction,
    check_text,
    require,
)
from .safe import DEFAULT_MAX_BYTES, read_document
from .schemas import Engine, engine_for, validate
from .xmltools import Fields, Reader, Writer, amount_text, datetime_text, datetime_value

_Block = tuple[str, dt.date]


def _blocks(payments: Sequence[PaymentInstruction]) -> dict[_Block, list[PaymentInstruction]]:
    blocks: dict[_Block, list[PaymentInstruction]] = {}
    seen: set[str] = set()
    for payment in payments:
        require(payment.end_to_end_id not in seen, f"{payment.end_to_end_id} is there twice")
        seen.add(payment.end_to_end_id)
        block = blocks.setdefault((payment.debtor_account, payment.requested_execution_date), [])
        if block:
            first = block[0]
            require(
                (first.debtor_name, first.debtor_agent)
                == (payment.debtor_name, payment.debtor_agent),
                f"account {payment.debtor_account} has two debtor names or agents",
            )
        block.append(payment)
    return blocks


def payment_information_id(message_id: str, number: int) -> str:
    """Unique within the message, and within 35 characters whatever the message id."""
    return f"{message_id[: MAX_ID - 6]}-{number:05d}"


def build_pain001(
    *,
    message_id: str,
    created_at: dt.datetime,
    initiating_party: str,
    payments: Sequence[PaymentInstruction],
    batch_booking: bool = False,
    engine: Engine = Engine.XMLSCHEMA,
) -> BankFile:
    """The pain.001 file for ``payments``, validated against the XSD.

    ``batch_booking`` asks the bank to book each block as one debit (``BtchBookg``); off, each
    payment is its own entry on the statement, which reconciliation prefers.
    """
    check_text(message_id, "message_id", MAX_ID)
    check_text(initiating_party, "initiating_party", MAX_NAME)
    require(bool(payments), "a pain.001 needs at least one payment")
    blocks = _blocks(payments)
    w = Writer(PAIN_001, "CstmrCdtTrfInitn")
    header = w.sub(w.container, "GrpHdr")
    w.sub(header, "MsgId", message_id)
    w.sub(header, "CreDtTm", datetime_text(created_at))
    w.sub(header, "NbOfTxs", str(len(payments)))
    w.sub(header, "CtrlSum", amount_text(sum((p.amount for p in payments), Decimal(0))))
    w.sub(header, "InitgPty/Nm", initiating_party)
    for number, ((account, day), block) in enumerate(blocks.items(), start=1):
        info = w.sub(w.container, "PmtInf")
        w.sub(info, "PmtInfId", payment_information_id(message_id, number))
        w.sub(info, "PmtMtd", "TRF")
        w.sub(info, "BtchBookg", "true" if batch_booking else "false")
        w.sub(info, "NbOfTxs", str(len(block)))
        w.sub(info, "CtrlSum", amount_text(sum((p.amount for p in block), Decimal(0))))
        w.sub(info, "ReqdExctnDt/Dt", day.isoformat())
        w.sub(info, "Dbtr/Nm", block[0].debtor_name)
        w.account(info, "DbtrAcct", account)
        w.agent(info, "DbtrAgt", block[0].debtor_agent)
        for payment in block:
            _transaction(w, info, payment)
    validate(w.document, PAIN_001, engine=engine)
    return BankFile(PAIN_001, message_id, w.to_bytes())


def _transaction(w: Writer, info: etree._Element, payment: PaymentInstruction) -> None:
    tx = w.sub(info, "CdtTrfTxInf")
    w.sub(tx, "PmtId/EndToEndId", payment.end_to_end_id)
    w.amount(tx, "Amt/InstdAmt", payment.amount, payment.currency)
    if payment.creditor_agent:
        w.agent(tx, "CdtrAgt", payment.creditor_agent)
    w.sub(tx, "Cdtr/Nm", payment.creditor_name)
    w.account(tx, "CdtrAcct", payment.creditor_account)
    if payment.remittance:
        w.sub(tx, "RmtInf/Ustrd", payment.remittance)


def parse_pain001(
    content: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, engine: Engine | None = None
) -> PaymentInitiation:
    """Read a pain.001 (the file sandbox's inbound side), or ``BankFileRejected``.

    Beyond the XSD: only credit transfers with an instructed amount, end-to-end ids unique in the
    file, and the header's and each block's ``NbOfTxs`` and ``CtrlSum`` equal to the content.
    """
    root = read_document(content, message_type=PAIN_001, max_bytes=max_bytes)
    validate(root, PAIN_001, engine=engine or engine_for(len(content)))
    r = Reader(PAIN_001)
    initiation = r.find(root, "CstmrCdtTrfInitn")
    assert initiation is not None  # the XSD requires it
    payments: list[PaymentInstruction] = []
    blocks: list[PaymentBlock] = []
    for info in r.findall(initiation, "PmtInf"):
        f = r.fields(info, only=_BLOCK_FIELDS)
        if f.text("PmtMtd") != "TRF":
            raise BankFileRejected(RejectReason.INCONSISTENT, "only credit transfers (TRF)")
        block = _read_block(r, info, f)
        _check_totals(f, block, f"PmtInf {f.text('PmtInfId')}")
        payments.extend(block)
        batch_booking = f.text("BtchBookg") in ("true", "1")
        blocks.append(PaymentBlock(f.text("PmtInfId"), batch_booking, tuple(block)))
    header = r.fields(initiation, only=frozenset(("GrpHdr",)))
    _check_totals(header, payments, "GrpHdr", prefix="GrpHdr/")
    seen: set[str] = set()
    for payment in payments:
        if payment.end_to_end_id in seen:
            raise BankFileRejected(
                RejectReason.INCONSISTENT, f"EndToEndId {payment.end_to_end_id} is twice"
            )
        seen.add(payment.end_to_end_id)
    return PaymentInitiation(
        message_id=header.text("GrpHdr/MsgId"),
        created_at=datetime_value(header.text("GrpHdr/CreDtTm"), "GrpHdr/CreDtTm"),
        initiating_party=header.text("GrpHdr/InitgPty/Nm"),
        blocks=tuple(blocks),
    )


_BLOCK_FIELDS = frozenset(
    (
        "PmtInfId",
        "PmtMtd",
        "BtchBookg",
        "NbOfTxs",
        "CtrlSum",
        "ReqdExctnDt",
        "Dbtr",
        "DbtrAcct",
        "DbtrAgt",
    )
)


def _read_block(r: Reader, info: etree._Element, f: Fields) -> list[PaymentInstruction]:
    day = f.date_choice("ReqdExctnDt")
    if day is None:
        raise BankFileRejected(RejectReason.SCHEMA_INVALID, "PmtInf/ReqdExctnDt is missing")
    debtor = {
        "debtor_name": f.text("Dbtr/Nm"),
        "debtor_account": f.account("DbtrAcct"),
        "debtor_agent": f.agent("DbtrAgt"),
        "requested_execution_date": day,
    }
    return [_read_transaction(r.fields(tx), debtor) for tx in r.findall(info, "CdtTrfTxInf")]


def _read_transaction(f: Fields, debtor: dict[str, Any]) -> PaymentInstruction:
    if f.element("Amt/InstdAmt") is None:
        raise BankFileRejected(RejectReason.INCONSISTENT, "only instructed amounts (InstdAmt)")
    amount, currency = f.money("Amt/InstdAmt")
    try:
        return PaymentInstruction(
            end_to_end_id=f.text("PmtId/EndToEndId"),
            amount=amount,
            currency=currency,
            creditor_name=f.text("Cdtr/Nm"),
            creditor_account=f.account("CdtrAcct"),
            creditor_agent=f.agent("CdtrAgt"),
            remittance=" ".join(f.texts("RmtInf/Ustrd")),
            **debtor,
        )
    except ValueError as exc:
        where = f.text("PmtId/EndToEndId")
        raise BankFileRejected(RejectReason.INCONSISTENT, f"{where}: {exc}") from None


def _check_totals(
    f: Fields, payments: list[PaymentInstruction], where: str, prefix: str = ""
) -> None:
    count = f.text(f"{prefix}NbOfTxs")
    if count and int(count) != len(payments):
        raise BankFileRejected(
            RejectReason.COUNT_MISMATCH, f"{where} NbOfTxs {count}, but {len(payments)} payments"
        )
    declared = f.text(f"{prefix}CtrlSum")
    total = sum((p.amount for p in payments), Decimal(0))
    if declared and Decimal(declared) != total:
        raise BankFileRejected(
            RejectReason.CONTROL_SUM_MISMATCH,
            f"{where} CtrlSum {declared}, but the amounts add up to {amount_text(total)}",
        )
