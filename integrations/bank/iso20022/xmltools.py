"""Small lxml helpers shared by the builders and readers: namespaced elements, amounts as
two-place decimal strings, dates, and the account and agent identifications every message uses.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from lxml import etree
from stdnum import iban

from .errors import BankFileRejected, RejectReason
from .safe import namespace_of

CENT = Decimal("0.01")
# BICFIDec2014Identifier, as the XSDs define it.
_BIC = re.compile(r"[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?")
# A China National Advanced Payment System bank code: 12 digits.
_CNAPS = re.compile(r"[0-9]{12}")
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
NOT_PROVIDED = "NOTPROVIDED"  # the ISO placeholder for an absent end-to-end id


def amount_text(amount: Decimal) -> str:
    """``Decimal("12.5")`` -> ``"12.50"``; callers have checked it has at most two places."""
    return str(amount.quantize(CENT))


def datetime_text(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="seconds")


def is_iban(account: str) -> bool:
    return account == iban.compact(account) and iban.is_valid(account)


def is_bic(agent: str) -> bool:
    return bool(_BIC.fullmatch(agent))


class Writer:
    """Builds one message's tree in its namespace: ``w.sub(parent, "GrpHdr")``."""

    def __init__(self, message_type: str, container: str) -> None:
        self.ns = namespace_of(message_type)
        self.document = etree.Element(f"{{{self.ns}}}Document", nsmap={None: self.ns})
        self.container = self.sub(self.document, container)

    def sub(self, parent: etree._Element, path: str, text: str | None = None) -> etree._Element:
        """Append the chain of children ``path`` ("Amt/InstdAmt") and set the last one's text."""
        element = parent
        for tag in path.split("/"):
            element = etree.SubElement(element, f"{{{self.ns}}}{tag}")
        if text is not None:
            element.text = text
        return element

    def amount(self, parent: etree._Element, path: str, amount: Decimal, currency: str) -> None:
        self.sub(parent, path, amount_text(amount)).set("Ccy", currency)

    def account(self, parent: etree._Element, path: str, account: str) -> etree._Element:
        """A cash account (``path``/Id/IBAN, or ``path``/Id/Othr/Id); returns ``path``'s element."""
        element = self.sub(parent, path)
        if is_iban(account):
            self.sub(element, "Id/IBAN", account)
        else:
            self.sub(element, "Id/Othr/Id", account)
        return element

    def agent(self, parent: etree._Element, path: str, agent: str) -> None:
        """A bank: its BIC; a CNAPS code as a clearing-system member id; anything else as
        ``Othr/Id``."""
        if is_bic(agent):
            self.sub(parent, f"{path}/FinInstnId/BICFI", agent)
        elif _CNAPS.fullmatch(agent):
            member = self.sub(parent, f"{path}/FinInstnId/ClrSysMmbId")
            self.sub(member, "ClrSysId/Cd", "CNAPS")
            self.sub(member, "MmbId", agent)
        else:
            self.sub(parent, f"{path}/FinInstnId/Othr/Id", agent)

    def to_bytes(self) -> bytes:
        # The declaration in its usual double-quoted form (lxml's own has single quotes).
        body = etree.tostring(self.document, encoding="UTF-8", pretty_print=True)
        return XML_DECLARATION + body


@lru_cache(maxsize=1024)
def _clark(ns: str, path: str) -> str:
    return "/".join(f"{{{ns}}}{tag}" for tag in path.split("/"))


class Reader:
    """Finds elements of one message's tree by local paths ("GrpHdr/MsgId")."""

    def __init__(self, message_type: str) -> None:
        self.ns = namespace_of(message_type)

    def find(self, element: etree._Element, path: str) -> etree._Element | None:
        return element.find(_clark(self.ns, path))

    def findall(self, element: etree._Element, path: str) -> list[etree._Element]:
        return element.findall(_clark(self.ns, path))

    def fields(self, element: etree._Element, only: frozenset[str] | None = None) -> Fields:
        """``element``'s descendants by path, under its direct children named in ``only`` (all
        when None): what a reader uses, not the repeated blocks read one by one (a statement's
        entries) nor the parts of a bank's file we do not read."""
        return Fields(element, len(self.ns) + 2, only)


def _index(
    element: etree._Element,
    prefix: str,
    by_path: dict[str, etree._Element],
    cut: int,
    only: frozenset[str] | None,
) -> None:
    for child in element:
        tag = child.tag
        if not isinstance(tag, str):  # a comment
            continue
        name = tag[cut:]
        if only is not None and name not in only:
            continue
        path = prefix + name
        by_path.setdefault(path, child)
        if len(child):
            _index(child, path + "/", by_path, cut, None)


class Fields:
    """One element's descendants by local path ("Refs/EndToEndId"), the first of each.

    Indexed in one walk: a statement has hundreds of thousands of entries, and a path search
    per field (lxml's ``findtext``) costs several times the walk.
    """

    __slots__ = ("_by_path",)

    def __init__(self, element: etree._Element, cut: int, only: frozenset[str] | None) -> None:
        self._by_path: dict[str, etree._Element] = {}
        _index(element, "", self._by_path, cut, only)

    def element(self, path: str) -> etree._Element | None:
        return self._by_path.get(path)

    def text(self, path: str) -> str:
        found = self._by_path.get(path)
        return "" if found is None else (found.text or "").strip()

    def texts(self, path: str) -> list[str]:
        """Every ``path`` under the first of its parent (the lines of ``RmtInf/Ustrd``)."""
        first = self._by_path.get(path)
        if first is None:
            return []
        return [(e.text or "").strip() for e in first.getparent() if e.tag == first.tag]

    def money(self, path: str) -> tuple[Decimal, str]:
        """An amount element's value (two places, never rounded) and its ``Ccy``."""
        found = self._by_path.get(path)
        if found is None:
            raise BankFileRejected(RejectReason.SCHEMA_INVALID, f"{path} is missing")
        return decimal_value(found.text or "", path), found.get("Ccy", "")

    def account(self, path: str) -> str:
        return self.text(f"{path}/Id/IBAN") or self.text(f"{path}/Id/Othr/Id")

    def agent(self, path: str) -> str:
        return (
            self.text(f"{path}/FinInstnId/BICFI")
            or self.text(f"{path}/FinInstnId/Othr/Id")
            or self.text(f"{path}/FinInstnId/ClrSysMmbId/MmbId")
        )

    def date_choice(self, path: str) -> dt.date | None:
        """A ``DateAndDateTime2Choice``: its ``Dt``, or the date of its ``DtTm``."""
        day = self.text(f"{path}/Dt")
        if day:
            return date_value(day, path)
        moment = self.text(f"{path}/DtTm")
        return datetime_value(moment, path).date() if moment else None


def decimal_value(text: str, where: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise BankFileRejected(RejectReason.SCHEMA_INVALID, f"{where}: {text!r}") from None
    rounded = value.quantize(CENT)
    if rounded != value:
        raise BankFileRejected(
            RejectReason.INCONSISTENT, f"{where}: {text} has more than two decimal places"
        )
    return rounded


def date_value(text: str, where: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise BankFileRejected(RejectReason.SCHEMA_INVALID, f"{where}: date {text!r}") from None


def datetime_value(text: str, where: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise BankFileRejected(RejectReason.SCHEMA_INVALID, f"{where}: time {text!r}") from None
