"""The review queue: claim, approve (maker-checker), decline, expire; roles, audit, queue reads."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from lending.models import AuditLog, CreditLine, Loan, Program, Review
from lending.services.finance import loan_finance
from lending.services.repayments import repayment_record
from lending.services.review_expiry import reviews_expire
from lending.services.reviews import review_claim, review_decline
from lending.tasks import expire_reviews
from scf import clock
from scf.errors import ApplicationError
from tests.conftest import client_for
from tests.lending.active_loans import active_loan
from tests.lending.factories import CreditLineFactory, ProgramFactory
from tests.orders.factories import AgentFactory, OrderFactory, UserFactory

pytestmark = pytest.mark.django_db

REVIEWS = "/api/v1/reviews/"
# Near real time: the order factory dates orders with the real date.
T0 = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A settable clock for the services (``scf.clock.now``)."""

    class Clock:
        at = T0

    monkeypatch.setattr(clock, "now", lambda: Clock.at)
    return Clock


@pytest.fixture
def program(enterprise: Any) -> Any:
    # Anything above 5,000 of principal is referred; above 20,000 needs two approvers.
    return ProgramFactory(
        enterprise=enterprise,
        auto_approve_limit=Decimal("5000.00"),
        maker_checker_threshold=Decimal("20000.00"),
        review_hold_hours=48,
    )


@pytest.fixture
def reviewer(db: Any) -> Any:
    return UserFactory(role="risk_reviewer")


@pytest.fixture
def approver(db: Any) -> Any:
    return UserFactory(role="risk_approver")


@pytest.fixture
def approver2(db: Any) -> Any:
    return UserFactory(role="risk_approver")


def refer(agent_user: Any, enterprise: Any, amount: str = "10000.00") -> Review:
    """A finance request that the engine sends to review (principal = 80% of ``amount``)."""
    order = OrderFactory(agent=agent_user.agent, enterprise=enterprise, amount=Decimal(amount))
    loan = loan_finance(user=agent_user, order_id=order.id)
    assert loan.status == "in_review"
    return Review.objects.get(loan=loan)


@pytest.fixture
def case(agent_user: Any, enterprise: Any, line: Any, now: Any) -> Review:
    return refer(agent_user, enterprise)


@pytest.fixture
def big_case(agent_user: Any, enterprise: Any, line: Any, now: Any) -> Review:
    review = refer(agent_user, enterprise, amount="50000.00")
    assert review.requires_second_approval
    return review


def act(user: Any, review: Review, action: str, **body: Any) -> Any:
    return client_for(user).post(f"{REVIEWS}{review.pk}/{action}/", body, format="json")


def reserved(line: Any, program: Any) -> tuple[Decimal, Decimal]:
    return (
        CreditLine.objects.get(pk=line.pk).reserved,
        Program.objects.get(pk=program.pk).reserved,
    )


# --- claim -------------------------------------------------------------------------------------


def test_claim_takes_an_open_case(case, reviewer):
    response = act(reviewer, case, "claim", note="Looking at it")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "claimed" and body["claimed_by"] == reviewer.username
    assert body["notes"][-1]["by"] == reviewer.username
    assert body["notes"][-1]["action"] == "claim" and body["notes"][-1]["note"] == "Looking at it"


def test_claim_of_a_case_someone_else_holds_is_409(case, reviewer, approver):
    assert act(reviewer, case, "claim").status_code == 200
    response = act(approver, case, "claim")
    assert response.status_code == 409
    assert response.json()["code"] == "already_claimed"
    assert Review.objects.get(pk=case.pk).claimed_by_id == reviewer.pk


def test_claiming_again_is_harmless_and_writes_nothing(case, reviewer):
    act(reviewer, case, "claim")
    audits = AuditLog.objects.count()
    response = act(reviewer, case, "claim")
    assert response.status_code == 200 and response.json()["claimed_by"] == reviewer.username
    assert AuditLog.objects.count() == audits
    assert len(Review.objects.get(pk=case.pk).notes) == 1


def test_unknown_case_is_404(reviewer, db):
    response = client_for(reviewer).post(f"{REVIEWS}999999/claim/", {}, format="json")
    assert response.status_code == 404
    assert client_for(reviewer).get(f"{REVIEWS}999999/").status_code == 404


# --- approve -----------------------------------------------------------------------------------


def test_approve_without_claim_is_409_not_claimed(case, reviewer, approver):
    assert act(reviewer, case, "approve").json()["code"] == "not_claimed"
    act(reviewer, case, "claim")
    response = act(approver, case, "approve")
    assert response.status_code == 409 and response.json()["code"] == "not_claimed"
    assert Loan.objects.get(pk=case.loan_id).status == "in_review"


def test_below_threshold_one_approval_approves_loan_and_keeps_credit(
    case, reviewer, line, program, now
):
    before = reserved(line, program)
    act(reviewer, case, "claim")
    now.at = T0 + dt.timedelta(hours=1)
    response = act(reviewer, case, "approve", note="Documents fine")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "approved" and body["decided_by"] == reviewer.username
    assert body["first_approver"] == reviewer.username and body["second_approver"] is None
    loan = Loan.objects.get(pk=case.loan_id)
    assert loan.status == "disbursing" and loan.approved_at == now.at
    assert loan.reserved_amount == Decimal("8000.00")
    assert reserved(line, program) == before == (Decimal("8000.00"), Decimal("8000.00"))


def test_above_threshold_needs_a_second_different_approver(big_case, approver, approver2):
    act(approver, big_case, "claim")
    first = act(approver, big_case, "approve", note="ok from me")
    assert first.status_code == 200 and first.json()["status"] == "awaiting_second_approval"
    assert Loan.objects.get(pk=big_case.loan_id).status == "in_review"
    same = act(approver, big_case, "approve")
    assert same.status_code == 403 and same.json()["code"] == "maker_checker_same_user"
    second = act(approver2, big_case, "approve", note="checked")
    assert second.status_code == 200, second.content
    body = second.json()
    assert body["status"] == "approved"
    assert (body["first_approver"], body["second_approver"]) == (
        approver.username,
        approver2.username,
    )
    assert Loan.objects.get(pk=big_case.loan_id).status == "disbursing"
    assert [n["action"] for n in body["notes"]] == ["claim", "first_approval", "second_approval"]


def test_a_reviewer_cannot_give_the_second_approval(big_case, reviewer, approver):
    reviewer2 = UserFactory(role="risk_reviewer")
    act(reviewer, big_case, "claim")
    assert act(reviewer, big_case, "approve").json()["status"] == "awaiting_second_approval"
    response = act(reviewer2, big_case, "approve")
    assert response.status_code == 403 and response.json()["code"] == "approver_role_required"
    review = Review.objects.get(pk=big_case.pk)
    assert review.status == "awaiting_second_approval" and review.second_approver_id is None
    assert act(approver, big_case, "approve").json()["status"] == "approved"


def test_approval_of_a_frozen_line_is_409_line_frozen(case, reviewer, line):
    act(reviewer, case, "claim")
    CreditLine.objects.filter(pk=line.pk).update(frozen=True, frozen_reason="fraud alert")
    response = act(reviewer, case, "approve")
    assert response.status_code == 409 and response.json()["code"] == "line_frozen"
    assert Review.objects.get(pk=case.pk).status == "claimed"
    assert Loan.objects.get(pk=case.loan_id).status == "in_review"


def test_second_approval_rechecks_frozen_line(big_case, approver, approver2, line):
    act(approver, big_case, "claim")
    act(approver, big_case, "approve")
    CreditLine.objects.filter(pk=line.pk).update(frozen=True)
    response = act(approver2, big_case, "approve")
    assert response.status_code == 409 and response.json()["code"] == "line_frozen"
    assert Review.objects.get(pk=big_case.pk).status == "awaiting_second_approval"


# --- decline -----------------------------------------------------------------------------------


def test_decline_releases_exactly_the_reservation(
    case, reviewer, line, program, agent_user, enterprise, now
):
    other = refer(agent_user, enterprise, amount="20000.00")  # 16,000 reserved, stays
    assert reserved(line, program) == (Decimal("24000.00"), Decimal("24000.00"))
    act(reviewer, case, "claim")
    response = act(reviewer, case, "decline", reason="insufficient_documents", note="No invoice")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "declined" and body["decline_reason"] == "insufficient_documents"
    assert reserved(line, program) == (Decimal("16000.00"), Decimal("16000.00"))
    loan = Loan.objects.get(pk=case.loan_id)
    assert loan.status == "declined" and loan.reserved_amount == 0 and loan.closed_at == now.at
    assert Loan.objects.get(pk=other.loan_id).reserved_amount == Decimal("16000.00")


def test_declining_the_newer_case_first_still_returns_credit_to_exactly_zero(
    agent_user, enterprise, line, program, reviewer, now
):
    # 5,000.80 + 8,000.00 reserved, then released newest first: amounts whose sums are not
    # exact in binary floating point (how SQLite evaluates NUMERIC arithmetic).
    older = refer(agent_user, enterprise, amount="6251.00")
    newer = refer(agent_user, enterprise, amount="10000.00")
    assert reserved(line, program) == (Decimal("13000.80"), Decimal("13000.80"))
    for case in (newer, older):
        review_claim(user=reviewer, review_id=case.pk)
        review_decline(user=reviewer, review_id=case.pk, reason="credit_risk")
    assert reserved(line, program) == (0, 0)


def test_the_checker_may_decline_a_case_awaiting_second_approval(
    big_case, approver, approver2, line, program
):
    act(approver, big_case, "claim")
    act(approver, big_case, "approve")
    response = act(approver2, big_case, "decline", reason="credit_risk")
    assert response.status_code == 200 and response.json()["status"] == "declined"
    assert reserved(line, program) == (0, 0)


def test_decline_without_claim_is_409(case, reviewer, approver):
    act(reviewer, case, "claim")
    response = act(approver, case, "decline", reason="credit_risk")
    assert response.status_code == 409 and response.json()["code"] == "not_claimed"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "dont_like_it", "note": "x"}, "reason"),
        ({"note": "no reason given"}, "reason"),
        ({"reason": "other", "note": ""}, "note"),
        ({"reason": "credit_risk", "note": "x" * 2001}, "note"),
    ],
)
def test_bad_decline_input_is_422_with_field_errors_and_writes_nothing(
    case, reviewer, line, program, body, field
):
    act(reviewer, case, "claim")
    audits, before = AuditLog.objects.count(), reserved(line, program)
    response = client_for(reviewer).post(f"{REVIEWS}{case.pk}/decline/", body, format="json")
    assert response.status_code == 422, response.content
    error = response.json()
    assert error["code"] in ("validation_error", "invalid_decline_reason")
    assert list(error["fields"]) == [field] and error["fields"][field]
    review = Review.objects.get(pk=case.pk)
    assert review.status == "claimed" and review.decline_reason == "" and len(review.notes) == 1
    assert AuditLog.objects.count() == audits and reserved(line, program) == before


def test_service_refuses_unknown_reason_before_touching_anything(case, reviewer):
    review_claim(user=reviewer, review_id=case.pk)
    with pytest.raises(ApplicationError) as error:
        review_decline(user=reviewer, review_id=case.pk, reason="bogus")
    assert error.value.status_code == 422 and "reason" in error.value.fields
    assert Review.objects.get(pk=case.pk).status == "claimed"


# --- closed and expired cases ------------------------------------------------------------------


@pytest.mark.parametrize("action", ["claim", "approve", "decline"])
def test_acting_on_a_closed_case_is_409_review_closed(case, reviewer, action):
    act(reviewer, case, "claim")
    act(reviewer, case, "decline", reason="agent_request")
    response = act(reviewer, case, action, reason="credit_risk")
    assert response.status_code == 409 and response.json()["code"] == "review_closed"


@pytest.mark.parametrize("action", ["claim", "approve", "decline"])
def test_acting_after_the_deadline_is_409_review_expired(case, reviewer, now, action):
    act(reviewer, case, "claim")
    now.at = case.expires_at
    response = act(reviewer, case, action, reason="credit_risk")
    assert response.status_code == 409 and response.json()["code"] == "review_expired"
    assert Loan.objects.get(pk=case.loan_id).status == "in_review"


def test_expiry_releases_credit_and_leaves_live_cases(
    case, agent_user, enterprise, line, program, now
):
    now.at = T0 + dt.timedelta(hours=30)
    later = refer(agent_user, enterprise, amount="20000.00")  # expires at T0 + 78h
    assert reviews_expire(now=T0 + dt.timedelta(hours=47)) == 0
    assert reviews_expire(now=T0 + dt.timedelta(hours=48)) == 1
    review, loan = Review.objects.get(pk=case.pk), Loan.objects.get(pk=case.loan_id)
    assert review.status == "expired" and review.notes[-1]["action"] == "expire"
    assert loan.status == "expired" and loan.reserved_amount == 0
    assert reserved(line, program) == (Decimal("16000.00"), Decimal("16000.00"))
    assert Review.objects.get(pk=later.pk).status == "open"
    assert reviews_expire(now=T0 + dt.timedelta(hours=48)) == 0  # running twice: nothing new


def test_expiry_works_in_batches(agent_user, enterprise, line, program, now):
    cases = [refer(agent_user, enterprise) for _ in range(5)]
    assert reviews_expire(now=T0 + dt.timedelta(days=3), batch_size=2) == 5
    assert set(Review.objects.values_list("status", flat=True)) == {"expired"}
    assert Loan.objects.filter(pk__in=[c.loan_id for c in cases], status="expired").count() == 5
    assert reserved(line, program) == (0, 0)


def test_expire_task_expires_due_cases(case, line, program, now):
    now.at = T0 + dt.timedelta(hours=49)
    assert expire_reviews() == 1
    assert Loan.objects.get(pk=case.loan_id).status == "expired"
    assert reserved(line, program) == (0, 0)
    assert expire_reviews.delay().get() == 0  # eager in tests: the registered task runs
    assert expire_reviews.name == "lending.expire_reviews"


# --- roles -------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["claim", "approve", "decline"])
def test_ops_admin_may_look_but_not_act(case, ops_user, action):
    client = client_for(ops_user)
    assert client.get(REVIEWS).status_code == 200
    assert client.get(f"{REVIEWS}{case.pk}/").status_code == 200
    response = act(ops_user, case, action, reason="credit_risk")
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    assert Review.objects.get(pk=case.pk).status == "open"


@pytest.mark.parametrize("who", ["agent", "enterprise_admin"])
def test_agents_and_enterprise_admins_get_403(case, agent_user, enterprise_admin, who):
    user = agent_user if who == "agent" else enterprise_admin
    client = client_for(user)
    assert client.get(REVIEWS).status_code == 403
    assert client.get(f"{REVIEWS}{case.pk}/").status_code == 403
    for action in ("claim", "approve", "decline"):
        assert act(user, case, action, reason="credit_risk").status_code == 403
    assert Review.objects.get(pk=case.pk).status == "open"


def test_service_refuses_a_role_the_api_would_refuse(case, ops_user):
    with pytest.raises(ApplicationError) as error:
        review_claim(user=ops_user, review_id=case.pk)
    assert error.value.status_code == 403


def test_anonymous_is_refused(case, client):
    assert client.get(REVIEWS).status_code in (401, 403)


# --- audit -------------------------------------------------------------------------------------


def test_every_action_writes_audit_rows_with_actor_and_before_after(big_case, approver, approver2):
    act(approver, big_case, "claim", note="mine")
    act(approver, big_case, "approve", note="first")
    act(approver2, big_case, "approve", note="second")
    rows = AuditLog.objects.filter(object_type="lending.review", object_id=str(big_case.pk))
    by_action = {row.action: row for row in rows}
    assert set(by_action) == {"review.claim", "review.first_approval", "review.second_approval"}
    claim = by_action["review.claim"]
    assert claim.actor_id == approver.pk and claim.actor_label.endswith(approver.username)
    assert (claim.before["status"], claim.after["status"]) == ("open", "claimed")
    assert claim.note == "mine"
    second = by_action["review.second_approval"]
    assert second.actor_id == approver2.pk
    assert second.before["status"] == "awaiting_second_approval"
    assert second.after["status"] == "approved" and second.after["loan_status"] == "approved"
    loan_row = AuditLog.objects.get(
        object_type="lending.loan", object_id=str(big_case.loan_id), action="loan.approved"
    )
    assert loan_row.actor_id == approver2.pk
    assert (loan_row.before["status"], loan_row.after["status"]) == ("in_review", "approved")


def test_decline_and_expiry_are_audited(case, agent_user, enterprise, reviewer, now):
    act(reviewer, case, "claim")
    act(reviewer, case, "decline", reason="suspected_fraud", note="odd")
    row = AuditLog.objects.get(action="review.decline")
    assert row.actor_id == reviewer.pk
    assert (
        row.after["decline_reason"] == "suspected_fraud" and row.after["reserved_amount"] == "0.00"
    )
    assert row.before["reserved_amount"] == "8000.00"
    other = refer(agent_user, enterprise)
    reviews_expire(now=other.expires_at)
    expiry = AuditLog.objects.get(action="review.expire", object_id=str(other.pk))
    assert expiry.actor_id is None and expiry.actor_label == "system"
    assert (expiry.before["status"], expiry.after["status"]) == ("open", "expired")
    loan_row = AuditLog.objects.get(action="loan.expired", object_id=str(other.loan_id))
    assert (loan_row.before["reserved"], loan_row.after["reserved"]) == ("8000.00", "0.00")


# --- the queue ---------------------------------------------------------------------------------


def test_queue_lists_open_cases_oldest_first_with_what_a_reviewer_needs(
    agent_user, enterprise, line, program, reviewer, now
):
    first = refer(agent_user, enterprise)
    now.at = T0 + dt.timedelta(minutes=5)
    second = refer(agent_user, enterprise, amount="20000.00")
    now.at = T0 + dt.timedelta(minutes=10)
    closed = refer(agent_user, enterprise)
    review_claim(user=reviewer, review_id=closed.pk)
    review_decline(user=reviewer, review_id=closed.pk, reason="agent_request")
    small = OrderFactory(agent=agent_user.agent, enterprise=enterprise, amount=Decimal("5000.00"))
    assert loan_finance(user=agent_user, order_id=small.id).status == "disbursing"
    today = clock.business_date(program.time_zone)
    paid = active_loan(line, principal="3000.00", value_date=today)
    for reference, amount in (("REP-1", "500.00"), ("REP-2", "700.00")):
        repayment_record(
            loan=paid,
            amount=Decimal(amount),
            value_date=today,
            reference=reference,
            source="api",
            actor=reviewer,
        )

    body = client_for(reviewer).get(REVIEWS).json()
    assert body["count"] == 2 and body["previous"] is None
    assert [r["id"] for r in body["results"]] == [first.pk, second.pk]
    item = body["results"][0]
    assert item["loan"]["id"] == first.loan_id and item["loan"]["principal"] == "8000.00"
    assert item["decision"]["outcome"] == "in_review"
    assert [r["code"] for r in item["decision"]["reasons"]] == ["above_auto_approve_limit"]
    assert {"rule": "auto_approve_limit", "outcome": "refer"}.items() <= next(
        r for r in item["decision"]["rules"] if r["rule"] == "auto_approve_limit"
    ).items()
    assert item["decision"]["inputs"]["auto_approve_limit"] == "5000.00"
    history = item["agent_history"]
    assert history["orders_count"] == 5 and history["orders_amount"] == "48000.00"
    assert history["loans_by_status"] == {
        "in_review": 2,
        "declined": 1,
        "disbursing": 1,
        "active": 1,
    }
    assert history["principal_by_status"]["in_review"] == "24000.00"
    assert history["repayments_count"] == 2 and history["repayments_amount"] == "1200.00"
    assert history["max_days_past_due"] == 0 and history["current_days_past_due"] == 0
    assert item["credit_line"] == {
        "id": line.pk,
        "limit": "1000000.00",
        "outstanding": "1800.00",
        "reserved": "28000.00",
        "available": "970200.00",
        "risk_grade": "B",
        "frozen": False,
        "frozen_reason": "",
    }


def test_queue_history_shows_days_past_due(agent_user, enterprise, line, reviewer, now):
    case = refer(agent_user, enterprise)
    extra = [refer(agent_user, enterprise) for _ in range(2)]
    Loan.objects.filter(pk=extra[0].loan_id).update(status="overdue", days_past_due=12)
    Loan.objects.filter(pk=extra[1].loan_id).update(status="repaid", days_past_due=40)
    item = client_for(reviewer).get(f"{REVIEWS}{case.pk}/").json()
    assert item["agent_history"]["current_days_past_due"] == 12
    assert item["agent_history"]["max_days_past_due"] == 40


def test_queue_costs_the_same_queries_for_many_cases(
    enterprise, program, reviewer, now, django_assert_max_num_queries
):
    def add_cases(n: int) -> None:
        for _ in range(n):
            agent = AgentFactory(enterprises=[enterprise])
            CreditLineFactory(agent=agent, program=program)
            refer(UserFactory(role="agent", agent=agent), enterprise)

    client = client_for(reviewer)
    add_cases(1)
    # Authentication, count, page, and the history's three grouped aggregates (orders, loans,
    # repayments), whatever the page's size.
    with django_assert_max_num_queries(6):
        assert client.get(REVIEWS).json()["count"] == 1
    add_cases(9)
    with django_assert_max_num_queries(6):
        body = client.get(REVIEWS).json()
    assert body["count"] == 10 and len({r["loan"]["agent"] for r in body["results"]}) == 10


def test_queue_searches_filters_my_cases_and_gives_each_deadline(
    case, agent_user, enterprise, reviewer, approver, program
):
    other = refer(agent_user, enterprise)
    review_claim(user=reviewer, review_id=other.pk)
    client = client_for(reviewer)
    found = client.get(REVIEWS, {"q": case.loan.reference}).json()["results"]
    assert [r["id"] for r in found] == [case.pk]
    assert [r["id"] for r in client.get(REVIEWS, {"mine": "true"}).json()["results"]] == [other.pk]
    assert client_for(approver).get(REVIEWS, {"mine": "1"}).json()["count"] == 0
    item = client.get(f"{REVIEWS}{case.pk}/").json()
    assert item["deadline"] == item["expires_at"]  # a referral is due when its hold expires
    assert case.expires_at == case.created_at + dt.timedelta(hours=program.review_hold_hours)


def test_queue_filters_by_kind_and_status(case, agent_user, enterprise, reviewer):
    other = refer(agent_user, enterprise)
    review_claim(user=reviewer, review_id=other.pk)
    review_decline(user=reviewer, review_id=other.pk, reason="credit_risk")
    client = client_for(reviewer)
    assert [r["id"] for r in client.get(f"{REVIEWS}?kind=referral").json()["results"]] == [case.pk]
    assert client.get(f"{REVIEWS}?kind=accelerated").json()["count"] == 0
    declined = client.get(f"{REVIEWS}?status=declined").json()["results"]
    assert [r["id"] for r in declined] == [other.pk]
    bad = client.get(f"{REVIEWS}?status=nonsense")
    assert bad.status_code == 422 and list(bad.json()["fields"]) == ["status"]


def test_queue_is_paginated(agent_user, enterprise, line, reviewer, now):
    for _ in range(3):
        refer(agent_user, enterprise)
    body = client_for(reviewer).get(f"{REVIEWS}?page_size=2").json()
    assert body["count"] == 3 and len(body["results"]) == 2 and body["next"]


def test_schema_documents_the_review_endpoints(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operations = {
        op["operationId"]: op
        for item in schema["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    }
    for name in ("list", "retrieve", "claim", "approve", "decline"):
        assert f"reviews_{name}" in operations
    decline = operations["reviews_decline"]["requestBody"]["content"]["application/json"]
    request_schema = schema["components"]["schemas"][decline["schema"]["$ref"].split("/")[-1]]
    assert request_schema["required"] == ["reason"]
    reason = request_schema["properties"]["reason"]
    reason_enum = schema["components"]["schemas"][reason["$ref"].split("/")[-1]]["enum"]
    assert "suspected_fraud" in reason_enum and "other" in reason_enum
    page = operations["reviews_list"]["responses"]["200"]["content"]["application/json"]
    page_schema = schema["components"]["schemas"][page["schema"]["$ref"].split("/")[-1]]
    assert set(page_schema["properties"]) == {"count", "next", "previous", "results"}


# --- concurrency (PostgreSQL: real row locks, separate connections) -----------------------------


def _at_once(calls: list[Any]) -> list[str]:
    """Run the calls in threads released together; each result is "ok" or the error code."""
    barrier = threading.Barrier(len(calls))
    results: list[str] = []
    lock = threading.Lock()

    def run(call: Any) -> None:
        barrier.wait()
        try:
            call()
            outcome = "ok"
        except ApplicationError as exc:
            outcome = exc.code
        except Exception as exc:  # surfaces in the assertion instead of vanishing in the thread
            outcome = repr(exc)
        finally:
            connection.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_give_the_case_to_one_reviewer(agent_user, enterprise, line):
    case = refer(agent_user, enterprise)
    users = [UserFactory(role="risk_reviewer") for _ in range(4)]
    results = _at_once([lambda u=u: review_claim(user=u, review_id=case.pk) for u in users])
    assert Counter(results) == {"ok": 1, "already_claimed": 3}
    assert AuditLog.objects.filter(action="review.claim").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_decline_racing_expiry_releases_credit_once(agent_user, enterprise, line, program):
    cases = [refer(agent_user, enterprise) for _ in range(4)]
    reviewer = UserFactory(role="risk_reviewer")
    for case in cases:
        review_claim(user=reviewer, review_id=case.pk)
    deadline = max(c.expires_at for c in cases)
    declines = [
        lambda c=c: review_decline(user=reviewer, review_id=c.pk, reason="credit_risk")
        for c in cases
    ]
    expire_counts: list[int] = []
    _at_once([*declines, lambda: expire_counts.append(reviews_expire(now=deadline))])
    statuses = Counter(Review.objects.values_list("status", flat=True))
    assert statuses["declined"] + statuses["expired"] + statuses["claimed"] == 4
    assert statuses["expired"] == sum(expire_counts)
    reviews_expire(now=deadline)  # whatever was skipped while locked goes now
    assert reserved(line, program) == (0, 0)
    assert not Loan.objects.filter(status="in_review").exists()
