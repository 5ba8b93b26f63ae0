"""pain.002.001.10 (customer payment status report): read from the bank, built by the sandbox.

What we read: the report's ``MsgId`` and ``CreDtTm``; the original message's id and name
(``OrgnlMsgId``, ``OrgnlMsgNmId``, which must be a pain.001); the group status and its reasons;
each block's ``OrgnlPmtInfId`` and status; each transaction's ``OrgnlEndToEndId``, ``TxSts``
(ACSC, ACCP, ACSP, PDNG, RJCT...), ``StsId`` and ``StsRsnInf`` (reason code ``Rsn/Cd`` or
``Rsn/Prtry``, and ``AddtlInf``).

Validation. No installed package ships ``pain.002.001.10.xsd``, so the schema is
``pyiso20022``'s classes for the message (``pyiso20022.pain.pain_002_001_10``, generated from
ISO's XSD by xsdata, whose metadata carries the XSD's elements, order, cardinalities and facets):

1. ``classcheck.check_tree`` walks the tree against the classes: unknown, missing, repeated or
   out-of-order elements, text where only elements may be, a choice with two branches, lengths,
   patterns, digits and code lists. (``pyiso20022.tools.validation`` validates bound objects in a
   similar way, but importing it imports pandas, for its Excel export, which we do not install.)
2. xsdata's parser, in its strictest mode (unknown elements or attributes, and values that do
   not convert -- dates, decimals, codes -- are errors), binds the tree to those classes; we
   read our dataclasses from the bound objects.

Either failing is ``BankFileRejected(schema_invalid)``. Then: every status code must be one we
act on (``unknown_status`` otherwise), every transaction must name its end-to-end id, once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from lxml import etree
from pyiso20022.pain.pain_002_001_10 import pain_002_001_10 as schema
from xsdata.exceptions import ParserError
from xsdata.formats.dataclass.parsers import XmlParser
from xsdata.formats.dataclass.parsers.config import ParserConfig
from xsdata.formats.dataclass.parsers.handlers import LxmlEventHandler

from .classcheck import check_tree
from .errors import BankFileRejected, RejectReason
from .model import (
    MAX_ID,
    PAIN_002,
    BankFile,
    BlockStatus,
    PaymentStatus,
    PaymentStatusReport,
    StatusReason,
    TransactionStatus,
    check_text,
    require,
)
from .safe import DEFAULT_MAX_BYTES, namespace_of, read_document
from .xmltools import Writer, datetime_text

MAX_ADDITIONAL_INFO = 105  # Max105Text

_PARSER_CONFIG = ParserConfig(
    fail_on_unknown_properties=True,
    fail_on_unknown_attributes=True,
    fail_on_converter_warnings=True,
)


def _bind(root: etree._Element) -> Any:
    """The tree checked against pyiso20022's classes and bound to them (which empties it)."""
    check_tree(root, schema.Document, namespace_of(PAIN_002))
    try:
        return XmlParser(config=_PARSER_CONFIG, handler=LxmlEventHandler).parse(
            root, schema.Document
        )
    except (ParserError, TypeError, ValueError) as exc:
        raise BankFileRejected(RejectReason.SCHEMA_INVALID, f"{PAIN_002}: {exc}") from None


# Writing (the file sandbox) ---------------------------------------------------------------------


def build_pain002(report: PaymentStatusReport) -> BankFile:
    """The pain.002 file for ``report``, checked as a read would check it."""
    check_text(report.message_id, "message_id", MAX_ID)
    w = Writer(PAIN_002, "CstmrPmtStsRpt")
    header = w.sub(w.container, "GrpHdr")
    w.sub(header, "MsgId", report.message_id)
    w.sub(header, "CreDtTm", datetime_text(report.created_at))
    group = w.sub(w.container, "OrgnlGrpInfAndSts")
    w.sub(group, "OrgnlMsgId", report.original_message_id)
    w.sub(group, "OrgnlMsgNmId", report.original_message_type)
    if report.group_status is not None:
        w.sub(group, "GrpSts", report.group_status.value)
    _write_reasons(w, group, report.group_reasons)
    block_statuses = {b.payment_information_id: b for b in report.blocks}
    by_block: dict[str, list[TransactionStatus]] = {}
    for transaction in report.transactions:
        require(bool(transaction.payment_information_id), "a transaction needs its block's id")
        by_block.setdefault(transaction.payment_information_id, []).append(transaction)
    for block_id in block_statuses:
        by_block.setdefault(block_id, [])
    for block_id, transactions in by_block.items():
        block = w.sub(w.container, "OrgnlPmtInfAndSts")
        w.sub(block, "OrgnlPmtInfId", block_id)
        if block_id in block_statuses:
            w.sub(block, "PmtInfSts", block_statuses[block_id].status.value)
            _write_reasons(w, block, block_statuses[block_id].reasons)
        for transaction in transactions:
            element = w.sub(block, "TxInfAndSts")
            if transaction.status_id:
                w.sub(element, "StsId", transaction.status_id)
            w.sub(element, "OrgnlEndToEndId", transaction.end_to_end_id)
            w.sub(element, "TxSts", transaction.status.value)
            _write_reasons(w, element, transaction.reasons)
    content = w.to_bytes()
    # Checked as read back: binding with xsdata clears the tree it walks.
    _bind(read_document(content, message_type=PAIN_002))
    return BankFile(PAIN_002, report.message_id, content)


def _write_reasons(w: Writer, parent: etree._Element, reasons: Sequence[StatusReason]) -> None:
    for reason in reasons:
        element = w.sub(parent, "StsRsnInf")
        if reason.code:
            # An ISO code has four characters at most; a longer one is the bank's own.
            w.sub(element, "Rsn/Cd" if len(reason.code) <= 4 else "Rsn/Prtry", reason.code)
        if reason.additional_info:
            w.sub(element, "AddtlInf", reason.additional_info[:MAX_ADDITIONAL_INFO])


# Reading ----------------------------------------------------------------------------------------


def parse_pain002(content: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> PaymentStatusReport:
    """Read a payment status report, or ``BankFileRejected``."""
    root = read_document(content, message_type=PAIN_002, max_bytes=max_bytes)
    report = _bind(root).cstmr_pmt_sts_rpt
    original = report.orgnl_grp_inf_and_sts
    if not original.orgnl_msg_nm_id.startswith("pain.001."):
        raise BankFileRejected(
            RejectReason.UNEXPECTED_MESSAGE,
            f"a status report for {original.orgnl_msg_nm_id}, not for a pain.001",
        )
    group_status = _status(original.grp_sts, "GrpSts") if original.grp_sts else None
    blocks: list[BlockStatus] = []
    transactions: list[TransactionStatus] = []
    for block in report.orgnl_pmt_inf_and_sts:
        block_status = _status(block.pmt_inf_sts, "PmtInfSts") if block.pmt_inf_sts else None
        if block_status is not None:
            blocks.append(
                BlockStatus(block.orgnl_pmt_inf_id, block_status, _reasons(block.sts_rsn_inf))
            )
        for tx in block.tx_inf_and_sts:
            transactions.append(
                _transaction(tx, block.orgnl_pmt_inf_id, block_status or group_status)
            )
    _check_unique(transactions)
    return PaymentStatusReport(
        message_id=report.grp_hdr.msg_id,
        created_at=report.grp_hdr.cre_dt_tm.to_datetime(),
        original_message_id=original.orgnl_msg_id,
        original_message_type=original.orgnl_msg_nm_id,
        group_status=group_status,
        group_reasons=_reasons(original.sts_rsn_inf),
        blocks=tuple(blocks),
        transactions=tuple(transactions),
    )


def _transaction(tx: Any, block_id: str, inherited: PaymentStatus | None) -> TransactionStatus:
    if not tx.orgnl_end_to_end_id:
        raise BankFileRejected(RejectReason.INCONSISTENT, "a transaction has no OrgnlEndToEndId")
    where = f"OrgnlEndToEndId {tx.orgnl_end_to_end_id}"
    status = _status(tx.tx_sts, where) if tx.tx_sts else inherited
    if status is None:
        raise BankFileRejected(RejectReason.INCONSISTENT, f"{where} has no status")
    return TransactionStatus(
        end_to_end_id=tx.orgnl_end_to_end_id,
        status=status,
        reasons=_reasons(tx.sts_rsn_inf),
        payment_information_id=block_id,
        status_id=tx.sts_id or "",
    )


def _status(code: str, where: str) -> PaymentStatus:
    try:
        return PaymentStatus(code)
    except ValueError:
        raise BankFileRejected(
            RejectReason.UNKNOWN_STATUS, f"{where}: status {code!r} is not one we act on"
        ) from None


def _reasons(infos: Iterable[Any]) -> tuple[StatusReason, ...]:
    reasons = []
    for info in infos:
        code = (info.rsn.cd or info.rsn.prtry or "") if info.rsn else ""
        reasons.append(StatusReason(code, " ".join(info.addtl_inf)))
    return tuple(reasons)


def _check_unique(transactions: list[TransactionStatus]) -> None:
    seen: set[str] = set()
    for transaction in transactions:
        if transaction.end_to_end_id in seen:
            raise BankFileRejected(
                RejectReason.INCONSISTENT,
                f"OrgnlEndToEndId {transaction.end_to_end_id} has two statuses in one report",
            )
        seen.add(transaction.end_to_end_id)
