"""The agent portal: credit gauge, orders with offers, quote, finance (idempotent), loans."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import Client

from lending.models import AccountCode, EntryKind, IdempotencyRecord, Loan, Review
from lending.services.finance import loan_finance
from lending.services.ledger import Posting, ledger_post
from lending.services.lines import credit_line_freeze
from lending.services.reviews import review_claim, review_decline
from tests.conftest import client_for
from tests.orders.factories import OrderFactory
from tests.web.conftest import APPROVED_OR_LATER, World, login, make_loan

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def test_portal_shows_the_credit_line_gauge(world: World) -> None:
    make_loan(world.line, "active", "200000.00", outstanding="200000.00")
    world.line.outstanding_principal = Decimal("200000.00")
    world.line.reserved = Decimal("50000.00")
    world.line.save()
    body = login(world.agent_user).get("/").content.decode()
    assert 'data-figure="limit">CN¥1,000,000.00<' in body
    assert 'data-figure="outstanding">CN¥200,000.00<' in body
    assert 'data-figure="reserved">CN¥50,000.00<' in body
    assert 'data-figure="available">CN¥750,000.00<' in body
    assert "Grade B" in body
    assert 'style="width: 20.0%"' in body  # outstanding share of the limit
    assert 'style="width: 5.0%"' in body  # reserved share


def test_orders_show_a_financeable_badge_with_the_amount_on_offer(world: World) -> None:
    open_order = world.order("12345.67")
    delivered = world.order("9000.00", status="delivered")
    financed = world.order("5000.00")
    loan_finance(user=world.agent_user, order_id=financed.pk)
    body = login(world.agent_user).get("/orders/").content.decode()
    # 80% of 12,345.67 rounded down to the cent
    assert "Up to CN¥9,876.53" in body
    assert f'href="/orders/{open_order.pk}/quote/"' in body
    assert f'href="/orders/{delivered.pk}/quote/"' not in body
    assert f'href="/orders/{financed.pk}/quote/"' not in body


def test_orders_filter_by_status_and_financeable(world: World) -> None:
    confirmed = world.order()
    shipped = world.order(status="shipped")
    cancelled = world.order(status="cancelled")
    client = login(world.agent_user)
    body = client.get("/orders/?status=shipped").content.decode()
    assert shipped.external_id in body
    assert confirmed.external_id not in body
    body = client.get("/orders/?financeable=1", **HTMX).content.decode()
    assert body.lstrip().startswith('<div id="order-table">')  # the fragment only
    assert confirmed.external_id in body and shipped.external_id in body
    assert cancelled.external_id not in body


def test_agents_see_only_their_own_orders(world: World) -> None:
    mine, theirs = world.order(), world.order(agent=world.other_agent)
    body = login(world.agent_user).get("/orders/").content.decode()
    assert mine.external_id in body
    assert theirs.external_id not in body


def test_quote_shows_the_terms_and_a_fresh_idempotency_key(world: World) -> None:
    order = world.order("5000.00")
    client = login(world.agent_user)
    first = client.get(f"/orders/{order.pk}/quote/", **HTMX)
    body = first.content.decode()
    assert body.lstrip().startswith("<dialog")
    assert 'data-figure="principal">CN¥4,000.00<' in body
    assert 'data-figure="total">' in body
    assert "Confirm and finance" in body
    key = first.context["idempotency_key"]
    assert f'"Idempotency-Key": "{key}"' in body
    assert client.get(f"/orders/{order.pk}/quote/", **HTMX).context["idempotency_key"] != key
    assert not Loan.objects.exists()  # a quote changes nothing


def test_quote_without_javascript_is_a_whole_page(world: World) -> None:
    body = login(world.agent_user).get(f"/orders/{world.order().pk}/quote/").content.decode()
    assert body.startswith("<!doctype html>")
    assert 'id="confirm-finance"' in body


def test_quote_that_would_be_declined_gives_reasons_and_no_confirm(world: World) -> None:
    credit_line_freeze(actor=world.ops, line=world.line, reason="fraud check")
    body = login(world.agent_user).get(f"/orders/{world.order().pk}/quote/", **HTMX)
    text = body.content.decode()
    assert "Your credit line is frozen" in text
    assert 'id="confirm-finance"' not in text


def finance(client: Client, order_id: int, key: str, *, header: bool = True) -> HttpResponse:
    extra = {"HTTP_IDEMPOTENCY_KEY": key} if header else {}
    data = {} if header else {"idempotency_key": key}
    return client.post(f"/orders/{order_id}/finance/", data, **HTMX, **extra)


def test_finance_shows_the_approved_outcome_in_place(world: World) -> None:
    order = world.order("5000.00")
    response = finance(login(world.agent_user), order.pk, "key-approve")
    body = response.content.decode()
    loan = Loan.objects.get(order=order)
    assert loan.decision.outcome == "approved"
    assert loan.status in APPROVED_OR_LATER
    assert body.lstrip().startswith('<article id="finance-body" data-outcome="approved"')
    assert "CN¥4,000.00" in body
    assert f'href="/loans/{loan.pk}/"' in body


def test_same_idempotency_key_twice_makes_one_loan_and_the_same_reply(world: World) -> None:
    order = world.order("5000.00")
    client = login(world.agent_user)
    first = finance(client, order.pk, "key-double").content.decode()
    second = finance(client, order.pk, "key-double").content.decode()
    assert Loan.objects.filter(order=order).count() == 1
    assert first == second
    assert IdempotencyRecord.objects.filter(key="key-double").count() == 1


def test_the_key_also_works_as_a_form_field_without_javascript(world: World) -> None:
    order = world.order("5000.00")
    client = login(world.agent_user)
    finance(client, order.pk, "key-form", header=False)
    finance(client, order.pk, "key-form", header=False)
    assert Loan.objects.filter(order=order).count() == 1


def test_page_and_api_share_one_idempotency_record(world: World) -> None:
    order = world.order("5000.00")
    finance(login(world.agent_user), order.pk, "key-shared")
    api = client_for(world.agent_user).post(
        f"/api/v1/orders/{order.pk}/finance/", {}, format="json", HTTP_IDEMPOTENCY_KEY="key-shared"
    )
    assert api.status_code == 201
    assert api.json()["loan"]["id"] == Loan.objects.get(order=order).pk
    assert Loan.objects.filter(order=order).count() == 1


def test_a_new_key_for_a_financed_order_says_so(world: World) -> None:
    order = world.order("5000.00")
    client = login(world.agent_user)
    finance(client, order.pk, "key-a")
    body = finance(client, order.pk, "key-b").content.decode()
    assert 'data-error="order_already_financed"' in body
    assert "This order already has a loan." in body
    assert Loan.objects.filter(order=order).count() == 1


def test_a_missing_key_finances_nothing(world: World) -> None:
    order = world.order()
    body = login(world.agent_user).post(f"/orders/{order.pk}/finance/", {}, **HTMX).content.decode()
    assert "ask for a new quote" in body
    assert not Loan.objects.exists()


def test_a_referred_request_says_in_review(world: World) -> None:
    order = world.order("10000.00")
    body = finance(login(world.agent_user), order.pk, "key-refer").content.decode()
    assert 'data-outcome="in_review"' in body
    assert "A reviewer at the bank will decide soon." in body
    assert Loan.objects.get(order=order).status == "in_review"


def test_a_declined_request_gives_its_reasons_in_plain_words(world: World) -> None:
    order = world.order("5000.00", status="delivered")
    body = finance(login(world.agent_user), order.pk, "key-decline").content.decode()
    assert 'data-outcome="declined"' in body
    assert 'data-reason="order_not_financeable"' in body
    assert "This order&#x27;s status does not allow financing yet." in body


def test_finance_is_for_agents_only(world: World) -> None:
    order = world.order()
    assert finance(login(world.reviewer), order.pk, "k").status_code == 403
    assert not Loan.objects.exists()


def test_loan_page_has_schedule_balances_instructions_and_history(world: World) -> None:
    world.program.bank.settlement_account_no = "6222000011112222"
    world.program.bank.save()
    loan = loan_finance(user=world.agent_user, order_id=world.order("5000.00").pk)
    body = login(world.agent_user).get(f"/loans/{loan.pk}/").content.decode()
    assert 'id="schedule"' in body
    assert 'data-figure="principal">CN¥4,000.00<' in body
    assert f'<code id="repay-reference">{loan.reference}</code>' in body
    assert "6222000011112222" in body
    assert "Requested" in body and "Approved" in body
    assert 'id="audit"' not in body  # the audit trail is for bank staff


def test_loan_page_shows_whatever_status_and_balances_a_loan_has(world: World) -> None:
    loan = make_loan(world.line, "overdue", "8000.00", outstanding="6000.00", dpd=12)
    body = login(world.agent_user).get(f"/loans/{loan.pk}/").content.decode()
    assert 'id="loan-status">Overdue<' in body
    assert 'data-figure="outstanding">CN¥6,000.00<' in body
    assert "Amount at maturity" in body


def test_loans_list_filters_by_status(world: World) -> None:
    active = make_loan(world.line, "active", "1000.00", outstanding="1000.00")
    repaid = make_loan(world.line, "repaid", "2000.00")
    body = login(world.agent_user).get("/loans/?status=active").content.decode()
    assert active.reference in body
    assert repaid.reference not in body


def test_an_order_no_program_covers_explains_itself(world: World) -> None:
    order = OrderFactory(agent=world.agent, enterprise=world.other_enterprise)
    order.enterprise.programs.all().delete()
    body = login(world.agent_user).get(f"/orders/{order.pk}/quote/", **HTMX).content.decode()
    assert "This order cannot be financed" in body
    assert "No financing program covers this order." in body
    assert 'id="confirm-finance"' not in body


def test_loan_page_lists_its_ledger_lines_in_words(world: World) -> None:
    loan = make_loan(world.line, "active", "8000.00", outstanding="8000.00")
    ledger_post(
        kind=EntryKind.DISBURSEMENT,
        idempotency_key=f"web-test:{loan.pk}",
        business_date=loan.due_date,
        currency="CNY",
        postings=[
            Posting.dr(AccountCode.PRINCIPAL_RECEIVABLE, loan.principal, loan=loan),
            Posting.cr(AccountCode.SETTLEMENT, loan.principal),
        ],
        loan=loan,
    )
    client = login(world.agent_user)
    body = client.get(f"/loans/{loan.pk}/").content.decode()
    ledger = body[body.index('id="ledger"') :]
    assert "Disbursement" in ledger and "Principal receivable" in ledger
    client.post("/accounts/language/", {"language": "zh-hans"})
    assert "应收本金" in client.get(f"/loans/{loan.pk}/").content.decode()


def test_repayment_instructions_fall_back_to_the_lenders_account(
    world: World, settings: Any
) -> None:
    settings.LENDER_SETTLEMENT_ACCOUNT = "LENDER-ACCOUNT-9"
    loan = make_loan(world.line, "active", "8000.00", outstanding="8000.00")
    body = login(world.agent_user).get(f"/loans/{loan.pk}/").content.decode()
    instructions = body[body.index('id="repay-instructions"') : body.index('id="history"')]
    assert "LENDER-ACCOUNT-9" in instructions
    assert world.program.bank.name in instructions


# --- what each order offers: the engine in quote mode (issue 17, items 4 and 5) -----------------


def _row(body: str, order: Any) -> str:
    start = body.index(f'data-order="{order.external_id}"')
    return body[start : body.index("</tr>", start)]


def test_an_order_the_line_cannot_carry_says_how_much_would_fit_instead_of_offering(
    world: World,
) -> None:
    world.line.limit = Decimal("6000.00")
    world.line.save()
    loan_finance(user=world.agent_user, order_id=world.order("5000.00").pk)  # 4,000 reserved
    small, big = world.order("1500.00"), world.order("3000.00")  # 1,200 fits; 2,400 does not
    body = login(world.agent_user).get("/orders/").content.decode()
    row = _row(body, big)
    assert 'data-offer="declined"' in row and "/quote/" not in row
    assert 'data-reason="insufficient_credit_line"' in row
    assert "CN¥2,000.00 available, this loan needs CN¥2,400.00" in row
    assert "An order of up to CN¥2,500.01 would fit" in row
    assert "Up to" not in row
    offered = _row(body, small)
    assert 'data-offer="approved"' in offered and f"/orders/{small.pk}/quote/" in offered


def test_an_order_too_old_gives_its_age_and_the_programs_maximum(world: World) -> None:
    old = world.order(order_date=dt.date.today() - dt.timedelta(days=120))
    row = _row(login(world.agent_user).get("/orders/").content.decode(), old)
    assert 'data-reason="order_too_old"' in row and "/quote/" not in row
    assert "120 days old; the program finances orders up to 90 days old" in row


def test_an_overdue_loan_is_named_with_a_link_to_repay_it(world: World) -> None:
    late = make_loan(world.line, "overdue", "2000.00", outstanding="2000.00", dpd=12)
    order = world.order()
    row = _row(login(world.agent_user).get("/orders/").content.decode(), order)
    assert 'data-reason="agent_overdue"' in row and "/quote/" not in row
    assert "days past due: 12" in row
    assert f'href="/loans/{late.pk}/" data-repay="{late.reference}"' in row


def test_a_frozen_line_and_a_full_program_refuse_without_a_button(world: World) -> None:
    order = world.order()
    credit_line_freeze(actor=world.ops, line=world.line, reason="fraud check")
    world.program.limit = Decimal("1000.00")
    world.program.save()
    row = _row(login(world.agent_user).get("/orders/").content.decode(), order)
    assert 'data-reason="line_frozen"' in row and 'data-reason="insufficient_program_limit"' in row
    assert "Your credit line is frozen" in row and "no room left" in row
    assert "CN¥1,000.00" not in row  # the program's figures are the bank's
    assert "/quote/" not in row


def test_an_order_for_review_is_offered_and_says_the_bank_reviews_it(world: World) -> None:
    order = world.order("10000.00")  # principal 8,000 > the 5,000 approved automatically
    row = _row(login(world.agent_user).get("/orders/").content.decode(), order)
    assert 'data-offer="in_review"' in row and f"/orders/{order.pk}/quote/" in row
    assert "Up to CN¥8,000.00" in row and "Needs a review by the bank." in row
    assert "5,000" not in row  # never the auto-approve limit


def test_a_financed_order_links_to_its_loan(world: World) -> None:
    order = world.order()
    loan = loan_finance(user=world.agent_user, order_id=order.pk)
    for user in (world.agent_user, world.enterprise_admin):
        row = _row(login(user).get("/orders/").content.decode(), order)
        assert f'href="/loans/{loan.pk}/"' in row and loan.reference in row


def test_a_refused_quote_says_what_to_do_not_what_you_receive_and_only_closes(
    world: World,
) -> None:
    world.line.limit = Decimal("3000.00")
    world.line.save()
    body = login(world.agent_user).get(f"/orders/{world.order().pk}/quote/", **HTMX)
    text = body.content.decode()
    assert "You receive" not in text and 'id="confirm-finance"' not in text
    assert 'id="close-quote"' in text and ">Close</a>" in text and ">Cancel<" not in text
    assert "CN¥3,000.00 available, this loan needs CN¥4,000.00" in text
    assert "An order of up to CN¥3,750.01 would fit" in text


def test_a_referred_quote_names_no_threshold(world: World) -> None:
    text = login(world.agent_user).get(f"/orders/{world.order('10000.00').pk}/quote/", **HTMX)
    body = text.content.decode()
    assert 'id="confirm-finance"' in body  # offered: it goes to the bank's review
    assert "A person at the bank will review this request" in body
    assert "automatically" not in body and "5,000" not in body


def test_a_declined_click_says_what_would_fit(world: World) -> None:
    world.line.limit = Decimal("3000.00")
    world.line.save()
    body = finance(login(world.agent_user), world.order().pk, "key-small-line").content.decode()
    assert 'data-outcome="declined"' in body
    assert "CN¥3,000.00 available" in body and "up to CN¥3,750.01" in body


# --- a loan nothing was paid out for (issue 17, item 3) -----------------------------------------


def test_a_declined_loan_has_no_schedule_nor_repayment_block_and_says_why(world: World) -> None:
    world.line.limit = Decimal("3000.00")
    world.line.save()
    loan = loan_finance(user=world.agent_user, order_id=world.order().pk)
    assert loan.status == "declined"
    body = login(world.agent_user).get(f"/loans/{loan.pk}/").content.decode()
    assert 'id="schedule"' not in body and 'id="repay-instructions"' not in body
    assert "Amount at maturity" not in body
    assert 'data-reason="insufficient_credit_line"' in body
    assert "Nothing was paid out and nothing is owed." in body


def test_an_in_review_loan_has_no_schedule_nor_repayment_block(world: World) -> None:
    loan = loan_finance(user=world.agent_user, order_id=world.order("10000.00").pk)
    assert loan.status == "in_review"
    body = login(world.agent_user).get(f"/loans/{loan.pk}/").content.decode()
    assert 'id="schedule"' not in body and 'id="repay-instructions"' not in body
    assert 'data-status="in_review"' in body
    assert "above_auto_approve_limit" not in body and "5,000" not in body


def test_a_loan_declined_by_a_reviewer_gives_the_banks_reason_not_the_referral_rule(
    world: World,
) -> None:
    loan = loan_finance(user=world.agent_user, order_id=world.order("10000.00").pk)
    review = Review.objects.get(loan=loan)
    review_claim(user=world.reviewer, review_id=review.pk)
    review_decline(user=world.reviewer, review_id=review.pk, reason="credit_risk", note="internal")
    body = login(world.agent_user).get(f"/loans/{loan.pk}/").content.decode()
    assert 'data-decline-reason="credit_risk"' in body
    assert "The credit risk is too high for this request." in body
    assert "above_auto_approve_limit" not in body and "Needs a review" not in body
    assert "internal" not in body  # the reviewer's note stays with the bank
    assert 'id="schedule"' not in body and 'id="repay-instructions"' not in body


# --- the orders page: search, dates, status, sort; the company in the header (item 6) ----------


def test_orders_search_by_number_filter_by_dates_and_sort(world: World) -> None:
    today = dt.date.today()
    a = world.order("300.00", external_id="PO-ALPHA-1", order_date=today - dt.timedelta(days=3))
    b = world.order("100.00", external_id="PO-BETA-2", order_date=today - dt.timedelta(days=2))
    c = world.order("200.00", external_id="PO-ALPHA-3", order_date=today - dt.timedelta(days=1))
    client = login(world.agent_user)

    def shown(query: str) -> list[str]:
        body = client.get(f"/orders/?{query}").content.decode()
        return [o.external_id for o in sorted((a, b, c), key=lambda o: body.find(
            f'data-order="{o.external_id}"')) if f'data-order="{o.external_id}"' in body]  # fmt: skip

    assert shown("q=alpha") == ["PO-ALPHA-3", "PO-ALPHA-1"]  # newest first
    assert shown(f"from={b.order_date}&to={c.order_date}") == ["PO-ALPHA-3", "PO-BETA-2"]
    assert shown("sort=amount") == ["PO-BETA-2", "PO-ALPHA-3", "PO-ALPHA-1"]
    assert shown("sort=-amount&q=PO-") == ["PO-ALPHA-1", "PO-ALPHA-3", "PO-BETA-2"]
    assert shown("sort=number&status=confirmed") == ["PO-ALPHA-1", "PO-ALPHA-3", "PO-BETA-2"]
    assert shown("sort=date&from=not-a-date") == ["PO-ALPHA-1", "PO-BETA-2", "PO-ALPHA-3"]
    body = client.get("/orders/?q=alpha&sort=amount").content.decode()
    assert 'value="alpha"' in body and '<option value="amount" selected>' in body


def test_the_header_names_the_users_company(world: World) -> None:
    world.agent.name = "Huaxin Trading Co., Ltd."
    world.agent.save()
    body = login(world.agent_user).get("/").content.decode()
    assert '<li class="company" id="company" title="Huaxin Trading Co., Ltd.">' in body
    body = login(world.enterprise_admin).get("/orders/").content.decode()
    assert f">{world.enterprise.name}</li>" in body
