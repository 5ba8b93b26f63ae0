"""The one error the message layer raises for a file it will not take, with a stable reason."""

from __future__ import annotations

from enum import StrEnum


class RejectReason(StrEnum):
    """Why a bank file was refused (``BankFileRejected.reason_code``), stable for quarantine."""

    TOO_LARGE = "too_large"  # over the size cap; checked before any parsing
    EMPTY = "empty"
    ENCODING = "encoding"  # ISO 20022 files are UTF-8
    DTD_FORBIDDEN = "dtd_forbidden"  # a DOCTYPE/ENTITY: billion laughs, external entities
    MALFORMED = "malformed"  # not well-formed XML
    UNEXPECTED_MESSAGE = "unexpected_message"  # wrong namespace or message type
    SCHEMA_INVALID = "schema_invalid"  # fails the message's XSD (or, for pain.002, its classes)
    COUNT_MISMATCH = "count_mismatch"  # NbOfTxs / NbOfNtries differs from the content
    CONTROL_SUM_MISMATCH = "control_sum_mismatch"  # CtrlSum / Sum differs from the content
    BALANCE_MISMATCH = "balance_mismatch"  # opening + booked entries != closing
    INCONSISTENT = "inconsistent"  # a rule across elements (duplicate id, currency mix...)
    UNKNOWN_STATUS = "unknown_status"  # a payment status code we do not know how to act on


class BankFileRejected(Exception):
    """A bank file refused as a whole: nothing of it is returned, half-parsed or otherwise."""

    def __init__(self, reason_code: RejectReason | str, detail: str) -> None:
        self.reason_code = RejectReason(reason_code)
        self.detail = detail
        super().__init__(f"{self.reason_code.value}: {detail}")
