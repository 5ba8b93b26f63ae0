"""Follow-up cases on the review queue: a failed disbursement and an accelerated loan.

Such a case is not a credit decision: a risk reviewer claims it, acts outside the engine (calls
the agent, corrects the enterprise's bank details, starts collection) and closes it with a note
saying what was done. The loan itself is not touched by closing.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from lending.models import AuditLog, Disbursement, Loan, LoanStatus, Review, ReviewStatus
from lending.services.disbursement import disbursement_fail
from lending.services.finance import loan_finance
from tests.conftest import client_for
from tests.lending.loan_makers import disbursed_loan
from tests.lending.test_acceleration import order_cancelled
from tests.orders.factories import OrderFactory, UserFactory

pytestmark = pytest.mark.django_db

ZERO = Decimal("0.00")


@pytest.fixture
def reviewer(db: Any) -> Any:
    return UserFactory(role="risk_reviewer")


@pytest.fixture
def failed(line: Any, agent_user: Any, enterprise: Any) -> Review:
    order = OrderFactory(agent=agent_user.agent, enterprise=enterprise)
    loan = loan_finance(user=agent_user, order_id=order.pk)
    disbursement = Disbursement.objects.get(loan=loan)
    disbursement_fail(disbursement_id=disbursement.pk, reason_code="AC04", detail="closed account")
    return Review.objects.get(loan=loan)


@pytest.fixture
def accelerated(line: Any) -> Review:
    loan = disbursed_loan(line, value_date=dt.date(2026, 2, 1), due_date=dt.date(2026, 5, 4))
    order_cancelled(loan)
    return Review.objects.get(loan=loan)


def post(client: Any, review: Review, action: str, body: dict[str, str]) -> Any:
    return client.post(f"/api/v1/reviews/{review.pk}/{action}/", body, format="json")


@pytest.mark.parametrize("case", ["failed", "accelerated"])
def test_a_follow_up_case_is_claimed_then_closed_with_what_was_done(case, reviewer, request):
    review = request.getfixturevalue(case)
    loan_before = Loan.objects.values().get(pk=review.loan_id)
    client = client_for(reviewer)
    assert post(client, review, "claim", {}).status_code == 200
    reply = post(client, review, "close", {"note": "Called the agent; repayment promised."})
    assert reply.status_code == 200, reply.json()
    body = reply.json()
    assert (body["status"], body["decided_by"]) == ("closed", reviewer.username)
    assert body["notes"][-1]["note"] == "Called the agent; repayment promised."
    assert body["closed_at"] is not None
    assert Loan.objects.values().get(pk=review.loan_id) == loan_before  # the loan is untouched
    audit = AuditLog.objects.get(action="review.close")
    assert (audit.actor_id, audit.note) == (reviewer.pk, "Called the agent; repayment promised.")
    assert audit.before["status"] == "claimed" and audit.after["status"] == "closed"
    # Closed means closed: it leaves the open queue and cannot be closed again.
    listed = client.get("/api/v1/reviews/").json()["results"]
    assert review.pk not in [row["id"] for row in listed]
    again = post(client, review, "close", {"note": "again"})
    assert (again.status_code, again.json()["code"]) == (409, "review_closed")


def test_the_failed_payment_case_shows_its_loan_failed_with_credit_released(failed, reviewer):
    body = client_for(reviewer).get(f"/api/v1/reviews/{failed.pk}/").json()
    assert (body["kind"], body["status"]) == ("disbursement_failed", "open")
    assert body["loan"]["status"] == LoanStatus.DISBURSEMENT_FAILED
    assert Decimal(body["credit_line"]["reserved"]) == ZERO


def test_closing_needs_a_note_and_writes_nothing_without_one(accelerated, reviewer):
    client = client_for(reviewer)
    post(client, accelerated, "claim", {})
    for body in ({}, {"note": ""}, {"note": "   "}):
        reply = post(client, accelerated, "close", body)
        assert (reply.status_code, reply.json()["code"]) in {
            (400, "validation_error"),
            (422, "validation_error"),
        }
        assert "note" in reply.json()["fields"]
    accelerated.refresh_from_db()
    assert accelerated.status == ReviewStatus.CLAIMED
    assert not AuditLog.objects.filter(action="review.close").exists()


def test_only_the_claimer_closes_a_follow_up_case(accelerated, reviewer):
    other = UserFactory(role="risk_approver")
    unclaimed = post(client_for(reviewer), accelerated, "close", {"note": "done"})
    assert (unclaimed.status_code, unclaimed.json()["code"]) == (409, "not_claimed")
    post(client_for(reviewer), accelerated, "claim", {})
    taken = post(client_for(other), accelerated, "close", {"note": "done"})
    assert (taken.status_code, taken.json()["code"]) == (409, "not_claimed")
    accelerated.refresh_from_db()
    assert accelerated.status == ReviewStatus.CLAIMED


def test_a_referral_cannot_be_closed_and_a_follow_up_cannot_be_approved(
    accelerated, reviewer, line, agent_user, enterprise
):
    big = OrderFactory(agent=agent_user.agent, enterprise=enterprise, amount=Decimal("900000.00"))
    referred = loan_finance(user=agent_user, order_id=big.pk)
    referral = Review.objects.get(loan=referred)
    client = client_for(reviewer)
    post(client, referral, "claim", {})
    refused = post(client, referral, "close", {"note": "done"})
    assert (refused.status_code, refused.json()["code"]) == (409, "review_kind_not_supported")
    post(client, accelerated, "claim", {})
    refused = post(client, accelerated, "approve", {"note": "ok"})
    assert (refused.status_code, refused.json()["code"]) == (409, "review_kind_not_supported")


@pytest.mark.parametrize("role", ["agent", "enterprise_admin", "ops_admin"])
def test_only_risk_staff_close_cases(accelerated, role, enterprise, agent):
    party = {"agent": {"agent": agent}, "enterprise_admin": {"enterprise": enterprise}}
    user = UserFactory(role=role, **party.get(role, {}))
    reply = post(client_for(user), accelerated, "close", {"note": "done"})
    assert reply.status_code == 403
    accelerated.refresh_from_db()
    assert accelerated.status == ReviewStatus.OPEN
