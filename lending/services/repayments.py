"""Repayments: money received against a loan, allocated by the waterfall, value-dated.

Design
------
* **Waterfall**: penalty, then interest, then principal; anything left is owed back to the agent
  (``agent_overpayments``). The ledger entry ``repay:<reference>`` is Dr settlement / Cr
  penalty_receivable, interest_receivable, principal_receivable, agent_overpayments, every line
  naming the loan. Principal repaid gives the line and program their headroom back
  (``credit_repaid``); a loan that owes nothing more is ``repaid`` (``closed_at`` set).
* **Value dates.** A payment value-dated D counts before the night of D (see
  ``lending.services.accrual``). If the loan has not been accrued up to D - 1 yet, it is first
  (``loan_accrue_through``), so the payment meets the balances as they stood on D.
* **Backdated** (D on or before ``accrued_through``): the loan is put back where it stood at the
  end of D - 1 and the days are replayed with the payment in them, so it ends exactly as if the
  money had arrived on time, across a COB, across the due date (penalty, DPD and status
  recomputed) and whatever order backdated payments arrive in:

  1. the active accrual rows dated D or later are marked reversed and one reversing entry per
     kind is posted for their total (``reverse:<reference>:<kind>``);
  2. repayments already applied with a value date of D or later are taken back out of the
     balances (their allocation is recomputed below);
  3. from D on, each day applies that day's payments (in value-date, then arrival, order) and
     then accrues (through ``accrued_through``); new accrual rows and one entry per kind for
     their total are posted (``replay:<reference>:<kind>``);
  4. an earlier payment whose allocation changed has its entry reversed
     (``unapply:<reference>:<id>``) and is posted again (``realloc:<reference>:<id>``).

  This path is a per-loan Python loop: it concerns one loan.
* **Exactly once.** ``reference`` is unique on ``Repayment``. A repeat with the same loan,
  amount and value date returns the first repayment and changes nothing; a repeat that differs
  is refused (``repayment_reference_reused``). Concurrent repeats: the second waits on the loan
  lock (same loan) or on the unique index (another loan), then sees the first.
* **Locking.** The program's advisory lock in shared mode (COB takes it exclusively), then the
  loan, its credit line and its program, in that order, all before the state is read.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction

from scf import clock
from scf.errors import Conflict, ValidationFailed
from scf.money import MONEY_PLACES, Money

from ..models import (
    OPEN,
    AccountCode,
    Accrual,
    AccrualKind,
    CreditLine,
    EntryKind,
    JournalEntry,
    Loan,
    LoanStatus,
    Program,
    Repayment,
)
from .accrual import (
    ACCRUAL_FIELDS,
    ZERO,
    AccrualTerms,
    DayAccrual,
    LoanState,
    accrual_entry_post,
    accrue_day,
    days,
    loan_accrual_post,
    loan_accrue_through,
    round_cents,
)
from .audit import actor_label, audit_record
from .cob import program_lock
from .credit import credit_repaid
from .ledger import LedgerKeyReused, Posting, ledger_post, ledger_reverse

MAX_REPAYMENT = Decimal(10) ** 15
REFERENCE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/\-]{0,63}")
REPAYABLE = (*OPEN, LoanStatus.REPAID)


class RepaymentInvalid(ValidationFailed):
    """A field of the repayment is wrong; ``fields`` says which (422 ``validation_error``)."""


class RepaymentCurrencyMismatch(ValidationFailed):
    code = "currency_mismatch"


class RepaymentReferenceReused(Conflict):
    code = "repayment_reference_reused"


class LoanNotRepayable(Conflict):
    code = "loan_not_repayable"


@dataclass(frozen=True, slots=True)
class Allocation:
    penalty: Decimal = ZERO
    interest: Decimal = ZERO
    principal: Decimal = ZERO
    overpayment: Decimal = ZERO

    @classmethod
    def of(cls, repayment: Repayment) -> Allocation:
        return cls(
            repayment.to_penalty,
            repayment.to_interest,
            repayment.to_principal,
            repayment.to_overpayment,
        )

    def as_dict(self) -> dict[str, Decimal]:
        return {
            "penalty": self.penalty,
            "interest": self.interest,
            "principal": self.principal,
            "overpayment": self.overpayment,
        }

    def fields(self) -> dict[str, Decimal]:
        return {f"to_{name}": value for name, value in self.as_dict().items()}


# --- the arithmetic -----------------------------------------------------------------------------


def allocate(amount: Decimal, state: LoanState) -> Allocation:
    """The waterfall: penalty, interest, principal, then overpayment."""
    penalty = min(amount, state.penalty)
    interest = min(amount - penalty, state.interest)
    principal = min(amount - penalty - interest, state.outstanding)
    return Allocation(penalty, interest, principal, amount - penalty - interest - principal)


def apply_allocation(state: LoanState, allocation: Allocation) -> LoanState:
    state = replace(
        state,
        outstanding=state.outstanding - allocation.principal,
        interest=state.interest - allocation.interest,
        penalty=state.penalty - allocation.penalty,
    )
    if state.owed == 0:
        state = replace(state, status=LoanStatus.REPAID.value, days_past_due=0)
    return state


@dataclass(frozen=True, slots=True)
class Payment:
    """A payment to replay: its value date, amount and arrival order."""

    value_date: dt.date
    amount: Decimal
    order: int


def replay(
    state: LoanState,
    terms: AccrualTerms,
    payments: list[Payment],
    start: dt.date,
    accrue_to: dt.date,
) -> tuple[LoanState, list[Allocation], list[DayAccrual]]:
    """From ``start``: each day, that day's payments (in order), then the night's accrual.

    Accrues through ``accrue_to`` only (the loan's ``accrued_through``); payments dated later
    (today's, before tonight's COB) are applied without accruing their day.
    """
    allocations: dict[int, Allocation] = {}
    rows: list[DayAccrual] = []
    ordered = sorted(enumerate(payments), key=lambda item: (item[1].value_date, item[1].order))
    end = max([accrue_to, *(p.value_date for p in payments)])
    for day in days(start, end):
        for index, payment in ordered:
            if payment.value_date == day:
                allocations[index] = allocate(payment.amount, state)
                state = apply_allocation(state, allocations[index])
        if day <= accrue_to:
            state, day_rows = accrue_day(state, terms, day)
            rows.extend(day_rows)
    return state, [allocations[index] for index in range(len(payments))], rows


# --- validation ---------------------------------------------------------------------------------


def _clean_amount(amount: Money | Decimal, loan: Loan) -> Decimal:
    value = amount.amount if isinstance(amount, Money) else amount
    if isinstance(amount, Money) and amount.currency != loan.currency:
        raise RepaymentCurrencyMismatch(
            f"The loan is in {loan.currency}, not {amount.currency}.",
            fields={"currency": [f"Must be {loan.currency}, the loan's currency."]},
        )
    problem = ""
    if not isinstance(value, Decimal) or not value.is_finite():
        problem = "Must be a finite decimal amount."
    elif value <= 0:
        problem = "Must be greater than zero."
    elif value > MAX_REPAYMENT:
        problem = f"Must be at most {MAX_REPAYMENT:,}."
    elif value != value.quantize(Decimal(1).scaleb(-MONEY_PLACES)):
        problem = "At most two decimal places."
    if problem:
        raise RepaymentInvalid(f"Invalid amount: {problem}", fields={"amount": [problem]})
    return value.quantize(Decimal("0.01"))


def _clean_reference(reference: str) -> str:
    cleaned = reference.strip() if isinstance(reference, str) else ""
    if not REFERENCE_PATTERN.fullmatch(cleaned):
        message = (
            "1 to 64 characters: letters, digits and . _ : / - (starting with a letter or digit)."
        )
        raise RepaymentInvalid(f"Invalid reference. {message}", fields={"reference": [message]})
    return cleaned


def _check_value_date(loan: Loan, value_date: dt.date, today: dt.date) -> None:
    problem = ""
    if not isinstance(value_date, dt.date) or isinstance(value_date, dt.datetime):
        problem = "Must be a date."
    elif value_date > today:
        problem = f"Must not be in the future (today is {today} in {loan.program.time_zone})."
    elif loan.value_date is not None and value_date < loan.value_date:
        problem = f"Must not be before the loan's value date {loan.value_date}."
    if problem:
        raise RepaymentInvalid(f"Invalid value date: {problem}", fields={"value_date": [problem]})


def _check_repayable(loan: Loan) -> None:
    if loan.status not in REPAYABLE or loan.value_date is None:
        raise LoanNotRepayable(
            f"Loan {loan.reference} is {loan.status}: it cannot take repayments."
        )


def _existing(reference: str, loan: Loan, amount: Decimal, value_date: dt.date) -> Repayment | None:
    found = Repayment.objects.filter(reference=reference).first()
    if found is None:
        return None
    if (found.loan_id, found.amount, found.value_date) != (loan.pk, amount, value_date):
        raise RepaymentReferenceReused(
            f"Reference {reference!r} was already used for another repayment.",
            fields={"reference": ["Already used for a different repayment."]},
        )
    return found


# --- the service --------------------------------------------------------------------------------


def loan_for_reference(reference: str) -> Loan | None:
    """The loan an agent's payment reference names (as printed on its schedule), if any."""
    cleaned = reference.strip() if isinstance(reference, str) else ""
    if not cleaned:
        return None
    return Loan.objects.filter(reference__iexact=cleaned).select_related("program").first()


def repayment_record(
    *,
    loan: Loan,
    amount: Money | Decimal,
    value_date: dt.date,
    reference: str,
    source: str,
    actor: Any,
    today: dt.date | None = None,
) -> Repayment:
    """Record and apply a repayment (see the module docstring); the existing one on a repeat."""
    repayment, _ = repayment_record_outcome(
        loan=loan,
        amount=amount,
        value_date=value_date,
        reference=reference,
        source=source,
        actor=actor,
        today=today,
    )
    return repayment


def repayment_record_outcome(
    *,
    loan: Loan,
    amount: Money | Decimal,
    value_date: dt.date,
    reference: str,
    source: str,
    actor: Any,
    today: dt.date | None = None,
) -> tuple[Repayment, bool]:
    """``repayment_record``, also saying whether this call created the repayment.

    Validation errors are raised before anything is written: ``RepaymentInvalid`` (amount,
    reference, value date), ``RepaymentCurrencyMismatch``, ``LoanNotRepayable``,
    ``RepaymentReferenceReused``.
    """
    value = _clean_amount(amount, loan)
    reference = _clean_reference(reference)
    existing = _existing(reference, loan, value, value_date)
    if existing is not None:
        return existing, False
    today = today or clock.business_date(loan.program.time_zone)
    _check_value_date(loan, value_date, today)
    try:
        with transaction.atomic():
            return _record(loan.pk, value, value_date, reference, source, actor, today)
    except (IntegrityError, LedgerKeyReused):
        # Another request with this reference committed first (on another loan, or racing).
        existing = _existing(reference, loan, value, value_date)
        if existing is None:
            raise
        return existing, False


@dataclass(frozen=True, slots=True)
class _Request:
    amount: Decimal
    value_date: dt.date
    reference: str
    source: str
    actor: Any
    today: dt.date


def _lock(loan_id: int) -> Loan:
    """Advisory lock (shared), then loan -> credit line -> program."""
    program_id = Loan.objects.values_list("program_id", flat=True).get(pk=loan_id)
    program_lock(program_id, exclusive=False)
    loan = Loan.objects.select_for_update().select_related("program").get(pk=loan_id)
    CreditLine.objects.select_for_update().filter(pk=loan.credit_line_id).get()
    Program.objects.select_for_update().filter(pk=loan.program_id).get()
    return loan


def _record(
    loan_id: int,
    amount: Decimal,
    value_date: dt.date,
    reference: str,
    source: str,
    actor: Any,
    today: dt.date,
) -> tuple[Repayment, bool]:
    loan = _lock(loan_id)
    existing = _existing(reference, loan, amount, value_date)
    if existing is not None:
        return existing, False
    _check_repayable(loan)
    request = _Request(amount, value_date, reference, source, actor, today)
    if loan.status in OPEN and value_date > loan.value_date:  # type: ignore[operator]
        loan_accrue_through(
            loan=loan, through=value_date - dt.timedelta(days=1), key=f"accrue:{reference}"
        )
    if loan.accrued_through is not None and value_date <= loan.accrued_through:
        repayment = _record_backdated(loan, request)
    else:
        repayment = _record_on_time(loan, request)
    audit_record(
        actor=actor,
        action="repayment_recorded",
        obj=repayment,
        after={
            "loan": loan.reference,
            "amount": str(amount),
            "value_date": str(value_date),
            "backdated": repayment.backdated,
            **{k: str(v) for k, v in Allocation.of(repayment).as_dict().items()},
            "loan_status": loan.status,
        },
    )
    return repayment, True


def _create(loan: Loan, request: _Request, allocation: Allocation, backdated: bool) -> Repayment:
    repayment = Repayment.objects.create(
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
    repayment.journal_entry = _post_repayment(
        loan, repayment, allocation, key=f"repay:{request.reference}"
    )
    repayment.save(update_fields=["journal_entry"])
    return repayment


def _post_repayment(
    loan: Loan, repayment: Repayment, allocation: Allocation, *, key: str
) -> JournalEntry:
    postings = [Posting.dr(AccountCode.SETTLEMENT, repayment.amount, loan=loan)]
    parts = (
        (AccountCode.PENALTY_RECEIVABLE, allocation.penalty),
        (AccountCode.INTEREST_RECEIVABLE, allocation.interest),
        (AccountCode.PRINCIPAL_RECEIVABLE, allocation.principal),
        (AccountCode.AGENT_OVERPAYMENTS, allocation.overpayment),
    )
    postings += [Posting.cr(account, part, loan=loan) for account, part in parts if part > 0]
    return ledger_post(
        kind=EntryKind.REPAYMENT,
        idempotency_key=key,
        business_date=repayment.value_date,
        currency=loan.currency,
        postings=postings,
        loan=loan,
        program=loan.program,
        description=f"repayment {repayment.reference}, loan {loan.reference}",
    )


def _save_loan(loan: Loan, before: LoanState, after: LoanState) -> None:
    after.apply_to(loan)
    if after.status == LoanStatus.REPAID:
        loan.closed_at = loan.closed_at or clock.now()
    else:
        loan.closed_at = None
    loan.save(update_fields=[*ACCRUAL_FIELDS, "closed_at"])
    repaid = before.outstanding - after.outstanding
    if repaid < 0:
        raise RuntimeError(f"loan {loan.pk}: a repayment increased principal by {-repaid}")
    credit_repaid(line_id=loan.credit_line_id, program_id=loan.program_id, principal=repaid)


def _record_on_time(loan: Loan, request: _Request) -> Repayment:
    before = LoanState.of(loan)
    allocation = allocate(request.amount, before)
    repayment = _create(loan, request, allocation, backdated=False)
    _save_loan(loan, before, apply_allocation(before, allocation))
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
    prior_raw = {kind: _raw_before(loan, kind, start) for kind in AccrualKind}
    state = replace(
        current,
        outstanding=current.outstanding + sum((r.to_principal for r in later), ZERO),
        interest=current.interest
        - reversed_by_kind[AccrualKind.INTEREST]
        + sum((r.to_interest for r in later), ZERO),
        penalty=current.penalty
        - reversed_by_kind[AccrualKind.PENALTY]
        + sum((r.to_penalty for r in later), ZERO),
        interest_raw=prior_raw[AccrualKind.INTEREST],
        interest_posted=current.interest_posted - reversed_by_kind[AccrualKind.INTEREST],
        penalty_raw=prior_raw[AccrualKind.PENALTY],
        penalty_posted=current.penalty_posted - reversed_by_kind[AccrualKind.PENALTY],
    )
    if (state.interest_posted, state.penalty_posted) != (
        round_cents(state.interest_raw),
        round_cents(state.penalty_raw),
    ):
        raise RuntimeError(f"loan {loan.pk}: accrual sub-ledger and loan cumulatives disagree")
    return _status_at(state, AccrualTerms.of(loan), start - dt.timedelta(days=1))


def _raw_before(loan: Loan, kind: AccrualKind, start: dt.date) -> Decimal:
    last = (
        Accrual.objects.filter(
            loan=loan, kind=kind, reversed_at__isnull=True, business_date__lt=start
        )
        .order_by("-business_date")
        .values_list("raw_cumulative", flat=True)
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


def _record_backdated(loan: Loan, request: _Request) -> Repayment:
    start, accrued_to = request.value_date, loan.accrued_through
    assert accrued_to is not None  # only called for a value date on or before it
    now = clock.now()
    current = LoanState.of(loan)
    reversed_rows = list(
        Accrual.objects.filter(loan=loan, reversed_at__isnull=True, business_date__gte=start)
    )
    later = list(
        Repayment.objects.select_for_update()
        .filter(loan=loan, value_date__gte=start)
        .order_by("value_date", "id")
    )
    state = _rewind(loan, current, reversed_rows, later, start)
    payments = [Payment(r.value_date, r.amount, index) for index, r in enumerate(later)]
    payments.append(Payment(request.value_date, request.amount, len(later)))
    final, allocations, rows = replay(state, AccrualTerms.of(loan), payments, start, accrued_to)
    _reverse_accruals(loan, reversed_rows, request, now)
    loan_accrual_post(
        loan=loan,
        rows=rows,
        key=f"replay:{request.reference}",
        business_date=request.today,
        description=f"accruals {start} to {accrued_to} replayed for {request.reference}",
    )
    _reallocate(loan, later, allocations[:-1], request)
    repayment = _create(loan, request, allocations[-1], backdated=True)
    _save_loan(loan, current, replace(final, accrued_through=accrued_to))
    return repayment


def _reverse_accruals(loan: Loan, rows: list[Accrual], request: _Request, now: dt.datetime) -> None:
    """Mark the rows reversed and post one reversing entry per kind for their total."""
    reference = request.reference
    Accrual.objects.filter(pk__in=[row.pk for row in rows]).update(reversed_at=now)
    for kind in AccrualKind:
        total = sum((row.amount for row in rows if row.kind == kind), ZERO)
        if total > 0:
            accrual_entry_post(
                program=loan.program,
                kind=kind,
                idempotency_key=f"reverse:{reference}:{kind}",
                business_date=request.today,
                amount=total,
                loan=loan,
                reverse=True,
                description=f"{kind} accruals reversed for backdated repayment {reference}",
            )


def _reallocate(
    loan: Loan, later: list[Repayment], allocations: list[Allocation], request: _Request
) -> None:
    """Re-post the earlier-recorded repayments whose allocation the replay changed."""
    for repayment, allocation in zip(later, allocations, strict=True):
        if allocation == Allocation.of(repayment):
            continue
        if repayment.journal_entry is not None:
            ledger_reverse(
                entry=repayment.journal_entry,
                idempotency_key=f"unapply:{request.reference}:{repayment.pk}",
                business_date=request.today,
                description=f"repayment {repayment.reference} re-allocated after {request.reference}",
            )
        for name, value in allocation.fields().items():
            setattr(repayment, name, value)
        repayment.journal_entry = _post_repayment(
            loan, repayment, allocation, key=f"realloc:{request.reference}:{repayment.pk}"
        )
        repayment.save(update_fields=[*allocation.fields(), "journal_entry"])
