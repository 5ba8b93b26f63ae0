"""Bank statement import: incoming credits from the bank adapter become loan repayments.

Each credit names its loan in the remittance information (the loan ``reference`` agents quote),
or a guarantee claim (its ``reference``, quoted by the core enterprise paying it: applied by
``lending.services.claim_actions.claim_payment_record``, once per bank reference).
The bank's own reference becomes the repayment reference, so a credit imported twice is applied
once (``Repayment.reference`` is unique). The import window ends at "now" and starts where the
last import ended (``StatementCursor``); overlap is harmless for the same reason. A credit that
matches no loan, or that the repayment service refuses, is logged for operations and skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction

from lending.models import RepaymentSource
from lending.services.claim_actions import claim_for_reference, claim_payment_record
from lending.services.repayments import loan_for_reference, repayment_record_outcome
from scf import clock
from scf.errors import ApplicationError

from ..models import StatementCursor
from . import bank_adapter
from .interface import IncomingCredit

logger = logging.getLogger(__name__)

CURSOR_NAME = "bank-incoming-credits"
ACTOR = "integration:bank-statement"


@dataclass
class ImportResult:
    credits: int = 0
    applied: int = 0
    duplicates: int = 0
    unmatched: int = 0
    refused: int = 0


def _apply_to_claim(credit: IncomingCredit, claim_id: int, result: ImportResult) -> None:
    """The core enterprise pays (part of) a guarantee claim, quoting its reference."""
    try:
        _, created = claim_payment_record(
            claim_id=claim_id,
            amount=credit.amount,
            value_date=credit.value_date,
            reference=credit.bank_reference,
            actor=ACTOR,
        )
    except ApplicationError as exc:
        result.refused += 1
        logger.warning(
            "incoming claim payment refused",
            extra={"bank_reference": credit.bank_reference, "code": exc.code},
        )
        return
    if created:
        result.applied += 1
    else:
        result.duplicates += 1


def _apply(credit: IncomingCredit, result: ImportResult) -> None:
    claim = claim_for_reference(credit.remittance_info)
    if claim is not None:
        _apply_to_claim(credit, claim.pk, result)
        return
    loan = loan_for_reference(credit.remittance_info)
    if loan is None:
        result.unmatched += 1
        logger.warning("unmatched incoming credit", extra={"bank_reference": credit.bank_reference})
        return
    try:
        _, created = repayment_record_outcome(
            loan=loan,
            amount=credit.amount,
            value_date=credit.value_date,
            reference=credit.bank_reference,
            source=RepaymentSource.BANK_STATEMENT,
            actor=ACTOR,
        )
    except ApplicationError as exc:
        result.refused += 1
        logger.warning(
            "incoming credit refused",
            extra={"bank_reference": credit.bank_reference, "code": exc.code},
        )
        return
    if created:
        result.applied += 1
    else:
        result.duplicates += 1


def statement_import() -> ImportResult:
    """Import every credit booked since the last import, up to now; advance the cursor."""
    until = clock.now()
    cursor, _ = StatementCursor.objects.get_or_create(name=CURSOR_NAME)
    result = ImportResult()
    for credit in bank_adapter().incoming_credits(cursor.imported_through, until):
        result.credits += 1
        with transaction.atomic():
            _apply(credit, result)
    StatementCursor.objects.filter(pk=cursor.pk).update(imported_through=until)
    return result
