"""The book check's margin part: margin accounts against their movements and the ledger.

1. each margin account's ``free``, ``committed`` and ``security`` equal the fold of its
   append-only movements (deposits in, commits from free to committed, pay-outs, security held,
   released and applied, withdrawals and their returns);
2. per program, the ledger's ``margin_free`` balance equals the accounts' ``free`` plus the
   withdrawals in flight (taken out of ``free`` when asked, posted when the bank pays them) plus
   the pending commits (moved to ``committed`` at the click, posted at settlement:
   ``margin_ledger``), ``margin_committed`` equals ``committed`` less the pending commits and
   ``security_deposits`` equals ``security``;
3. every line on a margin account belongs to an entry that names its program.

Each is one grouped query returning only the rows that disagree, like the rest of the check.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from django.db.models import F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce, Round

from ..models import (
    AccountCode,
    JournalLine,
    MarginAccount,
    MarginMovementKind,
    MarginWithdrawal,
    Program,
)
from ..selectors.ledger import MONEY, cents, money_sum
from .book_check import Difference
from .ledger import ZERO
from .margin import IN_FLIGHT
from .margin_ledger import pending_commits

K = MarginMovementKind
# How each movement kind moves each balance: +1 adds its amount, -1 takes it away.
EFFECTS: dict[str, dict[str, int]] = {
    "free": {
        K.DEPOSIT: 1,
        K.COMMIT: -1,
        K.UNCOMMIT: 1,
        K.WITHDRAW: -1,
        K.WITHDRAW_REVERSED: 1,
        K.SECURITY_RELEASE: 1,
    },
    "committed": {K.COMMIT: 1, K.UNCOMMIT: -1, K.PAY_OUT: -1, K.SECURITY_HOLD: -1},
    "security": {K.SECURITY_HOLD: 1, K.SECURITY_RELEASE: -1, K.SECURITY_APPLY: -1},
}
LEDGER_ACCOUNTS = {
    "free": AccountCode.MARGIN_FREE,
    "committed": AccountCode.MARGIN_COMMITTED,
    "security": AccountCode.SECURITY_DEPOSITS,
}
MARGIN_ACCOUNTS = list(LEDGER_ACCOUNTS.values())


def _folded(balance: str) -> Any:
    parts = [
        sign * Coalesce(money_sum("movements__amount", filter=Q(movements__kind=kind)), ZERO)
        for kind, sign in EFFECTS[balance].items()
    ]
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def _account_differences() -> Iterator[Difference]:
    rows = (
        MarginAccount.objects.order_by()
        .annotate(**{f"moved_{name}": _folded(name) for name in EFFECTS})
        .annotate(**{f"diff_{name}": Round(F(name) - F(f"moved_{name}"), 2) for name in EFFECTS})
        .filter(~Q(diff_free=0) | ~Q(diff_committed=0) | ~Q(diff_security=0))
        .order_by("pk")
    )
    for account in rows.iterator():
        for name in EFFECTS:
            shown, moved = cents(getattr(account, name)), cents(getattr(account, f"moved_{name}"))
            if shown != moved:
                yield Difference(
                    f"margin_{name}", f"margin account {account.reference}", moved, shown
                )


def _ledger_balance(code: str) -> Coalesce:
    lines = (
        JournalLine.objects.filter(entry__program_id=OuterRef("pk"), account=code)
        .order_by()
        .values("entry__program_id")
        .annotate(net=Sum(F("credit") - F("debit")))
        .values("net")
    )
    return Coalesce(Subquery(lines, output_field=MONEY), ZERO)


def _in_flight() -> Coalesce:
    rows = (
        MarginWithdrawal.objects.filter(account__program_id=OuterRef("pk"), status__in=IN_FLIGHT)
        .order_by()
        .values("account__program_id")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    return Coalesce(Subquery(rows, output_field=MONEY), ZERO)


def _pending() -> Coalesce:
    rows = (
        pending_commits()
        .filter(account__program_id=OuterRef("pk"))
        .order_by()
        .values("account__program_id")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    return Coalesce(Subquery(rows, output_field=MONEY), ZERO)


def _program_differences() -> Iterator[Difference]:
    rows = (
        Program.objects.order_by()
        .annotate(
            acct_free=Coalesce(money_sum("margin_accounts__free"), ZERO),
            acct_committed=Coalesce(money_sum("margin_accounts__committed"), ZERO),
            acct_security=Coalesce(money_sum("margin_accounts__security"), ZERO),
        )
        .annotate(
            led_free=_ledger_balance(AccountCode.MARGIN_FREE),
            led_committed=_ledger_balance(AccountCode.MARGIN_COMMITTED),
            led_security=_ledger_balance(AccountCode.SECURITY_DEPOSITS),
            in_flight=_in_flight(),
            pending=_pending(),
        )
        .annotate(
            diff_free=Round(F("led_free") - F("acct_free") - F("in_flight") - F("pending"), 2),
            diff_committed=Round(F("led_committed") - F("acct_committed") + F("pending"), 2),
            diff_security=Round(F("led_security") - F("acct_security"), 2),
        )
        .filter(~Q(diff_free=0) | ~Q(diff_committed=0) | ~Q(diff_security=0))
        .order_by("pk")
    )
    for program in rows.iterator():
        for name in EFFECTS:
            expected: Decimal = cents(getattr(program, f"led_{name}"))
            actual = cents(getattr(program, f"acct_{name}"))
            if name == "free":
                actual += cents(program.in_flight) + cents(program.pending)
            elif name == "committed":
                actual -= cents(program.pending)
            if expected != actual:
                yield Difference(
                    f"ledger_margin_{name}", f"program {program.code}", expected, actual
                )


def _unassigned_margin_lines() -> Iterator[Difference]:
    count = JournalLine.objects.filter(
        account__in=MARGIN_ACCOUNTS, entry__program__isnull=True
    ).count()
    if count:
        yield Difference("margin_lines_without_program", "margin journal lines", 0, count)


def margin_differences() -> Iterator[Difference]:
    yield from _account_differences()
    yield from _program_differences()
    yield from _unassigned_margin_lines()
