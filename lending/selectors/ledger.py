"""Reading the double-entry ledger: loan balances, a loan's lines, and money aggregates.

A loan's balances are the sums of its receivable lines; ``loan_ledger_balances`` reads them for
any number of loans in one grouped query. Aggregates come back as Decimal cents on PostgreSQL and
on SQLite, which sums NUMERIC as floating point (``cents``, ``money_sum``). Posting and reversing
are ``lending.services.ledger``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Context, Decimal

from django.db.models import Case, DecimalField, F, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Coalesce

from scf.money import CENT, MONEY_DIGITS, MONEY_PLACES

from ..models import AccountCode, JournalLine, Loan
from ..services.ledger import LOAN_ACCOUNTS, ZERO

MONEY: DecimalField[Decimal, Decimal] = DecimalField(
    max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES
)


def cents(value: Decimal | int | float) -> Decimal:
    """An aggregate read back from the database, as Decimal cents.

    SQLite sums NUMERIC as floating point and Django only quantizes plain columns there.
    """
    return Decimal(value).quantize(CENT) if isinstance(value, Decimal | int) else _from_float(value)


def _from_float(value: float) -> Decimal:
    return Context(prec=15).create_decimal_from_float(value).quantize(CENT)


def money_sum(expression: str | F, *, filter: Q | None = None) -> Coalesce:
    """SUM of a money expression, zero when there are no rows, typed NUMERIC(18, 2).

    The explicit output field makes SQLite (which sums as floating point) return cents too.
    """
    total = Sum(expression, filter=filter, output_field=MONEY)
    return Coalesce(total, Value(ZERO, output_field=MONEY), output_field=MONEY)


def net_of(account: AccountCode, prefix: str = "") -> Sum:
    """SUM(debit - credit) of the lines on ``account`` (``prefix`` reaches lines via a join)."""
    return Sum(
        Case(
            When(
                Q(**{f"{prefix}account": account}), then=F(f"{prefix}debit") - F(f"{prefix}credit")
            ),
            default=Value(ZERO, output_field=MONEY),
            output_field=MONEY,
        ),
        output_field=MONEY,
    )


@dataclass(frozen=True, slots=True)
class LoanBalances:
    principal: Decimal = ZERO
    interest: Decimal = ZERO
    penalty: Decimal = ZERO


def loan_ledger_balances(loan_ids: Iterable[int] | None = None) -> dict[int, LoanBalances]:
    """Per loan, the principal, interest and penalty receivable in the ledger; one grouped query.

    With ``loan_ids`` every requested loan is in the result (zero when it has no lines).
    """
    lines = JournalLine.objects.filter(loan_id__isnull=False, account__in=LOAN_ACCOUNTS)
    wanted = None if loan_ids is None else list(loan_ids)
    if wanted is not None:
        lines = lines.filter(loan_id__in=wanted)
    rows = (
        lines.order_by()
        .values("loan_id")
        .annotate(
            principal=net_of(AccountCode.PRINCIPAL_RECEIVABLE),
            interest=net_of(AccountCode.INTEREST_RECEIVABLE),
            penalty=net_of(AccountCode.PENALTY_RECEIVABLE),
        )
        .values_list("loan_id", "principal", "interest", "penalty")
    )
    balances = {loan_id: LoanBalances() for loan_id in wanted or ()}
    for loan_id, principal, interest, penalty in rows:
        balances[loan_id] = LoanBalances(cents(principal), cents(interest), cents(penalty))
    return balances


def loan_journal_lines(*, loan: Loan) -> QuerySet[JournalLine]:
    """The loan's journal lines in posting order, each with its entry."""
    return JournalLine.objects.filter(loan=loan).select_related("entry").order_by("entry_id", "id")
