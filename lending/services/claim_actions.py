"""What happens to a guarantee claim after COB raised it: accepted, disputed, paid.

* ``claim_accept`` / ``claim_dispute``: the core enterprise's admins, on their own enterprise's
  claims. A dispute needs a reason and opens a review case (kind ``claim_dispute``) for risk
  staff. Both audited.
* ``claim_payment_record``: money from the enterprise quoting the claim's reference (a bank
  credit, ``integrations.bank.statements``), in one or more parts. Each part: Dr settlement /
  Cr guarantee_receivable (the loan's line), the claim's ``paid`` up, and the caps' usage down
  by as much (the guarantee is released as it is paid). The part that completes the claim makes
  it ``paid``, transfers the unreleased goods to the enterprise (hold ``transferred``) and, when
  the agent owes nothing else on the loan, closes the loan as ``bought_back``; any rest the
  claim did not cover stays with the agent. Exactly once per bank reference (the ledger entry's
  idempotency key ``claimpay:<reference>``); more than is still due is refused.

Locks (``lending.locks``): the loan's (``loan_lock``: program advisory lock shared, loan, line,
program), then the claim's row (``claim_lock``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F

from orders.models import Role, User
from scf import clock
from scf.errors import Conflict, PermissionDenied, ValidationFailed
from scf.money import parse_amount

from ..locks import claim_lock, loan_lock
from ..models import (
    AccountCode,
    Agreement,
    ClaimStatus,
    EntryKind,
    GoodsHold,
    GuaranteeClaim,
    HoldStatus,
    JournalEntry,
    Loan,
    LoanStatus,
    Review,
    ReviewKind,
    TripartiteTerms,
)
from .audit import audit_record
from .ledger import Posting, ledger_post

PAYABLE = (
    ClaimStatus.RAISED,
    ClaimStatus.ACCEPTED,
    ClaimStatus.DISPUTED,
    ClaimStatus.PARTLY_PAID,
    ClaimStatus.ESCALATED,
)
ACCEPTABLE = (ClaimStatus.RAISED, ClaimStatus.ESCALATED)
DISPUTABLE = (ClaimStatus.RAISED, ClaimStatus.ACCEPTED, ClaimStatus.ESCALATED)
MAX_REASON = 500


class ClaimStateConflict(Conflict):
    code = "claim_state"


class ClaimOverpaid(Conflict):
    code = "claim_overpaid"


def _check_enterprise(claim: GuaranteeClaim, actor: User) -> None:
    if getattr(actor, "role", None) != Role.ENTERPRISE_ADMIN:
        raise PermissionDenied("Only the core enterprise accepts or disputes its claims.")
    if actor.enterprise_id != claim.enterprise_id:
        raise PermissionDenied("This claim is on another enterprise.")


def _locked(claim_id: int) -> GuaranteeClaim:
    return claim_lock(claim_id)


@transaction.atomic
def claim_accept(*, claim_id: int, actor: User) -> GuaranteeClaim:
    claim = _locked(claim_id)
    _check_enterprise(claim, actor)
    if claim.status not in ACCEPTABLE:
        raise ClaimStateConflict(
            f"Claim {claim.reference} is {claim.status}: it cannot be accepted."
        )
    before = claim.status
    claim.status, claim.accepted_at = ClaimStatus.ACCEPTED, clock.now()
    claim.updated_at = claim.accepted_at
    claim.save(update_fields=["status", "accepted_at", "updated_at"])
    audit_record(
        actor=actor,
        action="claim_accepted",
        obj=claim,
        before={"status": before},
        after={"status": claim.status, "amount": str(claim.amount)},
    )
    return claim


@transaction.atomic
def claim_dispute(*, claim_id: int, actor: User, reason: str) -> GuaranteeClaim:
    cleaned = reason.strip() if isinstance(reason, str) else ""
    if not cleaned or len(cleaned) > MAX_REASON:
        message = f"Say why (1 to {MAX_REASON} characters)."
        raise ValidationFailed(f"Invalid reason: {message}", fields={"reason": [message]})
    claim = _locked(claim_id)
    _check_enterprise(claim, actor)
    if claim.status not in DISPUTABLE:
        raise ClaimStateConflict(
            f"Claim {claim.reference} is {claim.status}: it cannot be disputed."
        )
    before = claim.status
    now = clock.now()
    claim.status, claim.disputed_at, claim.dispute_reason = ClaimStatus.DISPUTED, now, cleaned
    claim.updated_at = now
    claim.save(update_fields=["status", "disputed_at", "dispute_reason", "updated_at"])
    Review.objects.bulk_create(
        [Review(loan_id=claim.loan_id, kind=ReviewKind.CLAIM_DISPUTE, created_at=now)],
        ignore_conflicts=True,
    )
    audit_record(
        actor=actor,
        action="claim_disputed",
        obj=claim,
        before={"status": before},
        after={"status": claim.status},
        note=cleaned,
    )
    return claim


def claim_for_reference(reference: str) -> GuaranteeClaim | None:
    """The claim a payment's remittance information names, if any."""
    cleaned = reference.strip() if isinstance(reference, str) else ""
    if not cleaned:
        return None
    return GuaranteeClaim.objects.filter(reference__iexact=cleaned).first()


def claim_payment_key(reference: str) -> str:
    return f"claimpay:{reference}"


@transaction.atomic
def claim_payment_record(
    *,
    claim_id: int,
    amount: Decimal | str,
    value_date: dt.date,
    reference: str,
    actor: Any,
) -> tuple[GuaranteeClaim, bool]:
    """Apply a payment of the enterprise to a claim (see the module docstring); (claim, whether
    this call applied it). Raises ``ValidationFailed``, ``ClaimStateConflict``, ``ClaimOverpaid``
    before writing anything."""
    try:
        value = parse_amount(amount)
    except ValueError as exc:
        raise ValidationFailed(f"Invalid amount: {exc}", fields={"amount": [str(exc)]}) from None
    if value <= 0:
        raise ValidationFailed("Invalid amount.", fields={"amount": ["Must be above zero."]})
    loan_id = GuaranteeClaim.objects.values_list("loan_id", flat=True).get(pk=claim_id)
    loan = loan_lock(loan_id)
    claim = _locked(claim_id)
    if JournalEntry.objects.filter(idempotency_key=claim_payment_key(reference)).exists():
        return claim, False
    if claim.status not in PAYABLE:
        raise ClaimStateConflict(f"Claim {claim.reference} is {claim.status}: nothing to pay.")
    due = claim.amount - claim.paid
    if value > due:
        raise ClaimOverpaid(f"Claim {claim.reference} has {due} left to pay, not {value}.")
    ledger_post(
        kind=EntryKind.GUARANTEE_PAYMENT,
        idempotency_key=claim_payment_key(reference),
        business_date=value_date,
        currency=claim.currency,
        postings=[
            Posting.dr(AccountCode.SETTLEMENT, value, loan=loan),
            Posting.cr(AccountCode.GUARANTEE_RECEIVABLE, value, loan=loan),
        ],
        loan=loan,
        program=loan.program,
        description=f"guarantee claim {claim.reference} paid ({reference})",
    )
    before = claim.status
    now = clock.now()
    claim.paid += value
    claim.status = ClaimStatus.PAID if claim.paid == claim.amount else ClaimStatus.PARTLY_PAID
    claim.paid_at = now if claim.status == ClaimStatus.PAID else claim.paid_at
    claim.updated_at = now
    claim.save(update_fields=["paid", "status", "paid_at", "updated_at"])
    _release_caps(claim, value)
    if claim.status == ClaimStatus.PAID:
        _bought_back(loan, now)
    audit_record(
        actor=actor,
        action="claim_payment_recorded",
        obj=claim,
        before={"status": before},
        after={
            "status": claim.status,
            "amount": str(value),
            "paid": str(claim.paid),
            "reference": reference,
            "loan_status": loan.status,
        },
    )
    return claim, True


def _release_caps(claim: GuaranteeClaim, value: Decimal) -> None:
    """The guarantee used by the claim is released as it is paid (the CHECKs keep it >= 0)."""
    if claim.agreement_id is not None:
        Agreement.objects.filter(pk=claim.agreement_id).update(
            agent_cap_used=F("agent_cap_used") - value
        )
    TripartiteTerms.objects.filter(program_id=claim.program_id).update(
        program_cap_used=F("program_cap_used") - value
    )


def _bought_back(loan: Loan, now: dt.datetime) -> None:
    """The enterprise has paid the claim in full: the goods left unreleased are its own now;
    a loan that owes nothing else is closed as bought back."""
    GoodsHold.objects.filter(loan=loan).update(status=HoldStatus.TRANSFERRED, updated_at=now)
    owed = loan.outstanding_principal + loan.accrued_interest + loan.accrued_penalty
    if owed == 0:
        loan.status, loan.closed_at, loan.days_past_due = LoanStatus.BOUGHT_BACK, now, 0
        loan.save(update_fields=["status", "closed_at", "days_past_due"])
