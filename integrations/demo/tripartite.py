"""The demo's tripartite program: the machinery maker's program with 江南商业银行 lends under a
tripartite agreement (docs/tripartite.md), so a newcomer sees the whole flow from the portal.

Built through the real services, in two steps around the first loans:

* ``demo_tripartite_terms`` (before them): the terms (20 % margin beside the program's 80 %
  advance, buyback after 30 days past due), a signed agreement and a margin deposit for each
  agent with a login who buys from the enterprise, and one loan financed and paid out months
  before ``today`` (the services told so: each takes the moment it acts at) that its agent
  never repays;
* ``demo_tripartite_flow`` (after them): the program's new loans are paid out, one is partly
  repaid and goods are released against what was paid, another order is reported shipped beyond
  its release (a release breach, through the feed's follow-up), and close of business runs
  through yesterday, which takes the old loan past the trigger and raises its buyback claim.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from integrations.feed.follow_up import feed_applied_follow_up
from lending.models import (
    Disbursement,
    DisbursementStatus,
    GoodsHold,
    Loan,
    LoanStatus,
    Program,
    ReleaseRequester,
    Review,
)
from lending.selectors.loans import financeable_orders
from lending.services.agreements import agreement_sign
from lending.services.cob import cob_run_through
from lending.services.disbursement import disbursement_settle
from lending.services.finance import loan_finance
from lending.services.margin import margin_account_get_or_create, margin_deposit
from lending.services.releases import release_request
from lending.services.repayments import repayment_record
from lending.services.reviews import review_approve, review_claim
from lending.services.terms import due_date_for
from lending.services.tripartite_terms import terms_create
from orders.models import FeedChannel, Role, SalesOrder, User
from orders.services.ingest import orders_ingest
from scf import clock

from .data import AGENT_USERS, BANK_CODE, DEMO_EMAIL_DOMAIN

if TYPE_CHECKING:
    from .data import DemoData

MARGIN_RATIO = "0.2000"
TERMS: dict[str, object] = {
    "enabled": True,
    "margin_ratio": MARGIN_RATIO,
    "guarantee_type": "buyback",
    "claim_window_days": 30,
    "program_cap": "5000000.00",
    "margin_withdraw_approval_threshold": "50000.00",
}
AGENT_CAP = "1000000.00"
# Enough for the margin of every loan the agent's first clicks take (20 % of a few orders).
DEPOSIT = Decimal("300000.00")
TRIGGER_DPD = 30
# The unpaid loan's order is at least this many days older than the tenor.
MIN_DAYS_OVERDUE = 8
# The agreements were signed before the demo's oldest orders (six months).
SIGNED_DAYS_AGO = 190


def demo_program_of(order: SalesOrder) -> Program:
    return Program.objects.get(enterprise_id=order.enterprise_id, bank__code=BANK_CODE)


def demo_tripartite_program(data: DemoData) -> Program:
    enterprise = data.enterprises[1].enterprise
    return Program.objects.get(enterprise=enterprise, bank=data.bank)


def _agent_users(program: Program) -> list[User]:
    users = User.objects.filter(
        role=Role.AGENT, agent__relationships__enterprise_id=program.enterprise_id
    )
    return list(users.select_related("agent").order_by("pk")[:AGENT_USERS])


def _ops(data: DemoData) -> User:
    return next(login.user for login in data.logins if login.user.role == Role.OPS_ADMIN)


def demo_moment(today: dt.date) -> dt.datetime:
    """The moment the demo's loans are decided at: ``today`` (the day its orders count back
    from), at the time of day it is now, so that seeded for another day the first clicks still
    find recent orders. Passed to the services, which take it as their "now"."""
    real = clock.now()
    return real + (today - real.date())


def demo_tripartite_terms(data: DemoData, today: dt.date, at: dt.datetime) -> None:
    program = demo_tripartite_program(data)
    ops = _ops(data)
    users = _agent_users(program)
    old = _oldest_order(program, users, today)
    terms_create(actor=ops, program=program, values={**TERMS, "trigger_dpd": _trigger(old, today)})
    signed = today - dt.timedelta(days=SIGNED_DAYS_AGO)
    for user in users:
        agent = user.agent
        assert agent is not None  # an agent user has its agent (a CHECK)
        agreement_sign(
            actor=ops,
            program=program,
            agent=agent,
            signed_on=signed,
            agent_cap=AGENT_CAP,
            document_reference=f"TPA-{program.code}-{agent.code}",
        )
    if old is not None:
        _old_unpaid_loan(program, old)
    day = clock.business_date(program.time_zone, at)
    for user in users:
        account = margin_account_get_or_create(program=program, agent=cast(Any, user.agent))
        margin_deposit(
            account=account,
            amount=DEPOSIT,
            value_date=day,
            reference=f"{account.reference}-DEMO",
            actor=ops,
        )


def _oldest_order(
    program: Program, users: list[User], today: dt.date
) -> tuple[User, SalesOrder] | None:
    """The oldest order one of ``users`` could have financed that is old enough to be overdue."""
    newest = today - dt.timedelta(days=program.tenor_days + MIN_DAYS_OVERDUE)
    by_agent = {user.agent_id: user for user in users}
    orders = financeable_orders(
        SalesOrder.objects.filter(
            agent_id__in=by_agent, enterprise_id=program.enterprise_id, order_date__lte=newest
        )
    )
    order = orders.order_by("order_date", "pk").first()
    return None if order is None else (by_agent[order.agent_id], order)


def _trigger(old: tuple[User, SalesOrder] | None, today: dt.date) -> int:
    """The buyback trigger: 30 days past due, or fewer if the old loan will not be that late by
    yesterday's close (the demo's oldest open orders decide how late a loan of theirs can be)."""
    if old is None:
        return TRIGGER_DPD
    _user, order = old
    program = demo_program_of(order)
    value_date = order.order_date + dt.timedelta(days=1)
    due = due_date_for(value_date, program.tenor_days, program.holiday_country)
    late = (today - dt.timedelta(days=1) - due).days
    return max(1, min(TRIGGER_DPD, late))


def _old_unpaid_loan(program: Program, old: tuple[User, SalesOrder]) -> Loan:
    """Finance and pay out the old order on the day after it was placed."""
    user, order = old
    day = order.order_date + dt.timedelta(days=1)
    moment = dt.datetime.combine(day, dt.time(10), tzinfo=ZoneInfo(program.time_zone))
    account = margin_account_get_or_create(program=program, agent=cast(Any, user.agent))
    margin_deposit(
        account=account,
        amount=(order.amount * Decimal(MARGIN_RATIO)).quantize(Decimal("0.01")),
        value_date=day,
        reference=f"{account.reference}-{order.external_id}",
        actor=None,
    )
    loan = loan_finance(user=user, order_id=order.pk, program_id=program.pk, at=moment)
    if loan.status == LoanStatus.IN_REVIEW:
        loan = _approved(loan, moment)
    _settle(loan, moment)
    return loan


def _approved(loan: Loan, at: dt.datetime) -> Loan:
    """The demo's approvers approve a referred request (both, above the maker-checker line)."""
    review = Review.objects.get(loan=loan)
    approvers = User.objects.filter(role=Role.RISK_APPROVER, email__iendswith=DEMO_EMAIL_DOMAIN)
    for approver in approvers.order_by("pk"):
        review = review_claim(user=approver, review_id=review.pk, at=at)
        review = review_approve(user=approver, review_id=review.pk, note="Demo: approved.", at=at)
        loan.refresh_from_db()
        if loan.status != LoanStatus.IN_REVIEW:
            break
    return loan


def _settle(loan: Loan, moment: dt.datetime) -> None:
    """The bank's confirmation of the payment, as its statement would bring it."""
    if loan.status != LoanStatus.DISBURSING:
        return
    for disbursement in Disbursement.objects.filter(loan=loan).exclude(
        status__in=(DisbursementStatus.SETTLED, DisbursementStatus.FAILED)
    ):
        disbursement_settle(
            disbursement_id=disbursement.pk,
            bank_reference=f"DEMO-{disbursement.end_to_end_id}",
            settled_at=moment,
        )


def demo_tripartite_flow(data: DemoData, today: dt.date, at: dt.datetime) -> None:
    program = demo_tripartite_program(data)
    users = _agent_users(program)
    recent = Loan.objects.filter(program=program, goods_hold__isnull=False).order_by("pk")
    for loan in recent.filter(status=LoanStatus.DISBURSING):
        _settle(loan, at)
    business_day = clock.business_date(program.time_zone, at)
    live = list(recent.filter(status=LoanStatus.ACTIVE, value_date=business_day))
    by_agent: dict[int, list[Loan]] = {}
    for loan in live:
        by_agent.setdefault(loan.agent_id, []).append(loan)
    ops = _ops(data)
    for index, user in enumerate(users[:2]):
        loans = by_agent.get(cast(int, user.agent_id), [])
        if not loans:
            continue
        first = loans[0]
        # A repayment of a quarter of the principal: what it frees, the agent picks up.
        repaid = (first.principal / 4).quantize(Decimal("0.01"))
        repayment_record(
            loan=first,
            amount=repaid,
            value_date=business_day,
            reference=f"{first.reference}-DEMO-R1",
            source="api",
            actor=ops,
            today=business_day,
        )
        hold = GoodsHold.objects.get(loan=first)
        release_request(
            loan=first,
            data={"value": str(hold.releasable_value - hold.released_value)},
            requested_by_kind=ReleaseRequester.AGENT if index == 0 else ReleaseRequester.ENTERPRISE,
            actor=user if index == 0 else None,
            at=at,
        )
    confirmed = [
        loan
        for loans in by_agent.values()
        for loan in loans[1:]
        if loan.order.status == "confirmed"
    ]
    if confirmed:
        _ship(confirmed[0], at)
    cob_run_through(through_date=today - dt.timedelta(days=1), program_ids=[program.pk])


def _ship(loan: Loan, at: dt.datetime) -> None:
    """The enterprise reports the order shipped, though none of its goods were released."""
    order = loan.order
    payload = dict(order.raw_payload)
    payload["status"] = "shipped"
    payload["version"] = int(payload.get("version") or 1) + 1
    result = orders_ingest(
        enterprise=order.enterprise,
        payloads=[payload],
        channel=FeedChannel.BULK,
        event_id=f"demo-ship-{order.external_id}",
    )
    feed_applied_follow_up(applied=result.applied, at=at)
