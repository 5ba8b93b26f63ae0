"""What an incoming bank credit pays: a margin account, a guarantee claim, or a loan.

The same order as the API sandbox's statement import (``integrations.bank.statements``): a credit
quoting a margin account's reference (``MG-<program>-<agent>``) lodges margin; one quoting a
claim's reference (``GC-<loan reference>``, the core enterprise paying it) pays the claim; any
other is matched to a loan (``repayment_refs.loans_for_credits``). A reference is a word of the
remittance or the structured creditor reference, in any case. Only the file's bank's accounts,
claims and loans match: the money is in that bank's account. A fixed number of queries for any
number of credits (a statement can hold 100,000 entries).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from django.db.models import Model

from ..models import GuaranteeClaim, Loan, MarginAccount
from .repayment_refs import CreditRefs, loans_for_credits

CHUNK = 5000
M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class CreditTarget:
    loan: Loan | None = None
    margin_account: MarginAccount | None = None
    claim: GuaranteeClaim | None = None


def _words(credit: CreditRefs) -> list[str]:
    return f"{credit.creditor_reference} {credit.remittance}".upper().split()


def _by_reference(
    model: type[M], words: set[str], prefix: str, bank_path: str, bank_id: int
) -> dict[str, M]:
    """The bank's rows of ``model`` whose reference is one of ``words`` (upper-cased)."""
    wanted = sorted(w for w in words if w.startswith(prefix))
    found: dict[str, M] = {}
    for start in range(0, len(wanted), CHUNK):
        rows = model._default_manager.filter(
            reference__in=wanted[start : start + CHUNK], **{bank_path: bank_id}
        )
        found.update({str(getattr(row, "reference", "")).upper(): row for row in rows})
    return found


def targets_for_credits(credits: Sequence[CreditRefs], *, bank_id: int) -> list[CreditTarget]:
    """The target of each credit (same order); an empty target when it matches nothing."""
    words = {w for credit in credits for w in _words(credit)}
    margins = _by_reference(MarginAccount, words, "MG-", "program__bank_id", bank_id)
    claims = _by_reference(GuaranteeClaim, words, "GC-", "loan__program__bank_id", bank_id)
    targets: list[CreditTarget | None] = []
    rest = []
    for credit in credits:
        credit_words = _words(credit)
        margin = next((margins[w] for w in credit_words if w in margins), None)
        claim = next((claims[w] for w in credit_words if w in claims), None)
        if margin is not None:
            targets.append(CreditTarget(margin_account=margin))
        elif claim is not None:
            targets.append(CreditTarget(claim=claim))
        else:
            targets.append(None)
            rest.append(credit)
    loans = iter(loans_for_credits(rest, bank_id=bank_id))
    return [t if t is not None else CreditTarget(loan=next(loans)) for t in targets]
