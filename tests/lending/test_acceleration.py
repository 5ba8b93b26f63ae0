"""Order changes after financing: a cancelled order declines, flags or accelerates its loan.

The clock is fixed at 2026-03-10 18:00 UTC, which is already 2026-03-11 in Asia/Shanghai (the
programs' zone): "today" for a due date is the program's business date, not the UTC date.
"""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from integrations.feed import pull
from integrations.feed.pull import FeedPage, feed_source_poll
from integrations.models import OrderFeedSource
from lending.models import (
    AuditLog,
    CreditLine,
    Disbursement,
    Loan,
    LoanStatus,
    Program,
    Review,
    ReviewKind,
    ReviewStatus,
)
from lending.services.acceleration import (
    ORDER_CANCELLED,
    CancellationOutcome,
    cancelled_orders_sweep,
    orders_cancelled,
)
from lending.services.book_check import book_check
from orders.models import OrderStatus, SalesOrder
from scf import clock
from tests.conftest import client_for
from tests.integrations.feed_helpers import post_bulk
from tests.integrations.test_csv import csv_bytes
from tests.integrations.test_csv import line as csv_line
from tests.integrations.test_csv import upload as csv_upload
from tests.lending.loan_makers import PRINCIPAL, disbursed_loan, pay_out, pending_loan
from tests.orders.factories import order_payload

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 10, 18, 0, tzinfo=dt.UTC)
TODAY = dt.date(2026, 3, 11)  # NOW in Asia/Shanghai
VALUE_DATE = dt.date(2026, 2, 1)
DUE = dt.date(2026, 5, 4)
ZERO = Decimal("0.00")


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: NOW)


@pytest.fixture
def active(line: Any) -> Loan:
    return disbursed_loan(line, value_date=VALUE_DATE, due_date=DUE)


def cases(loan: Loan, kind: str = ReviewKind.ACCELERATED) -> list[Review]:
    return list(Review.objects.filter(loan=loan, kind=kind))


def headroom(line: CreditLine) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    line.refresh_from_db()
    program = Program.objects.get(pk=line.program_id)
    return (
        line.reserved,
        line.outstanding_principal,
        program.reserved,
        program.outstanding_principal,
    )


def cancel(loan: Loan) -> None:
    SalesOrder.objects.filter(pk=loan.order_id).update(status=OrderStatus.CANCELLED, version=2)


def order_cancelled(loan: Loan) -> None:
    """The sales system cancels the loan's order and the feed applies it (``orders_cancelled``)."""
    cancel(loan)
    orders_cancelled(order_ids=[loan.order_id])


def test_accelerating_an_active_loan_makes_it_due_today_in_the_program_zone(active):
    order_cancelled(active)
    loan = Loan.objects.get(pk=active.pk)
    assert (loan.due_date, loan.accelerated_at, loan.status) == (TODAY, NOW, LoanStatus.ACTIVE)
    [case] = cases(loan)
    assert case.status == ReviewStatus.OPEN and case.expires_at is None
    assert case.notes[0]["note"] == ORDER_CANCELLED
    audit = AuditLog.objects.get(action="loan.accelerated", object_id=str(loan.pk))
    assert audit.before == {"due_date": "2026-05-04", "accelerated_at": None}
    assert audit.after["due_date"] == "2026-03-11" and audit.after["review"] == case.pk
    assert book_check() == []


def test_second_acceleration_changes_nothing(active):
    order_cancelled(active)
    order_cancelled(active)
    assert len(cases(active)) == 1
    assert AuditLog.objects.filter(action="loan.accelerated").count() == 1


def test_overdue_loan_keeps_its_earlier_due_date(line):
    loan = disbursed_loan(
        line,
        value_date=dt.date(2025, 11, 1),
        due_date=dt.date(2026, 2, 2),
        status=LoanStatus.OVERDUE,
        days_past_due=37,
    )
    order_cancelled(loan)
    loan.refresh_from_db()
    assert loan.due_date == dt.date(2026, 2, 2) and loan.accelerated_at == NOW


def test_cancelled_order_of_active_loan_accelerates_it(active):
    cancel(active)
    [result] = orders_cancelled(order_ids=[active.order_id])
    assert (result.loan_id, result.outcome) == (active.pk, CancellationOutcome.ACCELERATED)
    active.refresh_from_db()
    assert active.due_date == TODAY and len(cases(active)) == 1
    again = orders_cancelled(order_ids=[active.order_id])
    assert [r.outcome for r in again] == [CancellationOutcome.UNCHANGED]
    assert len(cases(active)) == 1
    # Credit is untouched: the principal is still outstanding, nothing reserved.
    assert headroom(active.credit_line) == (ZERO, PRINCIPAL, ZERO, PRINCIPAL)
    assert book_check() == []


def test_cancelled_order_declines_a_loan_in_review_and_releases_its_credit(line):
    loan = pending_loan(line, status=LoanStatus.IN_REVIEW)
    assert headroom(line) == (PRINCIPAL, ZERO, PRINCIPAL, ZERO)
    [result] = orders_cancelled(order_ids=[loan.order_id])
    assert result.outcome == CancellationOutcome.DECLINED
    loan.refresh_from_db()
    assert (loan.status, loan.reserved_amount, loan.closed_at) == (LoanStatus.DECLINED, ZERO, NOW)
    assert headroom(line) == (ZERO, ZERO, ZERO, ZERO)
    [referral] = cases(loan, ReviewKind.REFERRAL)
    assert (referral.status, referral.closed_at) == (ReviewStatus.CLOSED, NOW)
    assert referral.notes[-1]["note"] == "order_cancelled"
    audit = AuditLog.objects.get(action="loan.declined", object_id=str(loan.pk))
    assert audit.note == "order_cancelled" and audit.before["reserved"] == "8000.00"
    assert orders_cancelled(order_ids=[loan.order_id]) == []
    assert headroom(line) == (ZERO, ZERO, ZERO, ZERO)
    assert book_check() == []


def test_cancelled_order_declines_an_approved_loan(line):
    loan = pending_loan(line, status=LoanStatus.APPROVED)
    [result] = orders_cancelled(order_ids=[loan.order_id])
    assert result.outcome == CancellationOutcome.DECLINED
    assert Loan.objects.get(pk=loan.pk).status == LoanStatus.DECLINED
    assert headroom(line) == (ZERO, ZERO, ZERO, ZERO)
    assert book_check() == []


def test_disbursing_loan_is_left_alone_with_a_case_then_accelerated_once_paid(line):
    loan = pending_loan(line, status=LoanStatus.DISBURSING)
    cancel(loan)
    [result] = orders_cancelled(order_ids=[loan.order_id])
    assert result.outcome == CancellationOutcome.FLAGGED
    loan.refresh_from_db()
    assert (loan.status, loan.reserved_amount) == (LoanStatus.DISBURSING, PRINCIPAL)
    assert [c.status for c in cases(loan)] == [ReviewStatus.OPEN]
    # The sweep does not flag it again while the money is moving.
    assert cancelled_orders_sweep() == []
    # The payment settles after the cancellation: the next sweep accelerates the loan.
    pay_out(loan, value_date=TODAY, due_date=dt.date(2026, 6, 9))
    [swept] = cancelled_orders_sweep()
    assert (swept.loan_id, swept.outcome) == (loan.pk, CancellationOutcome.ACCELERATED)
    loan.refresh_from_db()
    assert loan.due_date == TODAY and len(cases(loan)) == 1
    assert cancelled_orders_sweep() == []
    assert book_check() == []


def test_approved_loan_with_a_disbursement_is_treated_as_paying_out(line):
    loan = pending_loan(line, status=LoanStatus.APPROVED)
    Disbursement.objects.create(
        loan=loan,
        end_to_end_id=f"SCFD{loan.pk:012d}",
        amount=loan.principal,
        currency=loan.currency,
        creditor_name="Core",
        creditor_account="6222000000000001",
        created_at=NOW,
    )
    [result] = orders_cancelled(order_ids=[loan.order_id])
    assert result.outcome == CancellationOutcome.FLAGGED
    assert Loan.objects.get(pk=loan.pk).status == LoanStatus.APPROVED


@pytest.mark.parametrize("status", [LoanStatus.REPAID, LoanStatus.DECLINED, LoanStatus.EXPIRED])
def test_closed_loans_are_not_touched(line, status):
    loan = pending_loan(line, status=LoanStatus.APPROVED)
    Loan.objects.filter(pk=loan.pk).update(status=status)
    cancel(loan)
    assert orders_cancelled(order_ids=[loan.order_id]) == []
    assert cancelled_orders_sweep() == []


def test_sweep_applies_a_cancellation_the_feed_never_followed_up(active, line):
    in_review = pending_loan(line, status=LoanStatus.IN_REVIEW)
    untouched = disbursed_loan(line, value_date=VALUE_DATE, due_date=DUE)
    cancel(active)
    cancel(in_review)
    results = {r.loan_id: r.outcome for r in cancelled_orders_sweep()}
    assert results == {
        active.pk: CancellationOutcome.ACCELERATED,
        in_review.pk: CancellationOutcome.DECLINED,
    }
    assert Loan.objects.get(pk=untouched.pk).accelerated_at is None
    assert cancelled_orders_sweep() == []
    assert book_check() == []


def test_bulk_feed_cancellation_accelerates_the_loan(active, agent, enterprise):
    payload = order_payload(
        agent.code,
        external_id=active.order.external_id,
        status="cancelled",
        version=2,
        amount="10000.00",
    )
    response = post_bulk(APIClient(), enterprise.plain_api_key, {"orders": [payload]})
    assert response.status_code == 200 and response.json()["updated"] == 1
    active.refresh_from_db()
    assert active.due_date == TODAY and active.accelerated_at == NOW
    assert len(cases(active)) == 1


def test_csv_feed_cancellation_declines_the_approved_loan(line, agent, enterprise_admin):
    loan = pending_loan(line, status=LoanStatus.APPROVED)
    row = csv_line(
        loan.order.external_id,
        agent.code,
        "SKU-1",
        "1",
        "10000.00",
        status="cancelled",
        version="2",
        order_date=TODAY.isoformat(),  # not after the fixed clock's today
    )
    response = csv_upload(client_for(enterprise_admin), csv_bytes([row]))
    assert response.status_code == 200 and response.json()["updated"] == 1
    assert Loan.objects.get(pk=loan.pk).status == LoanStatus.DECLINED
    assert headroom(line) == (ZERO, ZERO, ZERO, ZERO)
    assert book_check() == []


def test_pull_feed_cancellation_declines_the_pending_loan_in_the_page_transaction(
    line, agent, enterprise, monkeypatch
):
    loan = pending_loan(line, status=LoanStatus.IN_REVIEW)
    payload = order_payload(
        agent.code, external_id=loan.order.external_id, status="cancelled", version=2
    )
    monkeypatch.setattr(pull, "_fetch", lambda source, cursor: FeedPage([payload], None))
    source = OrderFeedSource.objects.create(enterprise=enterprise, url="http://127.0.0.1:9/x")
    result = feed_source_poll(source_id=source.pk)
    assert (result.updated, result.error) == (1, "")
    assert Loan.objects.get(pk=loan.pk).status == LoanStatus.DECLINED
    assert headroom(line) == (ZERO, ZERO, ZERO, ZERO)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_cancellations_accelerate_once(line):
    loan = disbursed_loan(line, value_date=VALUE_DATE, due_date=DUE)
    cancel(loan)
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def worker() -> None:
        try:
            barrier.wait(5)
            outcomes.extend(r.outcome for r in orders_cancelled(order_ids=[loan.order_id]))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert sorted(outcomes) == ["accelerated", "unchanged", "unchanged", "unchanged"]
    assert len(cases(loan)) == 1
    assert AuditLog.objects.filter(action="loan.accelerated").count() == 1
    assert book_check() == []
