"""Reads of loans, their repayments and payment, and of the orders they finance.

A user sees the loans ``Loan.objects.visible_to`` gives (an agent its own, an enterprise admin its
programs'), bank staff their bank's (``scope.scope_for``); a loan it may not see is ``None`` (a
404). Bank staff see the orders of the enterprises their bank has a program with. Aggregates in the database;
no query per row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db.models import Exists, OuterRef, Q, QuerySet

from orders.models import SalesOrder, User
from orders.selectors import order_get, order_list
from scf import clock

from ..engine import FINANCEABLE_STATUSES
from ..models import (
    HOLDS_ORDER,
    OPEN,
    Disbursement,
    DisbursementStatus,
    Loan,
    Program,
    ProgramStatus,
    Repayment,
)
from .scope import is_bank_staff, scope_for

# From an order to the banks it can be financed by: those of its enterprise's programs.
ORDER_BANKS = "enterprise__programs__bank"


def _loans(user: User) -> QuerySet[Loan]:
    return scope_for(user, Loan.objects.visible_to(user), "program__bank")


def loan_list(*, user: User, status: str | None = None) -> QuerySet[Loan]:
    loans = _loans(user).select_related("program", "agent", "order", "goods_hold")
    if status:
        loans = loans.filter(status=status)
    return loans


def loan_get(*, user: User, loan_id: int) -> Loan | None:
    return (
        _loans(user)
        .select_related("program", "agent", "order", "decision", "goods_hold")
        .filter(pk=loan_id)
        .first()
    )


def loan_as_stored(*, loan_id: int) -> Loan:
    """The loan row as it is now (its balances after a repayment), for a caller that has already
    checked the user may see it."""
    return Loan.objects.get(pk=loan_id)


def repayment_list(*, loan: Loan) -> QuerySet[Repayment]:
    """The loan's repayments by value date."""
    return Repayment.objects.filter(loan=loan).order_by("value_date", "id")


def disbursement_get(*, loan: Loan) -> Disbursement | None:
    """The loan's payment to the agent, if one was made or tried."""
    return Disbursement.objects.filter(loan=loan).first()


def loans_past_due(*, agent_ids: Iterable[int], more_than: int = 0) -> QuerySet[Loan]:
    """The agents' open loans more than ``more_than`` days past due (the loans the decision's
    ``agent_max_dpd`` looks at), worst first: the ones to repay to finance again."""
    return Loan.objects.filter(
        agent_id__in=list(agent_ids), status__in=OPEN, days_past_due__gt=more_than
    ).order_by("-days_past_due", "id")


def financeable_orders(orders: QuerySet[SalesOrder]) -> QuerySet[SalesOrder]:
    """Orders that could be financed now: right status, an active program, no loan holding it."""
    return orders.filter(status__in=FINANCEABLE_STATUSES).filter(
        Exists(
            Program.objects.filter(
                enterprise_id=OuterRef("enterprise_id"),
                currency=OuterRef("currency"),
                status=ProgramStatus.ACTIVE,
            )
        ),
        ~Exists(Loan.objects.filter(order_id=OuterRef("pk"), status__in=HOLDS_ORDER)),
    )


def order_list_for_lending(
    *,
    user: User,
    status: str | None = None,
    financeable: bool | None = None,
    search: str = "",
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    sort: str = "",
) -> QuerySet[SalesOrder]:
    """``order_list`` with its filters; only the financeable orders when asked."""
    orders = order_list(
        user=user, status=status, search=search, date_from=date_from, date_to=date_to, sort=sort
    )
    orders = scope_for(user, orders, ORDER_BANKS)
    if financeable is True:
        orders = financeable_orders(orders)
    return orders


def order_get_for_lending(*, user: User, order_id: int) -> SalesOrder | None:
    """``order_get``, for bank staff only an order of an enterprise their bank works with."""
    order = order_get(user=user, order_id=order_id)
    if order is None or not is_bank_staff(user):
        return order
    return (
        order
        if scope_for(user, SalesOrder.objects.filter(pk=order.pk), ORDER_BANKS).exists()
        else None
    )


# A disbursement still to be paid out (neither settled nor failed).
PAYING = (DisbursementStatus.PENDING, DisbursementStatus.SENT)


def disbursements_due(
    *, min_age_seconds: float, limit: int = 500, now: dt.datetime | None = None
) -> list[int]:
    """Ids of disbursements to (re)dispatch: pending or sent, created at least
    ``min_age_seconds`` ago (younger ones have a dispatch in flight), lease free or expired,
    retry time reached. Oldest first. Reads only; no locks (the lease decides who works one).
    """
    now = now or clock.now()
    due = (
        Disbursement.objects.filter(
            status__in=PAYING, created_at__lte=now - dt.timedelta(seconds=min_age_seconds)
        )
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=now))
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("id")
        .values_list("id", flat=True)
    )
    return list(due[:limit])
