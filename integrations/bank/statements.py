"""Bank statement import: incoming credits from the bank adapter become loan repayments.

Each credit names its loan in the remittance information (the loan ``reference`` agents quote),
or a margin account (``MG-<program>-<agent>``: the agent lodges margin, one deposit per bank
reference), or a guarantee claim (its ``reference``, quoted by the core enterprise paying it:
``lending.services.claim_actions.claim_payment_record``, once per bank reference).
The bank's own reference becomes the repayment reference, so a credit imported twice is applied
once (``Repayment.reference`` is unique). The import window ends at "now" and starts where the
last import ended (``StatementCursor``); overlap is harmless for the same reason. A credit that
matches no loan, or that the repayment service refuses, is logged for operations and skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from lending.models import MarginSource, RepaymentSource
from lending.selectors.tripartite import margin_account_for_reference
from lending.services.claim_actions import claim_for_reference, claim_payment_record
from lending.services.margin import margin_deposit
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


def _count(result: ImportResult, credit: IncomingCredit, refusal: str, apply: Any) -> None:
    """Apply a credit with ``apply()`` (-> (row, created)) and count what happened."""
    try:
        _, created = apply()
    except ApplicationError as exc:
        result.refused += 1
        logger.warning(refusal, extra={"bank_reference": credit.bank_reference, "code": exc.code})
        return
    if created:
        result.applied += 1
    else:
        result.duplicates += 1


def _apply_margin(credit: IncomingCredit, result: ImportResult) -> bool:
    """A credit quoting a margin reference lodges margin (False: it quotes none)."""
    account = margin_account_for_reference(credit.remittance_info)
    if account is None:
        return False
    _count(
        result,
        credit,
        "incoming margin credit refused",
        lambda: margin_deposit(
            account=account,
            amount=credit.amount,
            value_date=credit.value_date,
            reference=credit.bank_reference,
            source=MarginSource.BANK_STATEMENT,
            actor=ACTOR,
            currency=credit.currency,
        ),
    )
    return True


def _apply_claim(credit: IncomingCredit, result: ImportResult) -> bool:
    """A credit quoting a claim's reference pays (part of) it (False: it quotes none)."""
    claim = claim_for_reference(credit.remittance_info)
    if claim is None:
        return False
    _count(
        result,
        credit,
        "incoming claim payment refused",
        lambda: claim_payment_record(
            claim_id=claim.pk,
            amount=credit.amount,
            value_date=credit.value_date,
            reference=credit.bank_reference,
            actor=ACTOR,
        ),
    )
    return True


def _apply(credit: IncomingCredit, result: ImportResult) -> None:
    if _apply_margin(credit, result) or _apply_claim(credit, result):
        return
    loan = loan_for_reference(credit.remittance_info)
    if loan is None:
        result.unmatched += 1
        logger.warning("unmatched incoming credit", extra={"bank_reference": credit.bank_reference})
        return
    _count(
        result,
        credit,
        "incoming credit refused",
        lambda: repayment_record_outcome(
            loan=loan,
            amount=credit.amount,
            value_date=credit.value_date,
            reference=credit.bank_reference,
            source=RepaymentSource.BANK_STATEMENT,
            actor=ACTOR,
        ),
    )


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
