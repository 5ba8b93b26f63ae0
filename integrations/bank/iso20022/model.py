"""The message layer's frozen dataclasses: what goes into a file we build, what comes out of a
file we read. No XML crosses this edge; every amount is a ``Decimal`` with at most two places.

One shape serves both directions where both exist (a ``PaymentInstruction`` is built into a
pain.001 and read back from one; a ``CamtMessage`` is read from a camt.053/054 and built by the
file sandbox), so a round trip is an equality test.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from ..interface import MAX_END_TO_END_ID, MAX_REMITTANCE_INFO, TransferState

MAX_NAME = 140  # Max140Text (party names)
MAX_ACCOUNT = 34  # Max34Text (Othr/Id) and IBAN2007Identifier
MAX_ID = 35  # Max35Text (MsgId, PmtInfId, agent Othr/Id, AcctSvcrRef, references)

PAIN_001 = "pain.001.001.09"
PAIN_002 = "pain.002.001.10"
CAMT_053 = "camt.053.001.08"
CAMT_054 = "camt.054.001.08"

_CURRENCY = re.compile(r"[A-Z]{3}")


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def check_text(value: str, name: str, maximum: int, *, optional: bool = False) -> None:
    require(isinstance(value, str), f"{name} must be a string")
    require(len(value) <= maximum, f"{name} must be at most {maximum} characters")
    require(optional or bool(value.strip()), f"{name} is required")


def check_amount(amount: Decimal, name: str = "amount") -> None:
    """Decimal, finite, positive, two places at most. Never rounded."""
    require(isinstance(amount, Decimal), f"{name} must be a Decimal")
    require(amount.is_finite(), f"{name} must be finite")
    exponent = amount.as_tuple().exponent
    require(isinstance(exponent, int) and exponent >= -2, f"{name} has more than two places")
    require(amount > 0, f"{name} must be positive")


def check_currency(currency: str) -> None:
    require(bool(_CURRENCY.fullmatch(currency)), f"currency {currency!r} is not an ISO 4217 code")


class CreditDebit(StrEnum):
    CREDIT = "CRDT"
    DEBIT = "DBIT"


@dataclass(frozen=True, slots=True)
class BankFile:
    """A built file: the bytes as written, their SHA-256 (hex) and what they are."""

    message_type: str
    message_id: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def filename(self) -> str:
        return f"{self.message_type}.{self.message_id}.xml"


# pain.001 ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PaymentInstruction:
    """One credit transfer: the lender's account pays a creditor (a disbursement, a refund).

    An agent (a bank) is written as a BIC when it is one, as a CNAPS member id when it is a
    12-digit CNAPS code, else as ``Othr/Id``; an account as an IBAN when it is one, else
    ``Othr/Id``.
    """

    end_to_end_id: str  # the disbursement's, at most 35 characters
    amount: Decimal
    currency: str
    debtor_name: str
    debtor_account: str
    debtor_agent: str
    creditor_name: str
    creditor_account: str
    requested_execution_date: dt.date
    creditor_agent: str = ""
    remittance: str = ""  # unstructured remittance: the loan reference

    def __post_init__(self) -> None:
        check_text(self.end_to_end_id, "end_to_end_id", MAX_END_TO_END_ID)
        check_amount(self.amount)
        check_currency(self.currency)
        check_text(self.debtor_name, "debtor_name", MAX_NAME)
        check_text(self.debtor_account, "debtor_account", MAX_ACCOUNT)
        check_text(self.debtor_agent, "debtor_agent", MAX_ID)
        check_text(self.creditor_name, "creditor_name", MAX_NAME)
        check_text(self.creditor_account, "creditor_account", MAX_ACCOUNT)
        check_text(self.creditor_agent, "creditor_agent", MAX_ID, optional=True)
        check_text(self.remittance, "remittance", MAX_REMITTANCE_INFO, optional=True)
        require(isinstance(self.requested_execution_date, dt.date), "a date is required")


@dataclass(frozen=True, slots=True)
class PaymentBlock:
    """A pain.001 payment-information block: one debtor account and execution date."""

    payment_information_id: str
    batch_booking: bool  # BtchBookg: the bank books the block as one debit
    payments: tuple[PaymentInstruction, ...]


@dataclass(frozen=True, slots=True)
class PaymentInitiation:
    """A pain.001 as read back: its header and every block, in file order."""

    message_id: str
    created_at: dt.datetime
    initiating_party: str
    blocks: tuple[PaymentBlock, ...]

    @property
    def payments(self) -> tuple[PaymentInstruction, ...]:
        return tuple(p for block in self.blocks for p in block.payments)

    @property
    def control_sum(self) -> Decimal:
        return sum((p.amount for p in self.payments), Decimal("0.00"))


# pain.002 ---------------------------------------------------------------------------------------


class PaymentStatus(StrEnum):
    """ISO external payment (transaction/group) status codes this platform acts on."""

    RCVD = "RCVD"  # received
    PDNG = "PDNG"  # pending
    ACTC = "ACTC"  # accepted technical validation
    ACCP = "ACCP"  # accepted customer profile
    ACWC = "ACWC"  # accepted with change
    ACWP = "ACWP"  # accepted without posting
    ACSP = "ACSP"  # accepted, settlement in process
    ACSC = "ACSC"  # accepted, settlement completed (debtor's account debited)
    ACCC = "ACCC"  # accepted, settlement completed on the creditor's account
    PART = "PART"  # partially accepted (a group status)
    RJCT = "RJCT"  # rejected

    @property
    def transfer_state(self) -> TransferState:
        """What the platform concludes: settled, rejected, or accepted-and-waiting."""
        if self in (PaymentStatus.ACSC, PaymentStatus.ACCC):
            return TransferState.SETTLED
        if self is PaymentStatus.RJCT:
            return TransferState.REJECTED
        return TransferState.ACCEPTED


@dataclass(frozen=True, slots=True)
class StatusReason:
    code: str  # ISO external status reason code (AC04, AM04, ...); "" when only text
    additional_info: str = ""


@dataclass(frozen=True, slots=True)
class TransactionStatus:
    end_to_end_id: str  # OrgnlEndToEndId
    status: PaymentStatus
    reasons: tuple[StatusReason, ...] = ()
    payment_information_id: str = ""  # OrgnlPmtInfId of the block it was in
    status_id: str = ""  # the bank's StsId

    @property
    def reason_code(self) -> str:
        return self.reasons[0].code if self.reasons else ""


@dataclass(frozen=True, slots=True)
class BlockStatus:
    """The status of a whole payment-information block (``PmtInfSts``), when the bank gives one."""

    payment_information_id: str
    status: PaymentStatus
    reasons: tuple[StatusReason, ...] = ()


@dataclass(frozen=True, slots=True)
class PaymentStatusReport:
    """A pain.002: the bank's answer to one pain.001 (``original_message_id``).

    A status can be given for the whole file (``group_status``: a ``RJCT`` with no transactions
    rejects every payment in it), for a block, or per transaction; a transaction's own status
    wins, and a transaction reported without one has its block's or the group's.
    """

    message_id: str
    created_at: dt.datetime
    original_message_id: str
    original_message_type: str
    group_status: PaymentStatus | None
    group_reasons: tuple[StatusReason, ...] = ()
    blocks: tuple[BlockStatus, ...] = ()
    transactions: tuple[TransactionStatus, ...] = ()


# camt.053 / camt.054 ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Balance:
    type_code: str  # OPBD, CLBD, ITBD, CLAV...
    amount: Decimal
    currency: str
    credit_debit: CreditDebit
    date: dt.date

    @property
    def signed_amount(self) -> Decimal:
        return self.amount if self.credit_debit is CreditDebit.CREDIT else -self.amount


@dataclass(frozen=True, slots=True)
class TransactionDetail:
    """One transaction inside an entry (``NtryDtls/TxDtls``); a batched entry has several."""

    end_to_end_id: str = ""  # "" when absent or NOTPROVIDED
    amount: Decimal | None = None
    currency: str = ""
    remittance: str = ""  # the Ustrd lines, joined by a space
    creditor_reference: str = ""  # RmtInf/Strd/CdtrRefInf/Ref
    debtor_name: str = ""
    debtor_account: str = ""
    creditor_name: str = ""
    creditor_account: str = ""
    instruction_id: str = ""
    return_reason: str = ""  # RtrInf/Rsn/Cd on a returned payment


@dataclass(frozen=True, slots=True)
class Entry:
    """One booking on the account (``Ntry``)."""

    account_servicer_reference: str  # AcctSvcrRef: the bank's unique entry reference
    amount: Decimal
    currency: str
    credit_debit: CreditDebit
    status: str  # BOOK, PDNG, INFO
    booking_date: dt.date | None
    value_date: dt.date | None
    bank_transaction_code: str  # Domain/Family/SubFamily, e.g. PMNT/RCDT/DMCT
    reversal: bool = False
    entry_reference: str = ""  # NtryRef
    details: tuple[TransactionDetail, ...] = ()

    @property
    def signed_amount(self) -> Decimal:
        return self.amount if self.credit_debit is CreditDebit.CREDIT else -self.amount

    @property
    def booked(self) -> bool:
        return self.status == "BOOK"


@dataclass(frozen=True, slots=True)
class AccountReport:
    """A ``Stmt`` (camt.053) or an ``Ntfctn`` (camt.054, which has no balances)."""

    report_id: str
    account: str
    currency: str
    created_at: dt.datetime | None
    sequence_number: int | None
    balances: tuple[Balance, ...]
    entries: tuple[Entry, ...]

    def balance(self, type_code: str) -> Balance | None:
        return next((b for b in self.balances if b.type_code == type_code), None)

    @property
    def opening_booked(self) -> Balance | None:
        """``OPBD``, or the previous day's closing (``PRCD``) that some banks send instead."""
        return self.balance("OPBD") or self.balance("PRCD")

    @property
    def closing_booked(self) -> Balance | None:
        return self.balance("CLBD")


@dataclass(frozen=True, slots=True)
class CamtMessage:
    """A camt.053 statement or camt.054 notification file: one report per account."""

    message_type: str  # CAMT_053 or CAMT_054
    message_id: str
    created_at: dt.datetime
    reports: tuple[AccountReport, ...]
