"""Reads for the lending APIs and pages. Aggregates in the database; no query per row."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet

from orders.models import SalesOrder, User
from orders.selectors import order_list

from .engine import FINANCEABLE_STATUSES
from .models import HOLDS_ORDER, JournalLine, Loan, Program, ProgramStatus


def loan_list(*, user: User, status: str | None = None) -> QuerySet[Loan]:
    loans = Loan.objects.visible_to(user).select_related("program", "agent", "order")
    if status:
        loans = loans.filter(status=status)
    return loans


def loan_get(*, user: User, loan_id: int) -> Loan | None:
    return (
        Loan.objects.visible_to(user)
        .select_related("program", "agent", "order", "decision")
        .filter(pk=loan_id)
        .first()
    )


def loan_journal_lines(*, loan: Loan) -> QuerySet[JournalLine]:
    return JournalLine.objects.filter(loan=loan).select_related("entry").order_by("entry_id", "id")


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
    *, user: User, status: str | None = None, financeable: bool | None = None
) -> QuerySet[SalesOrder]:
    orders = order_list(user=user, status=status)
    if financeable is True:
        orders = financeable_orders(orders)
    return orders
