"""Guarantee claims at close of business: raised on the core enterprise, escalated past the window.

Called by ``cob_run`` after the day's accrual, in its transaction and under the program's
exclusive COB lock (repayments of the program wait), for a program whose tripartite terms are
enabled with a guarantee:

* **Raising** (``cob_claims_raise``). Every open loan at or past ``trigger_dpd`` without a claim
  gets one (a unique index on the loan makes it once ever, so a rerun raises nothing). What it
  claims, loan by loan in id order:

  1. ``owed`` = principal + interest + penalty outstanding; the security deposit held for the
     financing is applied first (the waterfall: Dr security_deposits / Cr receivables);
  2. limited, for a buyback, to the unreleased goods' value (order value - released value);
  3. limited to what is left of the agent's cap and of the program's cap, greedily in loan
     order: each claim takes ``min(wanted, agent cap left, program cap left)``.

  The caps are then taken with conditional UPDATEs (``used + total <= cap``), behind their
  CHECKs; a claim the caps left at nothing is kept as ``cap_exhausted`` and, like a claim cut
  short by a cap, flagged for risk staff (review kind ``cap_exhausted``). The claimed amount
  leaves the loan's receivables for the enterprise's: Dr guarantee_receivable / Cr penalty,
  interest, principal receivable (the repayment waterfall's order), one entry per loan
  (``claim:<loan>``; the security's is ``security-applied:<loan>``), so the ledger's deferred
  balance check adds up a few lines per entry; the line and program get the principal part
  back as headroom. What the claim does not cover stays with the agent.
* **Escalating** (``cob_claims_escalate``): a claim still unpaid (raised, accepted, partly paid)
  after its window is ``escalated`` and queued for risk staff (review kind ``claim_escalated``).

On PostgreSQL the raising is set-based, a fixed number of statements whatever the number of
loans (``lending.services.claims_sql``); on SQLite (the demo) it is the loop here, which the
PostgreSQL tests hold the statements to.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.db.models import Exists, F, OuterRef, Q

from scf import clock

from ..locks import agreements_locked, tripartite_terms_lock
from ..models import (
    OPEN,
    AccountCode,
    Agreement,
    AgreementStatus,
    ClaimStatus,
    CreditLine,
    EntryKind,
    GoodsHold,
    GuaranteeClaim,
    GuaranteeType,
    Loan,
    MarginAccount,
    MarginMovement,
    MarginMovementKind,
    Program,
    Review,
    ReviewKind,
    TripartiteTerms,
)
from .accrual import LoanState
from .claims_sql import CapOverrun, claims_raise_sql
from .ledger import Posting, ledger_post
from .waterfall import Allocation, allocate, apply_allocation

ZERO = Decimal("0.00")
UNPAID = (ClaimStatus.RAISED, ClaimStatus.ACCEPTED, ClaimStatus.PARTLY_PAID)


@dataclass(frozen=True, slots=True)
class ClaimsResult:
    raised: int = 0
    cap_exhausted: int = 0
    amount: Decimal = ZERO
    escalated: int = 0


def claim_reference(loan: Loan) -> str:
    """What the enterprise quotes on its payment of the claim."""
    return f"GC-{loan.reference}"[:32]


def _candidates(program: Program, terms: TripartiteTerms) -> list[Loan]:
    claimed = GuaranteeClaim.objects.filter(loan_id=OuterRef("pk"))
    return list(
        Loan.objects.filter(program=program, status__in=OPEN, days_past_due__gte=terms.trigger_dpd)
        .filter(~Exists(claimed))
        .select_related("goods_hold")
        .order_by("pk")
    )


def _agreements(program: Program, agent_ids: set[int]) -> dict[int, Agreement]:
    rows = agreements_locked().filter(
        program=program, agent_id__in=agent_ids, status=AgreementStatus.ACTIVE
    )
    return {a.agent_id: a for a in rows.order_by("agent_id")}


@dataclass
class _Sized:
    loan: Loan
    hold: GoodsHold | None
    owed: Decimal
    security: Decimal
    unreleased: Decimal
    wanted: Decimal
    state: LoanState
    amount: Decimal = ZERO


def _size(loan: Loan, terms: TripartiteTerms) -> _Sized:
    hold: GoodsHold | None = getattr(loan, "goods_hold", None)
    owed = loan.outstanding_principal + loan.accrued_interest + loan.accrued_penalty
    security = min(hold.security if hold is not None else ZERO, owed)
    unreleased = hold.order_value - hold.released_value if hold is not None else ZERO
    wanted = owed - security
    if terms.guarantee_type == GuaranteeType.BUYBACK:
        wanted = min(wanted, unreleased)
    return _Sized(loan, hold, owed, security, unreleased, max(wanted, ZERO), LoanState.of(loan))


def cob_claims_raise(
    *, program: Program, business_date: dt.date, today: dt.date | None = None
) -> ClaimsResult:
    """Raise the night's claims of ``program`` (see the module docstring). Inside COB;
    ``today`` is the program's today (what ``cob_run`` was given), by default the clock's."""
    terms = tripartite_terms_lock(program.pk)
    if terms is None or not terms.enabled or terms.guarantee_type == GuaranteeType.NONE:
        return ClaimsResult()
    if connection.vendor == "postgresql":
        today = max(today or clock.business_date(program.time_zone), business_date)
        raised, exhausted, amount = claims_raise_sql(
            program=program, terms=terms, business_date=business_date, today=today
        )
        return ClaimsResult(raised, exhausted, amount)
    return claims_raise_loop(program=program, terms=terms, business_date=business_date)


def claims_raise_loop(
    *, program: Program, terms: TripartiteTerms, business_date: dt.date
) -> ClaimsResult:
    """The raising loan by loan, in Python: SQLite's path, and the reference that the
    PostgreSQL statements are held equal to (``tests/lending/test_claims_sql.py``)."""
    loans = _candidates(program, terms)
    if not loans:
        return ClaimsResult()
    agreements = _agreements(program, {loan.agent_id for loan in loans})
    sized = [_size(loan, terms) for loan in loans]
    program_left = terms.program_cap - terms.program_cap_used
    agent_left = {a.agent_id: a.agent_cap - a.agent_cap_used for a in agreements.values()}
    for item in sized:
        left = agent_left.get(item.loan.agent_id, ZERO)
        item.amount = max(min(item.wanted, left, program_left), ZERO)
        agent_left[item.loan.agent_id] = left - item.amount
        program_left -= item.amount
    _take_caps(terms, agreements, sized)
    _apply_security(program, business_date, [s for s in sized if s.security > 0])
    claims = _create_claims(program, terms, agreements, sized, business_date)
    _move_receivables(program, business_date, sized)
    _flag_capped(claims, sized)
    exhausted = sum(1 for c in claims if c.status == ClaimStatus.CAP_EXHAUSTED)
    total = sum((s.amount for s in sized), ZERO)
    return ClaimsResult(len(claims) - exhausted, exhausted, total)


def _take_caps(
    terms: TripartiteTerms, agreements: dict[int, Agreement], sized: list[_Sized]
) -> None:
    by_agent: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for item in sized:
        by_agent[item.loan.agent_id] += item.amount
    for agent_id, total in sorted(by_agent.items()):
        if total <= 0:
            continue
        room = Q(agent_cap__gte=F("agent_cap_used") + total)
        if not Agreement.objects.filter(room, pk=agreements[agent_id].pk).update(
            agent_cap_used=F("agent_cap_used") + total
        ):
            raise CapOverrun(f"agent {agent_id}: claims of {total} do not fit the agent's cap")
    program_total = sum(by_agent.values(), ZERO)
    if program_total > 0 and not TripartiteTerms.objects.filter(
        pk=terms.pk, program_cap__gte=F("program_cap_used") + program_total
    ).update(program_cap_used=F("program_cap_used") + program_total):
        raise CapOverrun(f"program {terms.program_id}: claims of {program_total} overrun its cap")


def _apply_security(program: Program, business_date: dt.date, sized: list[_Sized]) -> None:
    """The security deposits held for these financings pay what they can of the loans first:
    Dr security_deposits / Cr receivables, the margin accounts' ``security`` down by as much."""
    if not sized:
        return
    now = clock.now()
    by_account: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for item in sized:
        assert item.hold is not None
        part = allocate(item.security, item.state)
        item.state = apply_allocation(item.state, part)
        postings = [Posting.dr(AccountCode.SECURITY_DEPOSITS, item.security, loan=item.loan)]
        _post_loan(
            program,
            EntryKind.SECURITY_APPLIED,
            f"security-applied:{item.loan.pk}",
            item.loan,
            postings + _receivable_credits(item.loan, part),
            business_date,
            f"COB {business_date}: guarantee security deposit applied, program {program.code}",
        )
        by_account[item.hold.margin_account_id] += item.security
    for account_id, amount in sorted(by_account.items()):
        MarginAccount.objects.filter(pk=account_id).update(security=F("security") - amount)
    MarginMovement.objects.bulk_create(
        MarginMovement(
            account_id=item.hold.margin_account_id,  # type: ignore[union-attr]
            kind=MarginMovementKind.SECURITY_APPLY,
            amount=item.security,
            loan=item.loan,
            value_date=business_date,
            created_at=now,
        )
        for item in sized
    )


def _post_loan(
    program: Program,
    kind: EntryKind,
    key: str,
    loan: Loan,
    postings: list[Posting],
    business_date: dt.date,
    description: str,
) -> None:
    ledger_post(
        kind=kind,
        idempotency_key=key,
        business_date=business_date,
        currency=loan.currency,
        postings=postings,
        loan=loan,
        program=program,
        description=description,
    )


def _receivable_credits(loan: Loan, part: Allocation) -> list[Posting]:
    return [
        Posting.cr(account, value, loan=loan)
        for account, value in (
            (AccountCode.PENALTY_RECEIVABLE, part.penalty),
            (AccountCode.INTEREST_RECEIVABLE, part.interest),
            (AccountCode.PRINCIPAL_RECEIVABLE, part.principal),
        )
        if value > 0
    ]


def _create_claims(
    program: Program,
    terms: TripartiteTerms,
    agreements: dict[int, Agreement],
    sized: list[_Sized],
    business_date: dt.date,
) -> list[GuaranteeClaim]:
    now = clock.now()
    window = business_date + dt.timedelta(days=terms.claim_window_days)
    return GuaranteeClaim.objects.bulk_create(
        GuaranteeClaim(
            loan=item.loan,
            program=program,
            agent_id=item.loan.agent_id,
            enterprise_id=program.enterprise_id,
            agreement=agreements.get(item.loan.agent_id),
            guarantee_type=terms.guarantee_type,
            currency=item.loan.currency,
            owed=item.owed,
            security_applied=item.security,
            unreleased_value=item.unreleased,
            amount=item.amount,
            status=ClaimStatus.RAISED if item.amount > 0 else ClaimStatus.CAP_EXHAUSTED,
            reference=claim_reference(item.loan),
            raised_on=business_date,
            window_ends_on=window,
            created_at=now,
            updated_at=now,
        )
        for item in sized
    )


def _move_receivables(program: Program, business_date: dt.date, sized: list[_Sized]) -> None:
    """The claimed amounts leave the loans' receivables for the enterprise's (an entry per
    loan), and every loan the claim or its security changed is written in one statement."""
    for item in sized:
        if item.amount <= 0:
            continue
        part = allocate(item.amount, item.state)
        item.state = apply_allocation(item.state, part)
        _post_loan(
            program,
            EntryKind.GUARANTEE_CLAIM,
            f"claim:{item.loan.pk}",
            item.loan,
            [
                Posting.dr(AccountCode.GUARANTEE_RECEIVABLE, item.amount, loan=item.loan),
                *_receivable_credits(item.loan, part),
            ],
            business_date,
            f"COB {business_date}: guarantee claim, program {program.code}",
        )
    changed = [item for item in sized if item.amount > 0 or item.security > 0]
    principal_by_line: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for item in changed:
        loan = item.loan
        principal_by_line[loan.credit_line_id] += (
            loan.outstanding_principal - item.state.outstanding
        )
        loan.outstanding_principal = item.state.outstanding
        loan.accrued_interest = item.state.interest
        loan.accrued_penalty = item.state.penalty
    Loan.objects.bulk_update(
        [item.loan for item in changed],
        ["outstanding_principal", "accrued_interest", "accrued_penalty"],
        batch_size=1000,
    )
    for line_id, principal in sorted(principal_by_line.items()):
        if principal > 0:
            CreditLine.objects.filter(pk=line_id).update(
                outstanding_principal=F("outstanding_principal") - principal
            )
    total_principal = sum(principal_by_line.values(), ZERO)
    if total_principal > 0:
        Program.objects.filter(pk=program.pk).update(
            outstanding_principal=F("outstanding_principal") - total_principal
        )


def _flag_capped(claims: list[GuaranteeClaim], sized: list[_Sized]) -> None:
    """A claim the caps cut short (or left at nothing) goes to risk staff."""
    now = clock.now()
    Review.objects.bulk_create(
        [
            Review(loan_id=claim.loan_id, kind=ReviewKind.CAP_EXHAUSTED, created_at=now)
            for claim, item in zip(claims, sized, strict=True)
            if item.amount < item.wanted
        ],
        ignore_conflicts=True,
    )


def cob_claims_escalate(*, program: Program, business_date: dt.date) -> int:
    """Claims unpaid past their window: ``escalated``, each with a review case."""
    due = GuaranteeClaim.objects.filter(
        program=program, status__in=UNPAID, window_ends_on__lt=business_date
    )
    loan_ids = list(due.order_by("pk").values_list("loan_id", flat=True))
    if not loan_ids:
        return 0
    now = clock.now()
    due.update(status=ClaimStatus.ESCALATED, escalated_at=now, updated_at=now)
    Review.objects.bulk_create(
        [Review(loan_id=pk, kind=ReviewKind.CLAIM_ESCALATED, created_at=now) for pk in loan_ids],
        ignore_conflicts=True,
    )
    return len(loan_ids)


def cob_claims(
    *, program: Program, business_date: dt.date, today: dt.date | None = None
) -> ClaimsResult:
    """The night's claims work for one program: escalate the overdue ones, raise the new ones."""
    escalated = cob_claims_escalate(program=program, business_date=business_date)
    raised = cob_claims_raise(program=program, business_date=business_date, today=today)
    return ClaimsResult(raised.raised, raised.cap_exhausted, raised.amount, escalated)
