"""An account's balance in the ledger, for tests that check what a service posted.

The platform itself reads balances per loan (``lending.selectors.ledger.loan_ledger_balances``)
and checks the whole book (``lending.services.book_check``); a test also wants one account's
balance on its normal side (Dr - Cr for assets and expenses, else Cr - Dr).
"""

from __future__ import annotations

from decimal import Decimal

from lending.models import ACCOUNT_KINDS, AccountCode, AccountKind, JournalLine, Loan
from lending.selectors.ledger import ZERO, cents, money_sum

DEBIT_NORMAL = frozenset({AccountKind.ASSET, AccountKind.EXPENSE})


def account_balance(
    account: AccountCode | str, loan: Loan | int | None = None, currency: str | None = None
) -> Decimal:
    """An account's normal-side balance, optionally for one loan and/or one currency.

    Without ``currency`` the lines must all be in one currency (an ``AssertionError`` otherwise).
    """
    lines = JournalLine.objects.filter(account=AccountCode(account))
    if loan is not None:
        lines = lines.filter(loan_id=loan.pk if isinstance(loan, Loan) else loan)
    if currency is not None:
        lines = lines.filter(currency=currency)
    totals = list(
        lines.order_by()
        .values("currency")
        .annotate(debit=money_sum("debit"), credit=money_sum("credit"))
        .values_list("currency", "debit", "credit")
    )
    assert len(totals) <= 1, f"{account} holds several currencies; name one."
    if not totals:
        return ZERO
    _, debit, credit = totals[0]
    debit, credit = cents(debit), cents(credit)
    if ACCOUNT_KINDS[AccountCode(account)] in DEBIT_NORMAL:
        return debit - credit
    return credit - debit
