"""Which loan an incoming bank credit pays: by the agent's repayment reference or a loan reference.

Each credit line (an agent in a program) has a repayment reference the agent quotes on every
payment: an ISO 11649 structured creditor reference (``RF`` + two check digits + ``SCF`` + the
line id), derived from the line, so it needs no column and cannot collide, and a mistyped one
fails its check digits instead of paying someone else's loan. A credit carrying it pays the
line's open loan due first. A credit can also name a loan by its own reference (``SCF...``,
printed on the schedule) anywhere in its remittance text.

``loans_for_credits`` resolves many credits in a fixed number of queries (a statement can hold
100,000 entries).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from stdnum import iso11649

from ..models import OPEN, Loan

_LINE_BODY = re.compile(r"SCF(\d{1,18})")
_TOKEN = re.compile(r"[A-Za-z0-9]+")


def repayment_reference_for(line_id: int) -> str:
    """The line's ISO 11649 creditor reference (``RFcc SCF<id>``, without spaces)."""
    body = f"SCF{line_id}"
    for check in range(2, 99):
        candidate = f"RF{check:02d}{body}"
        if iso11649.is_valid(candidate):
            return candidate
    raise AssertionError("an ISO 11649 check pair always exists")  # pragma: no cover


def line_of_reference(reference: str) -> int | None:
    """The line id a valid repayment reference names, else None (a bad check digit included)."""
    compact = iso11649.compact(reference or "")
    if not compact.startswith("RF") or not iso11649.is_valid(compact):
        return None
    found = _LINE_BODY.fullmatch(compact[4:])
    return int(found.group(1)) if found else None


@dataclass(frozen=True)
class CreditRefs:
    """What a credit says about itself: a structured reference and free remittance text."""

    creditor_reference: str
    remittance: str


def _tokens(credit: CreditRefs) -> list[str]:
    return [t.upper() for t in _TOKEN.findall(f"{credit.creditor_reference} {credit.remittance}")]


def loans_for_credits(credits: Sequence[CreditRefs], *, bank_id: int) -> list[Loan | None]:
    """The loan each credit pays (same order), among the bank's programs; None when unmatched.

    A repayment reference wins over a loan reference; a line's credit goes to its open loan
    with the earliest due date. Loans of another bank never match (the money is not there).
    """
    lines: dict[int, int | None] = {}
    for credit in credits:
        for candidate in (credit.creditor_reference, *credit.remittance.split()):
            line_id = line_of_reference(candidate)
            if line_id is not None:
                lines[id(credit)] = line_id
                break
    by_line = _first_open_loans({v for v in lines.values() if v is not None}, bank_id)
    tokens = {t for c in credits if id(c) not in lines for t in _tokens(c)}
    by_reference = _loans_by_reference(tokens, bank_id)
    result: list[Loan | None] = []
    for credit in credits:
        line_id = lines.get(id(credit))
        if line_id is not None:
            result.append(by_line.get(line_id))
            continue
        result.append(next((by_reference[t] for t in _tokens(credit) if t in by_reference), None))
    return result


def _first_open_loans(line_ids: Iterable[int], bank_id: int) -> dict[int, Loan]:
    found: dict[int, Loan] = {}
    ids = list(line_ids)
    if not ids:
        return found
    rows = (
        Loan.objects.filter(credit_line_id__in=ids, status__in=OPEN, program__bank_id=bank_id)
        .select_related("program")
        .order_by("credit_line_id", "due_date", "id")
    )
    for loan in rows:
        found.setdefault(loan.credit_line_id, loan)
    return found


def _loans_by_reference(tokens: set[str], bank_id: int) -> dict[str, Loan]:
    found: dict[str, Loan] = {}
    candidates = sorted(t for t in tokens if t.startswith("SCF"))
    for start in range(0, len(candidates), 5000):
        chunk = candidates[start : start + 5000]
        rows = Loan.objects.filter(reference__in=chunk, program__bank_id=bank_id).select_related(
            "program"
        )
        found.update({loan.reference.upper(): loan for loan in rows})
    return found
