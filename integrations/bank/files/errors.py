"""Why an inbound file that the message layer accepted still does not fit our records."""

from __future__ import annotations


class FileRefused(Exception):
    """A well-formed, valid file we will not apply: quarantined whole, with this reason.

    Reasons: ``unexpected_message`` (a kind we do not read), ``unexpected_account`` (a statement
    of an account that is not the bank's settlement account), ``unknown_original`` (a status
    report for a payment file we did not send), ``unknown_payment`` (a status for an end-to-end
    id not in that file), ``state_conflict`` (a status contradicting a final one),
    ``duplicate_statement`` (a second end-of-day statement for an account and day).
    """

    def __init__(self, reason_code: str, detail: str) -> None:
        self.reason_code = reason_code
        self.detail = detail
        super().__init__(f"{reason_code}: {detail}")
