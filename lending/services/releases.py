"""Goods release under a tripartite agreement: let goods go only as far as the agent has paid.

* **What may be released.** A financed order's ``GoodsHold`` has ``releasable_value`` = the
  margin paid out with the disbursement + the principal repaid since (never more than the order's
  value). ``released_value`` is what the enterprise has been authorised to ship.
* **Authorising** (``release_request``): one conditional UPDATE of the hold,
  ``released_value = released_value + v WHERE releasable_value - released_value >= v``; under
  PostgreSQL's READ COMMITTED a concurrent request waits on the row and re-checks the condition
  against the committed values, so however many requests race, the sum authorised never passes
  what was paid for. The CHECK ``hold_released_le_releasable`` stands behind it. A refused
  request is kept (status ``refused``, reason ``release_exceeds_paid``) and reported to the
  caller with the value still releasable.
* **By lines.** ``[{"sku", "quantity"}]`` is valued at the order lines' unit prices, rounded
  half-even to the cent; a SKU may not be asked for beyond what was ordered less what earlier
  authorised releases took of it. The hold's per-SKU rows take the quantities by conditional
  UPDATEs in the transaction of the value's (``lending.services.release_lines``), so racing
  line releases never take more units than were ordered.
* **Repayments raise the releasable value** (``goods_hold_repaid``, called by the repayment's
  write path under the loan lock): set from the loan's balances, so a backdated replay and an
  on-time payment land on the same figure. The enterprise hears of it from the outbound event
  ``release.available`` (recorded by the integrations' event sweep, which compares holds with
  the last value announced).
* **Once a claim is raised** on the loan, the unreleased goods are the buyback's: releases are
  refused (``claim_raised``) and the releasable value no longer moves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import Case, DecimalField, Exists, F, OuterRef, Subquery, Value, When
from django.db.models.functions import Greatest, Least

from scf import clock
from scf.errors import Conflict, ValidationFailed
from scf.money import CENT, parse_amount

from ..models import (
    GoodsHold,
    GuaranteeClaim,
    HoldStatus,
    Loan,
    Release,
    ReleaseRequester,
    ReleaseStatus,
)
from .audit import audit_record
from .release_lines import SkuLeft, hold_lines_ensure, hold_lines_left, hold_lines_take

ZERO = Decimal("0.00")
EXCEEDS = "release_exceeds_paid"
RELEASING = (HoldStatus.HELD, HoldStatus.PARTLY_RELEASED)
MAX_LINES = 500


class ReleaseInvalid(ValidationFailed):
    """The request's value or lines are wrong (422, ``fields`` says which)."""


class NoGoodsHold(Conflict):
    code = "no_goods_hold"


class ClaimRaised(Conflict):
    code = "claim_raised"


class ReleaseExceedsPaid(Conflict):
    code = EXCEEDS


@dataclass(frozen=True, slots=True)
class ReleaseAsk:
    """A validated request: its value and, when asked by line, the lines."""

    value: Decimal
    lines: list[dict[str, str]]


def _clean_value(value: object) -> Decimal:
    try:
        amount = parse_amount(value)
    except ValueError as exc:
        raise ReleaseInvalid(f"Invalid value: {exc}", fields={"value": [str(exc)]}) from None
    if amount <= 0:
        message = "Must be greater than zero."
        raise ReleaseInvalid(f"Invalid value: {message}", fields={"value": [message]})
    return amount


def _quantity(raw: object) -> Decimal:
    if isinstance(raw, bool | float):
        raise ValueError('Send quantities as decimal strings or integers, e.g. "12".')
    try:
        quantity = Decimal(str(raw).strip()) if isinstance(raw, str | int | Decimal) else None
    except InvalidOperation:
        quantity = None
    if quantity is None or not quantity.is_finite():
        raise ValueError("Not a valid quantity.")
    if quantity <= 0:
        raise ValueError("Must be greater than zero.")
    if quantity != quantity.quantize(Decimal("0.0001")):
        raise ValueError("At most four decimal places.")
    return quantity


class _SkuExhausted(Exception):
    """A racing release took the SKU's quantity first: roll the transaction back."""


def _line_problems(left: dict[str, SkuLeft], asked: dict[str, Decimal]) -> list[str]:
    return [
        f"SKU {sku}: {quantity} asked, {left[sku].left} not yet released."
        for sku, quantity in asked.items()
        if quantity > left[sku].left
    ]


def _clean_lines(hold: GoodsHold, lines: object) -> ReleaseAsk:
    if not isinstance(lines, list) or not lines or len(lines) > MAX_LINES:
        message = f"A list of 1 to {MAX_LINES} {{sku, quantity}} objects."
        raise ReleaseInvalid(f"Invalid lines: {message}", fields={"lines": [message]})
    left = hold_lines_left(hold)
    asked: dict[str, Decimal] = {}
    problems: list[str] = []
    for index, item in enumerate(lines):
        sku = item.get("sku") if isinstance(item, dict) else None
        if not isinstance(sku, str) or sku not in left:
            problems.append(f"Line {index + 1}: no SKU {sku!r} in the financed order.")
            continue
        try:
            asked[sku] = asked.get(sku, ZERO) + _quantity(item.get("quantity"))
        except ValueError as exc:
            problems.append(f"Line {index + 1}: quantity: {exc}")
    problems += _line_problems(left, asked)
    if problems:
        raise ReleaseInvalid("Invalid lines: " + " ".join(problems), fields={"lines": problems})
    value = sum(
        ((q * left[sku].unit_price).quantize(CENT, ROUND_HALF_EVEN) for sku, q in asked.items()),
        ZERO,
    )
    if value <= 0:
        message = "The lines are worth nothing at the order's prices."
        raise ReleaseInvalid(message, fields={"lines": [message]})
    return ReleaseAsk(value, [{"sku": s, "quantity": str(q)} for s, q in asked.items()])


def release_ask(*, hold: GoodsHold, data: Mapping[str, Any]) -> ReleaseAsk:
    """Validate a request body: exactly one of ``value`` or ``lines``."""
    has_value, has_lines = data.get("value") is not None, data.get("lines") is not None
    if has_value == has_lines:
        message = 'Send either "value" or "lines", not both.'
        raise ReleaseInvalid(message, fields={"value": [message], "lines": [message]})
    if has_value:
        return ReleaseAsk(_clean_value(data["value"]), [])
    return _clean_lines(hold, data["lines"])


def goods_hold_of(loan: Loan) -> GoodsHold:
    hold = GoodsHold.objects.select_related("loan").filter(loan=loan).first()
    if hold is None:
        raise NoGoodsHold(f"Loan {loan.reference} holds no goods: it is not a tripartite loan.")
    return hold


def release_request(
    *,
    loan: Loan,
    data: Mapping[str, Any],
    requested_by_kind: str,
    actor: Any,
    at: dt.datetime | None = None,
) -> Release:
    """Ask to release goods of ``loan``'s hold: the authorised ``Release``.

    A request beyond what is paid for is refused: the refused ``Release`` is committed for the
    record and ``ReleaseExceedsPaid`` raised with the figures. Raises ``NoGoodsHold`` (not a
    tripartite loan) and ``ReleaseInvalid`` (nothing written) too. ``at``: the moment it is
    asked (default now).
    """
    if requested_by_kind not in ReleaseRequester.values:
        raise ValueError(f"unknown requester kind {requested_by_kind!r}")
    hold = goods_hold_of(loan)
    if GuaranteeClaim.objects.filter(loan_id=loan.pk).exists():
        raise ClaimRaised(
            f"A guarantee claim is raised on loan {loan.reference}: its goods are held for it."
        )
    ask = release_ask(hold=hold, data=data)
    try:
        release, released, releasable = _authorise(
            hold, ask, requested_by_kind, actor, at or clock.now()
        )
    except _SkuExhausted:
        asked = {line["sku"]: Decimal(line["quantity"]) for line in ask.lines}
        problems = _line_problems(hold_lines_left(hold), asked)
        raise ReleaseInvalid(
            "Invalid lines: " + " ".join(problems), fields={"lines": problems}
        ) from None
    if release.status == ReleaseStatus.REFUSED:
        available = releasable - released
        raise ReleaseExceedsPaid(
            f"Asked to release {ask.value}; only {available} of the goods is paid for and not "
            "yet released.",
            extra={
                "releasable_value": f"{releasable:.2f}",
                "released_value": f"{released:.2f}",
                "available_value": f"{available:.2f}",
                "release": release.pk,
            },
        )
    return release


@transaction.atomic
def _authorise(
    hold: GoodsHold, ask: ReleaseAsk, kind: str, actor: Any, now: dt.datetime
) -> tuple[Release, Decimal, Decimal]:
    """The conditional UPDATEs and the ``Release`` row; (release, released, releasable) after.

    Asked by lines, the SKUs' quantities are taken after the hold's value, in this transaction;
    a SKU a racing request emptied first raises ``_SkuExhausted`` and nothing is written."""
    if ask.lines:
        hold_lines_ensure(hold)
    released_after = F("released_value") + ask.value
    authorised = (
        GoodsHold.objects.filter(pk=hold.pk, status__in=RELEASING)
        .filter(releasable_value__gte=released_after)
        .update(
            released_value=released_after,
            status=Case(
                When(order_value__lte=released_after, then=Value(HoldStatus.RELEASED)),
                default=Value(HoldStatus.PARTLY_RELEASED),
            ),
            updated_at=now,
        )
    )
    if authorised and ask.lines:
        taken = {line["sku"]: Decimal(line["quantity"]) for line in ask.lines}
        if not hold_lines_take(hold, taken):
            raise _SkuExhausted
    released, releasable = GoodsHold.objects.values_list("released_value", "releasable_value").get(
        pk=hold.pk
    )
    release = Release.objects.create(
        hold=hold,
        value=ask.value,
        lines=ask.lines,
        requested_by_kind=kind,
        requested_by=actor if getattr(actor, "pk", None) is not None else None,
        status=ReleaseStatus.AUTHORISED if authorised else ReleaseStatus.REFUSED,
        reason="" if authorised else EXCEEDS,
        releasable_at_request=releasable,
        created_at=now,
    )
    if authorised:
        audit_record(
            actor=actor,
            action="goods_released",
            obj=release,
            after={
                "loan": hold.loan.reference,
                "value": str(ask.value),
                "lines": ask.lines,
                "released_value": str(released),
                "releasable_value": str(releasable),
            },
        )
    return release, released, releasable


def goods_hold_repaid(*, loan: Loan) -> int:
    """Raise the releasable value of ``loan``'s hold to margin + principal repaid (capped at the
    order's value); never lowers it. Once a claim is raised on the loan the goods left are the
    buyback's, and the principal its claim took off the loan was not paid by the agent: the
    figure stays. The caller holds the loan's lock and has saved its balances. Returns the rows
    changed (0 for a loan without a hold)."""
    return goods_holds_repaid(loan_ids=[loan.pk])


def goods_holds_repaid(*, loan_ids: Collection[int]) -> int:
    """``goods_hold_repaid`` for many loans in one statement (a bank file's repayments), the
    principal repaid read from each loan's saved row."""
    repaid = Subquery(
        Loan.objects.filter(pk=OuterRef("loan_id"))
        .annotate(repaid=F("principal") - F("outstanding_principal"))
        .values("repaid")[:1],
        output_field=DecimalField(max_digits=18, decimal_places=2),
    )
    claimed = GuaranteeClaim.objects.filter(loan_id=OuterRef("loan_id"))
    return (
        GoodsHold.objects.filter(loan_id__in=list(loan_ids), status__in=RELEASING)
        .filter(~Exists(claimed))
        .annotate(target=Least(F("order_value"), F("margin") + repaid))
        .filter(releasable_value__lt=F("target"))
        .update(
            releasable_value=Greatest(
                F("releasable_value"), Least(F("order_value"), F("margin") + repaid)
            ),
            updated_at=clock.now(),
        )
    )
