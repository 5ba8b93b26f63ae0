"""The risk review queue: order and SLA, the case page, claim / approve / decline with
maker-checker, line freeze and unfreeze, failed payments in the queue, the audit trail."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import pytest
from django.utils import dateformat, timezone

from lending.models import AuditLog, CreditLine, Loan, Review
from lending.services.finance import loan_finance
from lending.services.lines import credit_line_freeze
from lending.services.repayments import repayment_record
from scf import clock
from tests.lending.active_loans import active_loan
from tests.web.conftest import APPROVED_OR_LATER, World, login, make_loan

pytestmark = pytest.mark.django_db


def refer(world: World, amount: str = "10000.00") -> Review:
    loan = loan_finance(user=world.agent_user, order_id=world.order(amount).pk)
    assert loan.status == "in_review"
    return Review.objects.get(loan=loan)


def test_queue_lists_open_cases_oldest_first_with_age_and_sla_colour(world: World) -> None:
    now = clock.now()
    late, warn, fresh = refer(world), refer(world), refer(world)
    for review, age in ((late, 50), (warn, 40), (fresh, 1)):
        Review.objects.filter(pk=review.pk).update(
            created_at=now - dt.timedelta(hours=age),
            expires_at=now - dt.timedelta(hours=age) + dt.timedelta(hours=48),
        )
    body = login(world.reviewer).get("/reviews/").content.decode()
    order = [int(part.split('"', 1)[0]) for part in body.split('data-review="')[1:]]
    assert order == [late.pk, warn.pk, fresh.pk]
    assert f'data-review="{late.pk}" data-sla="late"' in body
    assert f'data-review="{warn.pk}" data-sla="warn"' in body
    assert f'data-review="{fresh.pk}" data-sla="ok"' in body
    assert "2\xa0days" in body  # age of the oldest case


def queue_ids(body: str) -> list[int]:
    return [int(part.split('"', 1)[0]) for part in body.split('data-review="')[1:]]


def test_queue_searches_by_agent_order_and_loan_reference(world: World) -> None:
    mine = refer(world)
    order = world.order("12000.00", agent=world.other_agent, external_id="SO-FIND-ME-7")
    theirs = Review.objects.get(loan=loan_finance(user=world.other_agent_user, order_id=order.pk))
    client = login(world.reviewer)
    assert queue_ids(client.get("/reviews/").content.decode()) == [mine.pk, theirs.pk]
    by_agent = client.get("/reviews/", {"q": world.other_agent.code.lower()}).content.decode()
    assert queue_ids(by_agent) == [theirs.pk]
    assert queue_ids(client.get("/reviews/", {"q": "find-me"}).content.decode()) == [theirs.pk]
    reference = mine.loan.reference
    assert queue_ids(client.get("/reviews/", {"q": reference}).content.decode()) == [mine.pk]
    nothing = client.get("/reviews/", {"q": "no such thing"}).content.decode()
    assert queue_ids(nothing) == [] and "No case matches." in nothing
    assert 'name="q" value="no such thing"' in nothing


def test_my_cases_are_the_ones_i_claimed(world: World) -> None:
    first, second, third = refer(world), refer(world), refer(world)
    _post(login(world.reviewer), second, "claim")
    _post(login(world.approver), third, "claim")
    client = login(world.reviewer)
    assert queue_ids(client.get("/reviews/").content.decode()) == [first.pk, second.pk, third.pk]
    body = client.get("/reviews/", {"mine": "1"}).content.decode()
    assert queue_ids(body) == [second.pk]
    assert 'name="mine" value="1" checked' in body
    theirs = login(world.approver).get("/reviews/", {"mine": "1"}).content.decode()
    assert queue_ids(theirs) == [third.pk]


def test_queue_shows_each_cases_deadline(world: World, settings: Any) -> None:
    settings.REVIEW_FOLLOW_UP_SLA_HOURS = 6
    referral = refer(world)  # due when its hold (the program's review_hold_hours) expires
    opened = clock.now() - dt.timedelta(hours=5)
    failed = Review.objects.create(
        loan=make_loan(world.line, "disbursement_failed", "4000.00"),
        kind="disbursement_failed",
        created_at=opened,
    )
    body = login(world.reviewer).get("/reviews/").content.decode()
    assert '<th scope="col">Deadline</th>' in body

    def deadline(review: Review) -> str:
        row = body[body.index(f'data-review="{review.pk}"') :]
        return row.split('data-deadline="', 1)[1].split('"', 1)[0]

    assert referral.expires_at is not None
    assert deadline(referral) == dateformat.format(timezone.localtime(referral.expires_at), "c")
    due = opened + dt.timedelta(hours=6)
    assert deadline(failed) == dateformat.format(timezone.localtime(due), "c")
    assert deadline(failed).endswith("+08:00")  # shown in the platform's time zone
    assert f'data-review="{failed.pk}" data-sla="warn"' in body  # 5 of its 6 hours used


def test_failed_payments_appear_in_the_queue_and_can_be_filtered(world: World) -> None:
    referral = refer(world)
    failed_loan = make_loan(world.line, "disbursement_failed", "4000.00")
    failed = Review.objects.create(
        loan=failed_loan, kind="disbursement_failed", created_at=clock.now()
    )
    client = login(world.approver)
    body = client.get("/reviews/").content.decode()
    assert "Failed payment" in body and "Referred request" in body
    only = client.get("/reviews/?kind=disbursement_failed").content.decode()
    assert f'data-review="{failed.pk}"' in only
    assert f'data-review="{referral.pk}"' not in only
    case = client.get(f"/reviews/{failed.pk}/").content.decode()
    assert 'id="approve"' not in case  # follow-up cases are claimed, not approved
    assert 'id="close-case"' not in case  # ... and closed once claimed
    client.post(f"/reviews/{failed.pk}/claim/", {"note": ""})
    assert 'id="close-case"' in client.get(f"/reviews/{failed.pk}/").content.decode()
    refused = client.post(f"/reviews/{failed.pk}/close/", {"note": ""}, follow=True)
    assert "Say what was done" in refused.content.decode()
    done = client.post(f"/reviews/{failed.pk}/close/", {"note": "Bank details fixed"}, follow=True)
    assert "Case closed." in done.content.decode()
    failed.refresh_from_db()
    assert (failed.status, failed.notes[-1]["note"]) == ("closed", "Bank details fixed")


def test_case_page_shows_inputs_rules_history_and_line(world: World) -> None:
    make_loan(world.line, "repaid", "1000.00")
    review = refer(world)
    body = login(world.reviewer).get(f"/reviews/{review.pk}/").content.decode()
    assert 'data-reason="above_auto_approve_limit"' in body
    assert "<code>line_available</code>" in body  # a decision input
    assert "<code>principal</code>" in body
    assert 'id="agent-history"' in body and 'id="credit-line"' in body
    assert "CN¥1,000,000.00" in body  # the line's limit
    assert 'id="claim"' in body
    assert not review.requires_second_approval
    assert "One approval is enough for this amount." in body


def test_case_page_counts_the_agents_repayments(world: World) -> None:
    today = clock.business_date(world.program.time_zone)
    paid = active_loan(world.line, principal="3000.00", value_date=today)
    for reference, amount in (("REP-W1", "500.00"), ("REP-W2", "700.00")):
        repayment_record(
            loan=paid,
            amount=Decimal(amount),
            value_date=today,
            reference=reference,
            source="api",
            actor=world.ops,
        )
    review = refer(world)
    body = login(world.reviewer).get(f"/reviews/{review.pk}/").content.decode()
    assert '<dd data-figure="repayments">2 · CN¥1,200.00</dd>' in body


def _post(client: Any, review: Review, action: str, **data: str) -> str:
    response = client.post(f"/reviews/{review.pk}/{action}/", data, follow=True)
    assert response.status_code == 200
    return response.content.decode()


def test_claim_then_approve_below_the_threshold_approves_the_loan(world: World) -> None:
    review = refer(world, "10000.00")  # principal 8,000: one approval
    client = login(world.reviewer)
    assert "You have claimed this case." in _post(client, review, "claim", note="looking")
    body = _post(client, review, "approve", note="documents fine")
    assert "Approved. The loan will be paid out." in body
    review.refresh_from_db()
    assert review.status == "approved"
    assert Loan.objects.get(pk=review.loan_id).status in APPROVED_OR_LATER
    assert review.notes[-1]["note"] == "documents fine"


def test_above_the_threshold_a_second_person_must_approve(world: World) -> None:
    review = refer(world, "30000.00")  # principal 24,000 > 20,000
    assert review.requires_second_approval
    maker, checker = login(world.reviewer), login(world.approver)
    _post(maker, review, "claim")
    body = _post(maker, review, "approve")
    assert "A risk approver other than you must approve it too." in body
    again = _post(maker, review, "approve")
    assert "The second approval must come from another person." in again
    assert 'id="waiting-for-checker"' in again and 'id="approve"' not in again
    review.refresh_from_db()
    assert review.status == "awaiting_second_approval"
    checker_page = checker.get(f"/reviews/{review.pk}/").content.decode()
    assert 'id="approve">Second approval<' in checker_page
    _post(checker, review, "approve", note="checked")
    review.refresh_from_db()
    assert review.status == "approved"
    assert (review.first_approver_id, review.second_approver_id) == (
        world.reviewer.pk,
        world.approver.pk,
    )


def test_approving_an_unclaimed_case_is_refused_with_a_message(world: World) -> None:
    review = refer(world)
    body = _post(login(world.reviewer), review, "approve")
    assert "Claim the case before deciding it." in body
    review.refresh_from_db()
    assert review.status == "open"


def test_another_reviewers_claim_is_respected(world: World) -> None:
    review = refer(world)
    _post(login(world.reviewer), review, "claim")
    body = _post(login(world.approver), review, "claim")
    assert "Another reviewer has claimed this case." in body


def test_decline_needs_a_reason_and_releases_the_credit(world: World) -> None:
    review = refer(world)
    client = login(world.reviewer)
    _post(client, review, "claim")
    body = _post(client, review, "decline", reason="", note="")
    assert "Choose one of" in body
    line = CreditLine.objects.get(pk=world.line.pk)
    assert line.reserved == review.loan.principal
    body = _post(client, review, "decline", reason="credit_risk", note="too much exposure")
    assert "The reserved credit has been released." in body
    review.refresh_from_db()
    assert (review.status, review.decline_reason) == ("declined", "credit_risk")
    assert CreditLine.objects.get(pk=world.line.pk).reserved == 0


def test_unknown_review_is_a_404(world: World) -> None:
    client = login(world.reviewer)
    assert client.get("/reviews/999999/").status_code == 404
    assert client.post("/reviews/999999/claim/").status_code == 404


def test_freeze_and_unfreeze_a_line_with_a_reason(world: World) -> None:
    review = refer(world)
    client = login(world.reviewer)
    freeze = f"/reviews/lines/{world.agent.pk}/{world.program.pk}/freeze/"
    unfreeze = f"/reviews/lines/{world.agent.pk}/{world.program.pk}/unfreeze/"
    back = f"/reviews/{review.pk}/"
    refused = client.post(freeze, {"reason": " ", "next": back}, follow=True).content.decode()
    assert "Give a reason." in refused
    assert not CreditLine.objects.get(pk=world.line.pk).frozen
    asked = client.post(freeze, {"reason": "court order", "next": back})
    assert asked.status_code == 200 and 'id="confirm-freeze-button"' in asked.content.decode()
    assert not CreditLine.objects.get(pk=world.line.pk).frozen  # not before it is confirmed
    response = client.post(freeze, {"reason": "court order", "next": back, "confirmed": "yes"})
    assert response.status_code == 302 and response["Location"] == back
    line = CreditLine.objects.get(pk=world.line.pk)
    assert (line.frozen, line.frozen_reason) == (True, "court order")
    page = client.get(back).content.decode()
    assert "court order" in page and 'id="unfreeze"' in page
    client.post(unfreeze, {"reason": "lifted", "next": back})
    assert not CreditLine.objects.get(pk=world.line.pk).frozen
    actions = list(
        AuditLog.objects.filter(object_type="lending.creditline", object_id=str(world.line.pk))
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["credit_line.freeze", "credit_line.unfreeze"]


def test_a_freeze_from_the_case_is_confirmed_first_and_noted_in_the_case(world: World) -> None:
    review = refer(world)
    client = login(world.reviewer)
    url = f"/reviews/{review.pk}/line/freeze/"
    assert f'action="{url}"' in client.get(f"/reviews/{review.pk}/").content.decode()
    asked = client.post(url, {"reason": "court order"})
    page = asked.content.decode()
    assert asked.status_code == 200 and 'id="confirm-freeze"' in page
    assert '<dd id="freeze-reason">court order</dd>' in page
    assert f'href="/reviews/{review.pk}/" role="button"' in page  # cancel goes back to the case
    assert not CreditLine.objects.get(pk=world.line.pk).frozen
    done = client.post(url, {"reason": "court order", "confirmed": "yes"}, follow=True)
    assert "The line is frozen." in done.content.decode()
    assert CreditLine.objects.get(pk=world.line.pk).frozen
    review.refresh_from_db()
    assert review.notes[-1]["action"] == "line_freeze"
    assert (review.notes[-1]["by"], review.notes[-1]["note"]) == ("risk.reviewer", "court order")
    trail = set(AuditLog.objects.filter(actor=world.reviewer).values_list("action", "object_id"))
    assert ("credit_line.freeze", str(world.line.pk)) in trail
    assert ("review.line_freeze", str(review.pk)) in trail
    unfreeze = f"/reviews/{review.pk}/line/unfreeze/"
    client.post(unfreeze, {"reason": "order lifted"})  # lifting needs no confirmation
    review.refresh_from_db()
    assert not CreditLine.objects.get(pk=world.line.pk).frozen
    assert (review.notes[-1]["action"], review.notes[-1]["note"]) == (
        "line_unfreeze",
        "order lifted",
    )


def test_a_freeze_without_a_reason_is_refused_before_any_confirmation(world: World) -> None:
    review = refer(world)
    response = login(world.reviewer).post(
        f"/reviews/{review.pk}/line/freeze/", {"reason": " "}, follow=True
    )
    body = response.content.decode()
    assert "Give a reason." in body and 'id="confirm-freeze"' not in body
    assert not CreditLine.objects.get(pk=world.line.pk).frozen


def test_a_frozen_line_heads_the_case_and_disables_approve_with_the_reason(world: World) -> None:
    review = refer(world)
    client = login(world.reviewer)
    _post(client, review, "claim")
    credit_line_freeze(actor=world.ops, line=world.line, reason="court order")
    body = client.get(f"/reviews/{review.pk}/").content.decode()
    banner = body.index('id="line-frozen"')
    assert banner < body.index('id="request"') and banner < body.index('id="actions"')
    assert "The agent's credit line is frozen." in body[banner : body.index('id="request"')]
    assert "court order" in body[banner : body.index('id="request"')]
    assert 'id="approve" disabled aria-describedby="approve-blocked"' in body
    blocked = body[body.index('id="approve-blocked"') :]
    assert blocked.index("The agent&#x27;s credit line is frozen.") < blocked.index("</p>")
    assert 'id="decline">' in body  # declining is still possible


def line_figures(body: str) -> dict[str, tuple[str, str]]:
    """The case page's line figures: label -> (at decision time, now)."""
    table = body[body.index('id="line-figures"') :]
    table = table[: table.index("</table>")]
    row = re.compile(
        r'<th scope="row">([^<]+)</th>\s*<td class="amount"[^>]*>([^<]*)</td>\s*'
        r'<td class="amount"[^>]*>([^<]*)</td>'
    )
    return {label: (then, now) for label, then, now in row.findall(table)}


def test_the_decision_inputs_stand_as_at_decision_time_beside_the_line_now(world: World) -> None:
    review = refer(world)  # principal 8,000 reserved on a line of 1,000,000
    CreditLine.objects.filter(pk=world.line.pk).update(limit=Decimal("500000.00"), risk_grade="D")
    body = login(world.reviewer).get(f"/reviews/{review.pk}/").content.decode()
    assert '<th scope="col" class="amount">At decision time</th>' in body
    assert "Inputs at decision time" in body
    figures = line_figures(body)
    assert figures["Limit"] == ("CN¥1,000,000.00", "CN¥500,000.00")
    assert figures["Available"] == ("CN¥1,000,000.00", "CN¥492,000.00")
    assert figures["Risk grade"] == ("B", "D")
    assert figures["Reserved"] == ("—", "CN¥8,000.00")
    assert figures["Frozen"] == ("No", "No")


def test_freeze_redirects_only_to_this_site(world: World) -> None:
    response = login(world.ops).post(
        f"/reviews/lines/{world.agent.pk}/{world.program.pk}/freeze/",
        {"reason": "check", "next": "https://elsewhere.example/", "confirmed": "yes"},
    )
    assert response["Location"] == "/reviews/"


def test_agents_cannot_freeze_lines(world: World) -> None:
    response = login(world.agent_user).post(
        f"/reviews/lines/{world.agent.pk}/{world.program.pk}/freeze/", {"reason": "x"}
    )
    assert response.status_code == 403
    review = refer(world)
    for confirmed in ("", "yes"):
        response = login(world.agent_user).post(
            f"/reviews/{review.pk}/line/freeze/", {"reason": "x", "confirmed": confirmed}
        )
        assert response.status_code == 403
    assert not CreditLine.objects.get(pk=world.line.pk).frozen


def test_audit_trail_lists_and_filters_who_did_what(world: World) -> None:
    review = refer(world)
    _post(login(world.reviewer), review, "claim", note="mine")
    client = login(world.ops)
    body = client.get("/reviews/audit/").content.decode()
    assert 'data-action="review.claim"' in body
    assert 'data-action="loan.in_review"' in body
    only = client.get("/reviews/audit/", {"action": "review.", "actor": "risk.reviewer"})
    text = only.content.decode()
    assert 'data-action="review.claim"' in text
    assert 'data-action="loan.in_review"' not in text
    by_object = client.get(
        "/reviews/audit/", {"object_type": "lending.review", "object_id": str(review.pk)}
    ).content.decode()
    assert by_object.count("<tr data-action=") == 1
