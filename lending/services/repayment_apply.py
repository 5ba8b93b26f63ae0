"""Applying a repayment to a locked loan: on time, or backdated and replayed.

The caller (``lending.services.repayments``) has validated the request, taken the locks and
brought the loan's accruals up to the day before the value date. Here:

* **On time** (value date after ``accrued_through``): the waterfall against the current balances;
  the entry ``repay:<reference>`` is Dr settlement / Cr penalty_receivable, interest_receivable,
  principal_receivable, agent_overpayments, every line naming the loan. Principal repaid gives the
  line and program their headroom back (``credit_repaid``) and, under a tripartite agreement,
  raises the goods the enterprise may release (``goods_hold_repaid``); a loan that owes nothing
  more is ``repaid`` (``closed_at`` set).
* **Backdated** (value date D on or before ``accrued_through``): the loan is put back where it
  stood at the end of D - 1 and the days are replayed with the payment in them, so it ends
  exactly as if the money had arrived on time, across a COB, across the due date (penalty, DPD
  and status recomputed) and whatever order backdated payments arrive in:

  1. the active accrual rows dated D or later are marked reversed and one reversing entry per
     kind is posted for their total (``reverse:<reference>:<kind>``);
  2. repayments already applied with a value date of D or later are taken back out of the
     balances (their allocation is recomputed below);
  3. from D on, each day applies that day's payments and then accrues (through
     ``accrued_through``); new accrual rows and one entry per kind for their total are posted
     (``replay:<reference>:<kind>``);
  4. an earlier payment whose allocation changed has its entry reversed
     (``unapply:<reference>:<id>``) and is posted again (``realloc:<reference>:<id>``).

  This path is a per-loan Python loop: it concerns one loan. ``loan_replay`` is steps 1-4, also
  used without a new payment to correct loans accrued before exact interest
  (``lending.services.accrual_correct``). Before replaying, the rewound loan is checked against
  its sub-ledger: its posted totals must be its active accrual rows before D, and the exact
  rounding of their numerator, give or take the one cent by which rows written before migration
  ``0008_exact_interest`` can differ (the first replayed night then posts that cent).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from django.db.models import Sum

from scf import clock
from scf.money import CENT

from ..locks import repayments_locked
from ..models import (
    AccountCode,
    Accrual,
    AccrualKind,
    EntryKind,
    JournalEntry,
    Loan,
    LoanStatus,
    Repayment,
)
from .accrual import (
    ACCRUAL_FIELDS,
    ZERO,
    AccrualTerms,
    LoanState,
    accrual_entry_post,
)
from .accrual_loan import loan_accrual_post
from .audit import actor_label
from .credit import credit_repaid
from .interest import basis_for, interest_rounded
from .ledger import Posting, ledger_post, ledger_reverse
from .ledger_batch import NewEntry
from .margin_finance import security_release
from .releases import goods_hold_repaid
from .waterfall import Allocation, Payment, allocate, apply_allocation, replay


@dataclass(frozen=True, slots=True)
class RepaymentRequest:
    """A validated repayment to apply."""

    amount: Decimal
    value_date: dt.date
    reference: str
    source: str
    actor: Any
    today: dt.date


def repayment_new(
    loan: Loan, request: RepaymentRequest, allocation: Allocation, backdated: bool
) -> Repayment:
    """The repayment row, unsaved (the batch path writes many at once)."""
    return Repayment(
        loan=loan,
        reference=request.reference,
        amount=request.amount,
        currency=loan.currency,
        value_date=request.value_date,
        source=request.source,
        backdated=backdated,
        recorded_by=actor_label(request.actor),
        received_at=clock.now(),
        **allocation.fields(),
    )


def _create(
    loan: Loan, request: RepaymentRequest, allocation: Allocation, backdated: bool
) -> Repayment:
    repayment = repayment_new(loan, request, allocation, backdated)
    repayment.save(force_insert=True)
    repayment.journal_entry = _post_repayment(
        loan, repayment, allocation, key=f"repay:{request.reference}"
    )
    repayment.save(update_fields=["journal_entry"])
    return repayment


def repayment_entry(
    loan: Loan, repayment: Repayment, allocation: Allocation, *, key: str
) -> NewEntry:
    """A repayment's entry: Dr settlement / Cr penalty, interest and principal receivable and
    agent overpayments, every line naming the loan."""
    postings = [Posting.dr(AccountCode.SETTLEMENT, repayment.amount, loan=loan)]
    parts = (
        (AccountCode.PENALTY_RECEIVABLE, allocation.penalty),
        (AccountCode.INTEREST_RECEIVABLE, allocation.interest),
        (AccountCode.PRINCIPAL_RECEIVABLE, allocation.principal),
        (AccountCode.AGENT_OVERPAYMENTS, allocation.overpayment),
    )
    postings += [Posting.cr(account, part, loan=loan) for account, part in parts if part > 0]
    return NewEntry(
        kind=EntryKind.REPAYMENT,
        idempotency_key=key,
        business_date=repayment.value_date,
        currency=loan.currency,
        postings=tuple(postings),
        loan=loan,
        program=loan.program,
        description=f"repayment {repayment.reference}, loan {loan.reference}",
    )


def _post_repayment(
    loan: Loan, repayment: Repayment, allocation: Allocation, *, key: str
) -> JournalEntry:
    entry = repayment_entry(loan, repayment, allocation, key=key)
    return ledger_post(
        kind=entry.kind,
        idempotency_key=entry.idempotency_key,
        business_date=entry.business_date,
        currency=entry.currency,
        postings=entry.postings,
        loan=entry.loan,
        program=entry.program,
        description=entry.description,
    )


def loan_state_set(loan: Loan, after: LoanState) -> None:
    """Put a repayment's or replay's outcome on the loan (unsaved): a loan that owes nothing is
    closed, since the first moment it did."""
    after.apply_to(loan)
    if after.status == LoanStatus.REPAID:
        loan.closed_at = loan.closed_at or clock.now()
    else:
        loan.closed_at = None


def loan_state_save(loan: Loan, before: LoanState, after: LoanState) -> None:
    """Save a repayment's or replay's outcome on the locked loan; principal it repaid goes back to
    the line and program. Principal never goes up here: that would be a bug."""
    loan_state_set(loan, after)
    loan.save(update_fields=[*ACCRUAL_FIELDS, "closed_at"])
    repaid = before.outstanding - after.outstanding
    if repaid < 0:
        raise RuntimeError(f"loan {loan.pk}: a repayment increased principal by {-repaid}")
    credit_repaid(line_id=loan.credit_line_id, program_id=loan.program_id, principal=repaid)
    if repaid > 0:  # what the agent has paid for, the enterprise may now release
        goods_hold_repaid(loan=loan)
    if after.status == LoanStatus.REPAID and before.status != LoanStatus.REPAID:
        security_release(loan)  # a tripartite loan's security deposit goes back to free margin


def repayment_apply_on_time(loan: Loan, request: RepaymentRequest) -> Repayment:
    before = LoanState.of(loan)
    allocation = allocate(request.amount, before)
    repayment = _create(loan, request, allocation, backdated=False)
    loan_state_save(loan, before, apply_allocation(before, allocation))
    return repayment


# --- backdated ----------------------------------------------------------------------------------


def _rewind(
    loan: Loan,
    current: LoanState,
    reversed_rows: list[Accrual],
    later: list[Repayment],
    start: dt.date,
) -> LoanState:
    """The loan as it stood at the end of ``start - 1``: without the reversed accruals and
    without the repayments value-dated ``start`` or later."""
    reversed_by_kind = {
        kind: sum((row.amount for row in reversed_rows if row.kind == kind), ZERO)
        for kind in AccrualKind
    }
    numerators = {kind: _numerator_before(loan, kind, start) for kind in AccrualKind}
    state = replace(
        current,
        outstanding=current.outstanding + sum((r.to_principal for r in later), ZERO),
        interest=current.interest
        - reversed_by_kind[AccrualKind.INTEREST]
        + sum((r.to_interest for r in later), ZERO),
        penalty=current.penalty
        - reversed_by_kind[AccrualKind.PENALTY]
        + sum((r.to_penalty for r in later), ZERO),
        interest_numerator=numerators[AccrualKind.INTEREST],
        interest_posted=current.interest_posted - reversed_by_kind[AccrualKind.INTEREST],
        penalty_numerator=numerators[AccrualKind.PENALTY],
        penalty_posted=current.penalty_posted - reversed_by_kind[AccrualKind.PENALTY],
    )
    _check_rewound(loan, state, start)
    return _status_at(state, AccrualTerms.of(loan), start - dt.timedelta(days=1))


def _check_rewound(loan: Loan, state: LoanState, start: dt.date) -> None:
    """The rewound posted totals are the loan's active accrual rows before ``start``, and the
    exact rounding of their numerator. Rows written before exact arithmetic (migration
    ``0008_exact_interest``) may be a cent off the exact rounding; the replay's first night posts
    that cent. Anything else means the loan and its sub-ledger disagree."""
    rows = dict(
        Accrual.objects.filter(loan=loan, reversed_at__isnull=True, business_date__lt=start)
        .order_by()
        .values("kind")
        .annotate(total=Sum("amount"))
        .values_list("kind", "total")
    )
    basis = basis_for(loan.day_count)
    for kind, numerator, posted in (
        (AccrualKind.INTEREST, state.interest_numerator, state.interest_posted),
        (AccrualKind.PENALTY, state.penalty_numerator, state.penalty_posted),
    ):
        exact = interest_rounded(numerator, basis)
        if posted != rows.get(kind, ZERO) or abs(posted - exact) > CENT:
            raise RuntimeError(
                f"loan {loan.pk}: {kind} posted {posted} before {start}, "
                f"sub-ledger {rows.get(kind, ZERO)}, exact {exact}"
            )


def _numerator_before(loan: Loan, kind: AccrualKind, start: dt.date) -> Decimal:
    last = (
        Accrual.objects.filter(
            loan=loan, kind=kind, reversed_at__isnull=True, business_date__lt=start
        )
        .order_by("-business_date")
        .values_list("numerator", flat=True)
        .first()
    )
    return Decimal(last) if last is not None else Decimal(0)


def _status_at(state: LoanState, terms: AccrualTerms, day: dt.date) -> LoanState:
    accrued = day >= terms.value_date
    past_due = accrued and day > terms.due_date and state.owed > 0
    if state.owed == 0:
        status = LoanStatus.REPAID.value
    else:
        status = LoanStatus.OVERDUE.value if past_due else LoanStatus.ACTIVE.value
    return replace(
        state,
        status=status,
        days_past_due=(day - terms.due_date).days if past_due else 0,
        accrued_through=day if accrued else None,
    )


@dataclass(frozen=True, slots=True)
class Replayed:
    """A loan's days replayed: its state before and after, and the new payment's allocation."""

    before: LoanState
    after: LoanState
    allocation: Allocation | None


def loan_replay(
    loan: Loan,
    *,
    start: dt.date,
    reference: str,
    today: dt.date,
    payment: RepaymentRequest | None = None,
) -> Replayed:
    """Replay a locked loan's days from ``start`` through ``accrued_through`` (with ``payment``).

    Steps 1-4 of the module docstring, keyed ``reverse:``/``replay:``/``unapply:``/``realloc:``
    ``<reference>``; the caller saves the outcome (``loan_state_save``) and records any new
    repayment with ``allocation``.
    """
    accrued_to = loan.accrued_through
    assert accrued_to is not None  # only called for a start on or before it
    current = LoanState.of(loan)
    reversed_rows = list(
        Accrual.objects.filter(loan=loan, reversed_at__isnull=True, business_date__gte=start)
    )
    later = list(
        repayments_locked(Repayment.objects.filter(loan=loan, value_date__gte=start)).order_by(
            "value_date", "id"
        )
    )
    state = _rewind(loan, current, reversed_rows, later, start)
    payments = [Payment(r.value_date, r.amount, index) for index, r in enumerate(later)]
    if payment is not None:
        payments.append(Payment(payment.value_date, payment.amount, len(later)))
    final, allocations, rows = replay(state, AccrualTerms.of(loan), payments, start, accrued_to)
    accruals_reverse(loan, reversed_rows, reference, today)
    loan_accrual_post(
        loan=loan,
        rows=rows,
        key=f"replay:{reference}",
        business_date=today,
        description=f"accruals {start} to {accrued_to} replayed for {reference}",
    )
    _reallocate(loan, later, allocations[: len(later)], reference, today)
    return Replayed(
        before=current,
        after=replace(final, accrued_through=accrued_to),
        allocation=allocations[-1] if payment is not None else None,
    )


def repayment_apply_backdated(loan: Loan, request: RepaymentRequest) -> Repayment:
    replayed = loan_replay(
        loan,
        start=request.value_date,
        reference=request.reference,
        today=request.today,
        payment=request,
    )
    assert replayed.allocation is not None
    repayment = _create(loan, request, replayed.allocation, backdated=True)
    loan_state_save(loan, replayed.before, replayed.after)
    return repayment


def accruals_reverse(loan: Loan, rows: list[Accrual], reference: str, today: dt.date) -> None:
    """Mark the rows reversed and post one reversing entry per kind for their total."""
    Accrual.objects.filter(pk__in=[row.pk for row in rows]).update(reversed_at=clock.now())
    for kind in AccrualKind:
        total = sum((row.amount for row in rows if row.kind == kind), ZERO)
        if total > 0:
            accrual_entry_post(
                program=loan.program,
                kind=kind,
                idempotency_key=f"reverse:{reference}:{kind}",
                business_date=today,
                amount=total,
                loan=loan,
                reverse=True,
                description=f"{kind} accruals reversed for {reference}",
            )


def _reallocate(
    loan: Loan,
    later: list[Repayment],
    allocations: list[Allocation],
    reference: str,
    today: dt.date,
) -> None:
    """Re-post the earlier-recorded repayments whose allocation the replay changed."""
    for repayment, allocation in zip(later, allocations, strict=True):
        if allocation == Allocation.of(repayment):
            continue
        if repayment.journal_entry is not None:
            ledger_reverse(
                entry=repayment.journal_entry,
                idempotency_key=f"unapply:{reference}:{repayment.pk}",
                business_date=today,
                description=f"repayment {repayment.reference} re-allocated after {reference}",
            )
        for name, value in allocation.fields().items():
            setattr(repayment, name, value)
        repayment.journal_entry = _post_repayment(
            loan, repayment, allocation, key=f"realloc:{reference}:{repayment.pk}"
        )
        repayment.save(update_fields=[*allocation.fields(), "journal_entry"])
