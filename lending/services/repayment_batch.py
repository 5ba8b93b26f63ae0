"""Many repayments at once: a bank file's matched credits, recorded set-based.

``repayments_record_batch`` records a batch of credits (a few thousand, of many loans) in the
caller's transaction with the same outcome, row for row, as ``repayment_record`` would have for
each in turn: the same checks (``repayment_checks``), the same catch-up accrual
(``loan_catch_up``, keyed ``accrue:<reference>``), the same waterfall (``allocate``,
``apply_allocation``), the same repayment rows, ledger entries (``repay:<reference>``, one per
repayment: a later backdated payment may reverse and re-post one alone), loan columns, credit
given back to the lines and programs, goods holds raised, security deposits released and audit
rows. What differs is how it is written: the arithmetic runs in Python over one locked read of
the loans, and every table is written in one or a few bulk statements (``catch_ups_post``,
``ledger_post_new``, ``bulk_create``, ``rows_update``, ``credits_repaid``,
``goods_holds_repaid``), so a credit costs a few rows, not two dozen round trips.

It takes only the common case and **declines** the rest, which the caller records one by one
through ``repayment_record`` (same outcome, errors included):

* a loan that is not open (repaid, written off...), or under a guarantee claim;
* a payment value-dated on or before the loan's last accrual (backdated: the days are replayed);
* a credit the single path would refuse or answer from history: invalid amount or reference,
  another currency, a value date in the future or before the loan's, a reference already used;
* every credit of a loan whose credits in the batch do not share one value date (their order
  against the nights between them is the replay's business).

Several credits of one loan with one value date are applied in the caller's order, as the
single path would apply them one after another.

Locks (``lending.locks``): every program's advisory lock in shared mode, in id order, then the
loans (id order), then their lines; the program rows are updated last (``credits_repaid``), so
they are held from there to the commit only. The caller's transaction holds no savepoint per
credit: one transaction locks each program row once (see ``integrations.bank.files.matched`` on
why that matters).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from scf import clock
from scf.errors import ApplicationError
from scf.money import Money
from scf.sql import rows_update

from ..locks import lines_lock_ids, loans_locked, program_lock
from ..models import OPEN, AuditLog, GoodsHold, GuaranteeClaim, Loan, LoanStatus, Repayment
from .accrual import ACCRUAL_FIELDS, LoanState
from .accrual_loan import CatchUp, catch_ups_post, loan_catch_up
from .audit import audit_build
from .credit import credits_repaid
from .ledger_batch import ledger_post_new
from .margin_finance import security_release
from .releases import goods_holds_repaid
from .repayment_apply import (
    RepaymentRequest,
    loan_state_set,
    repayment_entry,
    repayment_new,
)
from .repayments import RECORDED, repayment_audit_after, repayment_checks
from .waterfall import Allocation, allocate, apply_allocation


@dataclass(frozen=True, slots=True)
class Credit:
    """One credit to record: ``key`` is the caller's (a statement entry's id); a ``value_date``
    of None is the program's business date, as the single path's caller takes it."""

    key: int
    loan_id: int
    amount: Decimal
    currency: str
    value_date: dt.date | None
    reference: str


@dataclass
class BatchResult:
    """``recorded``: key -> the repayment's ledger entry key; ``declined``: keys, in the
    caller's order, for the single path."""

    recorded: dict[int, str] = field(default_factory=dict)
    declined: list[int] = field(default_factory=list)


@dataclass
class _Loan:
    """One loan's part of the batch, computed before anything is written."""

    loan: Loan
    caught: CatchUp | None
    repaid: Decimal
    closes: bool
    repayments: list[tuple[int, Repayment, Allocation, dict[str, Any]]]


def _plan(
    loan: Loan,
    credits: list[Credit],
    *,
    taken: set[str],
    claimed: set[int],
    source: str,
    actor: Any,
) -> _Loan | None:
    """The loan's repayments, or None to decline all its credits. Moves ``loan`` in memory."""
    today = clock.business_date(loan.program.time_zone)
    dates = {credit.value_date or today for credit in credits}
    if len(dates) != 1 or loan.pk in claimed or loan.status not in OPEN:
        return None
    [value_date] = dates
    if loan.accrued_through is not None and value_date <= loan.accrued_through:
        return None  # backdated: the replay is the single path's
    requests = []
    for credit in credits:
        try:
            amount, reference = repayment_checks(
                loan=loan,
                amount=Money(credit.amount, credit.currency),
                value_date=value_date,
                reference=credit.reference,
                today=today,
            )
        except ApplicationError:
            return None
        if reference in taken:
            return None
        requests.append(RepaymentRequest(amount, value_date, reference, source, actor, today))
    caught = None
    if value_date > loan.value_date:  # type: ignore[operator]  # open loans have one
        caught = loan_catch_up(
            loan=loan,
            through=value_date - dt.timedelta(days=1),
            key=f"accrue:{requests[0].reference}",
        )
    state = caught.state if caught is not None else LoanState.of(loan)
    start = state
    planned = []
    for credit, request in zip(credits, requests, strict=True):
        allocation = allocate(request.amount, state)
        state = apply_allocation(state, allocation)
        repayment = repayment_new(loan, request, allocation, backdated=False)
        loan_state_set(loan, state)
        planned.append((credit.key, repayment, allocation, repayment_audit_after(repayment, loan)))
    return _Loan(
        loan=loan,
        caught=caught,
        repaid=start.outstanding - state.outstanding,
        closes=state.status == LoanStatus.REPAID,
        repayments=planned,
    )


def _lock(credits: Sequence[Credit]) -> dict[int, Loan]:
    loan_ids = sorted({credit.loan_id for credit in credits})
    program_ids = sorted(
        set(Loan.objects.filter(pk__in=loan_ids).values_list("program_id", flat=True))
    )
    for program_id in program_ids:
        program_lock(program_id, exclusive=False)
    loans = {
        loan.pk: loan
        for loan in loans_locked(Loan.objects.filter(pk__in=loan_ids))
        .select_related("program")
        .order_by("pk")
    }
    lines_lock_ids(sorted({loan.credit_line_id for loan in loans.values()}))
    return loans


def repayments_record_batch(credits: Sequence[Credit], *, source: str, actor: Any) -> BatchResult:
    """Record ``credits`` (see the module docstring) inside the caller's transaction."""
    result = BatchResult()
    if not credits:
        return result
    loans = _lock(credits)
    by_loan: dict[int, list[Credit]] = defaultdict(list)
    for credit in credits:
        by_loan[credit.loan_id].append(credit)
    references = [credit.reference for credit in credits]
    taken = set(
        Repayment.objects.filter(reference__in=references).values_list("reference", flat=True)
    )
    claimed = set(
        GuaranteeClaim.objects.filter(loan_id__in=list(loans)).values_list("loan_id", flat=True)
    )
    plans: list[_Loan] = []
    for loan_id in sorted(by_loan):
        loan = loans.get(loan_id)
        plan = None
        if loan is not None:
            plan = _plan(
                loan, by_loan[loan_id], taken=taken, claimed=claimed, source=source, actor=actor
            )
        if plan is None:
            result.declined.extend(credit.key for credit in by_loan[loan_id])
        else:
            plans.append(plan)
    _write(plans, actor)
    for plan in plans:
        for key, repayment, _, _ in plan.repayments:
            result.recorded[key] = f"repay:{repayment.reference}"
    order = {credit.key: n for n, credit in enumerate(credits)}
    result.declined.sort(key=order.__getitem__)
    return result


def _write(plans: list[_Loan], actor: Any) -> None:
    """Every table, in a few statements per table."""
    if not plans:
        return
    catch_ups_post([plan.caught for plan in plans if plan.caught is not None])
    made = [(plan.loan, r) for plan in plans for r in plan.repayments]
    entries = ledger_post_new(
        [
            repayment_entry(loan, repayment, allocation, key=f"repay:{repayment.reference}")
            for loan, (_, repayment, allocation, _) in made
        ]
    )
    for (_, (_, repayment, _, _)), entry in zip(made, entries, strict=True):
        repayment.journal_entry = entry
    Repayment.objects.bulk_create([r for _, (_, r, _, _) in made], batch_size=2000)
    rows_update([plan.loan for plan in plans], [*ACCRUAL_FIELDS, "closed_at"])
    goods_holds_repaid(loan_ids=[plan.loan.pk for plan in plans if plan.repaid > 0])
    # A closing tripartite loan's security deposit goes back to free margin: one read finds
    # the few loans that hold one, rather than a lookup per closing loan.
    closing = {plan.loan.pk: plan.loan for plan in plans if plan.closes}
    secured = GoodsHold.objects.filter(loan_id__in=list(closing), security__gt=0)
    for loan_id in sorted(secured.values_list("loan_id", flat=True)):
        security_release(closing[loan_id])
    AuditLog.objects.bulk_create(
        [
            audit_build(actor=actor, action=RECORDED, obj=repayment, after=after)
            for _, (_, repayment, _, after) in made
        ],
        batch_size=2000,
    )
    # Last: the program rows are shared by every writer of the program; held to the commit only.
    repaid: dict[tuple[int, int], Decimal] = defaultdict(Decimal)
    for plan in plans:
        repaid[(plan.loan.credit_line_id, plan.loan.program_id)] += plan.repaid
    credits_repaid(principal=repaid)
