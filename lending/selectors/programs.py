"""Reads for programs: which a user may see, and the program list and detail with their figures.

Every figure is aggregated in the database: the program list is one query whatever the number of
programs, loans or agents (per-program totals are correlated subqueries).

Who sees what: bank staff their bank's programs (``scope.scope_for``); an enterprise admin its enterprise's programs; an agent the
programs it has a line in. Dashboards and grade mixes are for bank staff and the program's own
enterprise admin (``dashboard_programs``). A row the user may not see is reported as missing
(``None``), so the API answers 404, not 403.

Headroom figures (limit, outstanding, reserved) come from the program and line rows, which the
credit services keep exact; "financed" means a loan that reached approved or beyond; "overdue"
means past due as ``lending.dpd`` defines it.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import (
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from orders.models import Role, SalesOrder, User

from ..dpd import PAST_DUE
from ..models import (
    HOLDS_ORDER,
    OPEN,
    RESERVES_CREDIT,
    Bank,
    CreditLine,
    Loan,
    LoanStatus,
    Program,
    ProgramStatus,
)
from .ledger import MONEY, ZERO
from .scope import scope_for

# Financed: a loan that reached approved or beyond (it holds its order, and is past review).
FINANCED = [status for status in HOLDS_ORDER if status != LoanStatus.IN_REVIEW]
# Loans that currently use credit on a line: reserved or outstanding.
LIVE = [*RESERVES_CREDIT, *OPEN]


def programs_visible_to(user: User) -> QuerySet[Program]:
    """Programs a user may see: bank staff their bank's, an enterprise admin its own, an agent
    its lines'."""
    if getattr(user, "is_bank_staff", False):
        return scope_for(user, Program.objects.all(), "bank")
    role = getattr(user, "role", None)
    if role == Role.ENTERPRISE_ADMIN:
        return Program.objects.filter(enterprise_id=user.enterprise_id)
    if role == Role.AGENT and user.agent_id is not None:
        lines = CreditLine.objects.filter(program_id=OuterRef("pk"), agent_id=user.agent_id)
        return Program.objects.filter(Exists(lines))
    return Program.objects.none()


def program_visible_to(*, user: User, program_id: int) -> Program | None:
    """One of the programs ``user`` may see (no figures), or ``None``."""
    return programs_visible_to(user).filter(pk=program_id).first()


def dashboard_programs(user: User) -> QuerySet[Program]:
    """Dashboards and grade mixes are for bank staff and the program's own enterprise admin,
    not for agents."""
    if getattr(user, "is_bank_staff", False):
        return scope_for(user, Program.objects.all(), "bank")
    if getattr(user, "role", None) == Role.ENTERPRISE_ADMIN:
        return Program.objects.filter(enterprise_id=user.enterprise_id)
    return Program.objects.none()


def _per_program(loans: QuerySet[Loan], aggregate: Sum | Count, default: Value) -> Coalesce:
    """One total per program as a correlated subquery (no join, no GROUP BY on the program)."""
    totals = (
        loans.filter(program_id=OuterRef("pk"))
        .order_by()
        .values("program_id")
        .annotate(total=aggregate)
        .values("total")
    )
    return Coalesce(Subquery(totals[:1]), default)


def _with_figures(programs: QuerySet[Program]) -> QuerySet[Program]:
    financed = Loan.objects.filter(status__in=FINANCED)
    overdue = Loan.objects.filter(PAST_DUE)
    zero_money, zero = Value(ZERO, output_field=MONEY), Value(0, output_field=IntegerField())
    lines = (
        CreditLine.objects.filter(program_id=OuterRef("pk"))
        .order_by()
        .values("program_id")
        .annotate(total=Count("pk"))
        .values("total")
    )
    return programs.select_related("bank", "enterprise").annotate(
        utilised=F("outstanding_principal") + F("reserved"),
        financed_order_count=_per_program(financed, Count("pk"), zero),
        financed_order_amount=_per_program(financed, Sum("order_amount"), zero_money),
        financed_principal=_per_program(financed, Sum("principal"), zero_money),
        overdue_count=_per_program(overdue, Count("pk"), zero),
        overdue_outstanding=_per_program(overdue, Sum("outstanding_principal"), zero_money),
        agent_count=Coalesce(Subquery(lines[:1]), zero),
    )


def program_list(*, user: User) -> QuerySet[Program]:
    """The user's programs with headline figures, in one query."""
    return _with_figures(programs_visible_to(user)).order_by("code")


def program_get(*, user: User, program_id: int) -> Program | None:
    """One of the user's programs with its terms and headline figures."""
    return _with_figures(programs_visible_to(user)).filter(pk=program_id).first()


def offer_lines(order: SalesOrder) -> list[CreditLine]:
    """The order's agent's lines in the programs that could finance it (its enterprise's active
    programs in its currency, one per bank or several), with their programs, banks and
    enterprises, by program id: one offer each in the quote, the first the default choice."""
    return list(
        CreditLine.objects.filter(
            agent_id=order.agent_id,
            program__enterprise_id=order.enterprise_id,
            program__currency=order.currency,
            program__status=ProgramStatus.ACTIVE,
        )
        .select_related("program__bank", "program__enterprise")
        .order_by("program_id")
    )


def repayment_account(program: Program) -> str:
    """The lender's account an agent repays a loan of ``program`` into, and the account its
    payouts are sent from: the program's bank's settlement account, else the platform's
    ``LENDER_SETTLEMENT_ACCOUNT``. The bank's payment order, the reminders and the loan page all
    quote this one."""
    return bank_settlement_account(program.bank)


def bank_settlement_account(bank: Bank) -> str:
    """A bank's settlement account as the platform uses it (``repayment_account``'s rule): its
    own number, else the platform's ``LENDER_SETTLEMENT_ACCOUNT``. Its statements are this
    account's."""
    return bank.settlement_account_no or settings.LENDER_SETTLEMENT_ACCOUNT
