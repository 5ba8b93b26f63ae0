"""The book check's tripartite part: goods holds, releases, claims and caps against their rows
and the ledger (``lending.services.book_check`` runs it in the same snapshot).

7. each goods hold's ``released_value`` is the sum of its authorised releases;
8. each claim's ``amount - paid`` is its loan's guarantee_receivable balance in the ledger (a
   ``cap_exhausted`` claim has none), and no guarantee_receivable line names no loan;
9. each program's ``program_cap_used`` and each agreement's ``agent_cap_used`` is the unpaid
   part of their claims (the guarantee is used when a claim is raised and released as paid);
10. each SKU row of a hold (``GoodsHoldLine``) has released what the hold's authorised releases
    by lines took of that SKU.

One grouped query per check, returning only the rows that disagree; check 10 sums the releases'
line lists in Python (JSON lists, read once; few releases name lines).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from django.db.models import F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Round

from ..models import (
    AccountCode,
    Agreement,
    GoodsHold,
    GoodsHoldLine,
    GuaranteeClaim,
    JournalLine,
    Release,
    ReleaseStatus,
    TripartiteTerms,
)
from ..selectors.ledger import MONEY, cents, money_sum
from .ledger import ZERO

QUANTITY = Decimal("0.0001")
# (check, subject, expected, actual): ``book_check`` makes each a ``Difference``.
Row = tuple[str, str, Decimal | str, Decimal | str]


def _total(rows: QuerySet[Any], group: str, expression: Any) -> Coalesce:
    summed = rows.order_by().values(group).annotate(total=money_sum(expression)).values("total")
    return Coalesce(Subquery(summed, output_field=MONEY), Value(ZERO), output_field=MONEY)


def _release_differences() -> Iterator[Row]:
    authorised = Release.objects.filter(hold=OuterRef("pk"), status=ReleaseStatus.AUTHORISED)
    holds = (
        GoodsHold.objects.annotate(released_by_rows=_total(authorised, "hold", "value"))
        .annotate(diff=Round(F("released_value") - F("released_by_rows"), 2))
        .filter(~Q(diff=0))
        .order_by("pk")
        .values_list("pk", "loan_id", "released_by_rows", "released_value")
    )
    for pk, loan_id, releases, released in holds.iterator():
        yield (
            "hold_released",
            f"goods hold {pk} (loan {loan_id})",
            cents(releases),
            cents(released),
        )


def _units(quantity: Decimal) -> str:
    return str(quantity.quantize(QUANTITY))


def _hold_line_differences() -> Iterator[Row]:
    taken: dict[tuple[int, str], Decimal] = {}
    by_lines = Release.objects.filter(status=ReleaseStatus.AUTHORISED).exclude(lines=[])
    for hold_id, lines in by_lines.order_by("pk").values_list("hold_id", "lines").iterator():
        for line in lines:
            key = (hold_id, line["sku"])
            taken[key] = taken.get(key, Decimal(0)) + Decimal(line["quantity"])
    rows = GoodsHoldLine.objects.order_by("hold_id", "sku")
    for hold_id, sku, released in rows.values_list("hold_id", "sku", "released_quantity"):
        expected = taken.pop((hold_id, sku), Decimal(0))
        if (expected - released).quantize(QUANTITY) != 0:
            subject = f"goods hold {hold_id} SKU {sku}"
            yield ("hold_line_released", subject, _units(expected), _units(released))
    for (hold_id, sku), expected in sorted(taken.items()):
        yield ("hold_line_released", f"goods hold {hold_id} SKU {sku}", _units(expected), "no row")


def _claim_differences() -> Iterator[Row]:
    lines = JournalLine.objects.filter(
        account=AccountCode.GUARANTEE_RECEIVABLE, loan_id=OuterRef("loan_id")
    )
    claims = (
        GuaranteeClaim.objects.annotate(
            ledger=_total(lines, "loan", F("debit") - F("credit")),
            diff=Round(F("amount") - F("paid") - F("ledger"), 2),
        )
        .filter(~Q(diff=0))
        .order_by("pk")
        .values_list("pk", "reference", "amount", "paid", "ledger")
    )
    for pk, reference, amount, paid, ledger in claims.iterator():
        yield ("claim_receivable", f"claim {pk} ({reference})", cents(amount - paid), cents(ledger))
    stray = JournalLine.objects.filter(account=AccountCode.GUARANTEE_RECEIVABLE, loan__isnull=True)
    for pk, entry_id in stray.order_by("pk").values_list("pk", "entry_id").iterator():
        yield ("claim_without_loan", f"line {pk} of entry {entry_id}", "a loan", "none")


def _cap_rows(rows: QuerySet[Any], used: str, owner: str, key: str, label: str) -> Iterator[Row]:
    """Rows whose ``used`` cap figure is not the unpaid part of the claims naming them."""
    claims = GuaranteeClaim.objects.filter(**{owner: OuterRef(key)})
    mismatched = (
        rows.annotate(
            unpaid_claims=_total(claims, owner, F("amount") - F("paid")),
            diff=Round(F(used) - F("unpaid_claims"), 2),
        )
        .filter(~Q(diff=0))
        .order_by(key)
        .values_list(key, "unpaid_claims", used)
    )
    for pk, unpaid, figure in mismatched.iterator():
        yield (used, f"{label} {pk}", cents(unpaid), cents(figure))


def _cap_differences() -> Iterator[Row]:
    yield from _cap_rows(
        TripartiteTerms.objects.all(), "program_cap_used", "program", "program", "program"
    )
    yield from _cap_rows(Agreement.objects.all(), "agent_cap_used", "agreement", "pk", "agreement")


def goods_differences() -> Iterator[Row]:
    yield from _release_differences()
    yield from _hold_line_differences()
    yield from _claim_differences()
    yield from _cap_differences()
