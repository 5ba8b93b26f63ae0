"""The bank payment rail, as the platform sees it: typed requests and replies, and three errors.

A ``BankAdapter`` pays a loan out (``initiate_transfer``), says what became of a payment
(``transfer_status``) and lists money received into the lender's account (``incoming_credits``).
Nothing past this edge handles raw bank messages: only these frozen dataclasses.

Every transfer carries our ``end_to_end_id`` (ISO 20022 ``EndToEndId``, at most 35 characters).
A bank must treat a repeat of an id as the same payment, so re-sending is never a second payment;
still, after any doubt (a timeout, a worker that died mid-call) the caller asks
``transfer_status`` before it re-sends anything.

Errors, and what the caller may conclude from each:

* ``BankUnavailable``: the request was not accepted (connection refused, 503). Transient.
* ``BankTimeout``: no reply in time; the bank *may* have accepted it. Transient, and uncertain.
* ``BankRejected``: a final refusal with an ISO 20022 reason code (``AC04`` closed account,
  ``AM04`` insufficient funds...). Retrying will not help.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

MAX_END_TO_END_ID = 35
MAX_REMITTANCE_INFO = 140

# ISO 20022 external status reason codes the platform knows by name (others pass through as-is).
REASON_CODES: dict[str, str] = {
    "AC01": "Incorrect account number",
    "AC04": "Closed account number",
    "AC06": "Blocked account",
    "AG01": "Transaction forbidden",
    "AM04": "Insufficient funds",
    "AM05": "Duplication",
    "AM09": "Wrong amount",
    "BE01": "Inconsistent with end customer",
    "MS03": "Reason not specified",
    "RC01": "Bank identifier incorrect",
}


class TransferState(StrEnum):
    ACCEPTED = "accepted"  # the bank has it and will settle it (or reject it) later
    SETTLED = "settled"  # the money reached the creditor's bank: final
    REJECTED = "rejected"  # refused or returned, with a reason code: final
    UNKNOWN = "unknown"  # the bank has no transfer with this end-to-end id


class BankError(Exception):
    """Anything the bank edge raises."""


class BankTransientError(BankError):
    """Worth retrying later (with the same end-to-end id)."""


class BankUnavailable(BankTransientError):
    """The bank did not accept the request: nothing happened at the bank."""


class BankTimeout(BankTransientError):
    """No reply in time: the bank may or may not have accepted the request. Ask before re-sending."""


class BankRejected(BankError):
    """A final refusal. ``reason_code`` is the bank's ISO 20022 code."""

    def __init__(self, reason_code: str, detail: str = "") -> None:
        self.reason_code = reason_code
        self.detail = detail or REASON_CODES.get(reason_code, "Rejected by the bank")
        super().__init__(f"{reason_code}: {self.detail}")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True, slots=True)
class TransferRequest:
    """A credit transfer from the lender's account to a creditor (the core enterprise)."""

    end_to_end_id: str
    amount: Decimal
    currency: str
    debtor_account: str
    creditor_name: str
    creditor_account: str
    creditor_bank: str = ""
    remittance_info: str = ""

    def __post_init__(self) -> None:
        _require(
            0 < len(self.end_to_end_id) <= MAX_END_TO_END_ID,
            f"end_to_end_id must be 1 to {MAX_END_TO_END_ID} characters",
        )
        _require(isinstance(self.amount, Decimal), "amount must be a Decimal")
        _require(self.amount.is_finite() and self.amount > 0, "amount must be positive")
        _require(len(self.currency) == 3, "currency must be an ISO 4217 code")
        _require(len(self.remittance_info) <= MAX_REMITTANCE_INFO, "remittance_info is too long")


@dataclass(frozen=True, slots=True)
class TransferReceipt:
    """The bank's synchronous reply to ``initiate_transfer``: accepted, or already settled."""

    end_to_end_id: str
    bank_reference: str
    state: TransferState
    accepted_at: dt.datetime
    settled_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class TransferStatus:
    """What the bank knows about one end-to-end id (``UNKNOWN`` when nothing)."""

    end_to_end_id: str
    state: TransferState
    reason_code: str = ""
    bank_reference: str = ""
    settled_at: dt.datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (for a task argument); ``from_json`` reads it back."""
        return {
            "end_to_end_id": self.end_to_end_id,
            "state": self.state.value,
            "reason_code": self.reason_code,
            "bank_reference": self.bank_reference,
            "settled_at": self.settled_at.isoformat() if self.settled_at else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TransferStatus:
        settled_at = data.get("settled_at")
        return cls(
            end_to_end_id=str(data["end_to_end_id"]),
            state=TransferState(data["state"]),
            reason_code=str(data.get("reason_code") or ""),
            bank_reference=str(data.get("bank_reference") or ""),
            settled_at=dt.datetime.fromisoformat(settled_at) if settled_at else None,
        )


@dataclass(frozen=True, slots=True)
class IncomingCredit:
    """Money booked into the lender's account (one line of a bank statement)."""

    bank_reference: str
    amount: Decimal
    currency: str
    value_date: dt.date
    booked_at: dt.datetime
    debtor_name: str = ""
    debtor_account: str = ""
    remittance_info: str = ""


@runtime_checkable
class BankAdapter(Protocol):
    """A bank payment rail. Implementations: ``SandboxBank``; a real bank's adapter plugs in."""

    def initiate_transfer(self, request: TransferRequest) -> TransferReceipt:
        """Send a transfer; idempotent on ``request.end_to_end_id``.

        Raises ``BankRejected`` (final), ``BankUnavailable`` (not accepted) or ``BankTimeout``
        (maybe accepted).
        """
        ...

    def transfer_status(self, end_to_end_id: str) -> TransferStatus:
        """What became of a transfer. Raises ``BankUnavailable`` or ``BankTimeout``."""
        ...

    def incoming_credits(
        self, since: dt.datetime | None, until: dt.datetime
    ) -> list[IncomingCredit]:
        """Credits booked in ``(since, until]`` (from the beginning when ``since`` is None),
        oldest first. Raises ``BankUnavailable`` or ``BankTimeout``."""
        ...
