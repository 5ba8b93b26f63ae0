"""The agent portal: credit gauge, orders with offers, quote, finance (idempotent), loans."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import Client

from lending.models import AccountCode, EntryKind, IdempotencyRecord, Loan
from lending.services.finance import loan_finance
from lending.services.ledger import Posting, ledger_post
from lending.services.lines import credit_line_freeze
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
