"""Reads for the review queue and its case page (the API and the web pages share them).

A case's deadline (its SLA) is the referral hold the review already carries (``expires_at``, the
program's ``review_hold_hours`` after the request; the case expires then); a follow-up case
(failed payment, accelerated loan) never expires and is due ``REVIEW_FOLLOW_UP_SLA_HOURS`` after
it was opened. A case shows amber once ``WARN_AT`` of its time is used, red when late.

The agent's history is computed for a whole page at once with three grouped aggregates (orders,
loans, repayments), so a page costs the same number of queries whatever its size.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Count, Max, Q, QuerySet, Sum

from orders.models import SalesOrder, User

from ..models import OPEN, REVIEW_OPEN, Loan, Repayment, Review, ReviewKind, ReviewStatus
from .loans import ORDER_BANKS
from .scope import scope_for

REPAYMENT_BANK = "loan__program__bank"

ZERO = Decimal("0.00")
WARN_AT = 0.75  # share of the time to deadline after which a case shows amber
HISTORY_ROWS = 10
SEARCH_MAX = 100
REVIEW_RELATED = (
    "loan__order",
    "loan__agent",
    "loan__program",
    "loan__credit_line",
    "loan__decision",
    "loan__goods_hold",
    "loan__guarantee_claim",
    "claimed_by",
    "first_approver",
    "second_approver",
    "decided_by",
)


def review_deadline(review: Review) -> dt.datetime:
    """When the case is due: its referral hold, or the follow-up SLA after it was opened."""
    if review.expires_at is not None:
        return review.expires_at
    return review.created_at + dt.timedelta(hours=settings.REVIEW_FOLLOW_UP_SLA_HOURS)


def review_sla(review: Review, now: dt.datetime) -> str:
    """``ok``, ``warn`` (past ``WARN_AT`` of its time) or ``late`` (past its deadline)."""
    deadline = review_deadline(review)
    total = (deadline - review.created_at).total_seconds()
    elapsed = (now - review.created_at).total_seconds()
    if now >= deadline:
        return "late"
    if total > 0 and elapsed >= total * WARN_AT:
        return "warn"
    return "ok"


def _reviews(user: User) -> QuerySet[Review]:
    """The cases of the user's bank (``scope.scope_for``)."""
    return scope_for(user, Review.objects.select_related(*REVIEW_RELATED), "loan__program__bank")


def review_queue(
    *,
    user: User,
    kind: str | None = None,
    status: str | None = None,
    search: str = "",
    claimed_by: User | None = None,
) -> QuerySet[Review]:
    """The user's bank's cases oldest first: the open ones by default, or those in ``status``.

    ``search`` matches the agent (code or name), the order number or the loan reference;
    ``claimed_by`` keeps the cases that person has claimed ("my cases").
    """
    reviews = _reviews(user)
    reviews = reviews.filter(status=status) if status else reviews.filter(status__in=REVIEW_OPEN)
    if kind:
        reviews = reviews.filter(kind=kind)
    if claimed_by is not None:
        reviews = reviews.filter(claimed_by=claimed_by)
    text = search.strip()[:SEARCH_MAX]
    if text:
        reviews = reviews.filter(
            Q(loan__agent__code__icontains=text)
            | Q(loan__agent__name__icontains=text)
            | Q(loan__order__external_id__icontains=text)
            | Q(loan__reference__icontains=text)
        )
    return reviews.order_by("created_at", "id")


def review_get(*, user: User, review_id: int) -> Review | None:
    """One of the user's bank's cases, or ``None`` (another bank's case is missing)."""
    return _reviews(user).filter(pk=review_id).first()


def referral_decline_get(*, loan: Loan) -> Review | None:
    """The review that declined the loan's referral, if a reviewer did (the latest)."""
    return (
        Review.objects.filter(loan=loan, kind=ReviewKind.REFERRAL, status=ReviewStatus.DECLINED)
        .order_by("-closed_at", "-id")
        .first()
    )


def _empty_history(currency: str) -> dict[str, Any]:
    return {
        "currency": currency,
        "orders_count": 0,
        "orders_amount": ZERO,
        "loans_count": 0,
        "loans_by_status": {},
        "principal_by_status": {},
        "outstanding_principal": ZERO,
        "repayments_count": 0,
        "repayments_amount": ZERO,
        "max_days_past_due": 0,
        "current_days_past_due": 0,
    }


def agent_histories(
    keys: set[tuple[int, str]], *, user: User
) -> dict[tuple[int, str], dict[str, Any]]:
    """Per (agent, currency): orders, loans by status, repayments, DPD. Three grouped queries.

    Amounts and counts are in that currency; days past due span the agent's loans. For bank
    staff all of it is their bank's: its loans and repayments, the orders of the enterprises it
    works with (``scope.scope_for``); another bank's business with the agent is not theirs.
    """
    histories = {key: _empty_history(key[1]) for key in keys}
    agent_ids = {agent_id for agent_id, _ in keys}
    if not agent_ids:
        return histories
    orders = (
        scope_for(user, SalesOrder.objects.filter(agent_id__in=agent_ids), ORDER_BANKS)
        .values("agent_id", "currency")
        .annotate(n=Count("id"), amount=Sum("amount"))
        .order_by()
    )
    for row in orders:
        if (history := histories.get((row["agent_id"], row["currency"]))) is not None:
            history["orders_count"], history["orders_amount"] = row["n"], row["amount"] or ZERO
    _add_loans(histories, agent_ids, user)
    _add_repayments(histories, agent_ids, user)
    return histories


def _add_loans(
    histories: dict[tuple[int, str], dict[str, Any]], agent_ids: set[int], user: User
) -> None:
    loans = (
        scope_for(user, Loan.objects.filter(agent_id__in=agent_ids), "program__bank")
        .values("agent_id", "currency", "status")
        .annotate(
            n=Count("id"),
            principal=Sum("principal"),
            outstanding=Sum("outstanding_principal"),
            dpd=Max("days_past_due"),
        )
        .order_by()
    )
    max_dpd: dict[int, int] = defaultdict(int)
    current_dpd: dict[int, int] = defaultdict(int)
    for row in loans:
        agent_id, dpd = row["agent_id"], row["dpd"] or 0
        max_dpd[agent_id] = max(max_dpd[agent_id], dpd)
        if row["status"] in OPEN:
            current_dpd[agent_id] = max(current_dpd[agent_id], dpd)
        if (history := histories.get((agent_id, row["currency"]))) is not None:
            history["loans_count"] += row["n"]
            history["loans_by_status"][row["status"]] = row["n"]
            history["principal_by_status"][row["status"]] = row["principal"] or ZERO
            history["outstanding_principal"] += row["outstanding"] or ZERO
    for (agent_id, _), history in histories.items():
        history["max_days_past_due"] = max_dpd[agent_id]
        history["current_days_past_due"] = current_dpd[agent_id]


def _add_repayments(
    histories: dict[tuple[int, str], dict[str, Any]], agent_ids: set[int], user: User
) -> None:
    repayments = (
        scope_for(user, Repayment.objects.filter(loan__agent_id__in=agent_ids), REPAYMENT_BANK)
        .values("loan__agent_id", "currency")
        .annotate(n=Count("id"), amount=Sum("amount"))
        .order_by()
    )
    for row in repayments:
        if (history := histories.get((row["loan__agent_id"], row["currency"]))) is not None:
            history["repayments_count"] = row["n"]
            history["repayments_amount"] = row["amount"] or ZERO


def with_histories(reviews: list[Review], *, user: User) -> list[Review]:
    """Attach ``agent_history`` (as ``user`` may see it) to each review of a page (no query per
    row)."""
    histories = agent_histories({(r.loan.agent_id, r.loan.currency) for r in reviews}, user=user)
    for review in reviews:
        review.agent_history = histories[(review.loan.agent_id, review.loan.currency)]  # type: ignore[attr-defined]
    return reviews


def agent_recent(*, user: User, agent_id: int) -> dict[str, Any]:
    """The agent's latest loans and repayments that ``user`` may see (two queries) for the case
    page."""
    loans = (
        scope_for(user, Loan.objects.filter(agent_id=agent_id), "program__bank")
        .select_related("order")
        .order_by("-requested_at", "-id")[:HISTORY_ROWS]
    )
    repayments = (
        scope_for(user, Repayment.objects.filter(loan__agent_id=agent_id), REPAYMENT_BANK)
        .select_related("loan")
        .order_by("-value_date", "-id")[:HISTORY_ROWS]
    )
    return {"recent_loans": list(loans), "recent_repayments": list(repayments)}
