"""The three front ends in a real browser: Debian's Chromium, driven by Playwright, against
``live_server``. Screenshots of each front end are written to ``docs/img/``.

Transactional tests: the live server answers from its own thread (its own connection on
PostgreSQL), so the data a test writes must be committed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from lending.models import AccountCode, EntryKind, IdempotencyRecord, Loan, Review
from lending.services.finance import loan_finance
from lending.services.ledger import Posting, ledger_post
from lending.views.words import LOAN_STATUS, word
from orders.models import FeedEvent, User
from scf import clock
from tests.lending.factories import CreditLineFactory
from tests.orders.factories import AgentFactory
from tests.web.conftest import (
    APPROVED_OR_LATER,
    PASSWORD,
    SCREENSHOTS,
    World,
    build_world,
    make_loan,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("allow_orm_beside_playwright"),
]

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def world(db: Any) -> World:
    # Principal above 5,000 goes to review; above 20,000 it needs two approvals.
    return build_world(
        auto_approve_limit=Decimal("5000.00"), maker_checker_threshold=Decimal("20000.00")
    )


@pytest.fixture
def open_page(browser: Browser, live_server: Any) -> Iterator[Any]:
    """A fresh browser context per user (own cookies), failing the test on any page error."""
    contexts = []
    errors: list[str] = []

    def open_as(
        user: User | None, *, viewport: dict[str, int] = DESKTOP, locale: str = "en-GB"
    ) -> Page:
        context = browser.new_context(viewport=viewport, locale=locale, base_url=live_server.url)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        if user is not None:
            sign_in(page, user.username)
        return page

    yield open_as
    for context in contexts:
        context.close()
    assert errors == []


def sign_in(page: Page, username: str) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_load_state()
    expect(page.locator("#sign-out")).to_be_visible()


def shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def test_agent_signs_in_finances_an_order_and_sees_the_loan(world: World, open_page: Any) -> None:
    active = make_loan(world.line, "active", "180000.00", outstanding="180000.00")
    world.line.outstanding_principal = active.principal
    world.line.save()
    loan_finance(user=world.agent_user, order_id=world.order("15000.00").pk)  # in review
    for amount in ("23800.00", "8600.00", "12450.00"):
        world.order(amount)
    order = world.order("5000.00")
    page = open_page(None)
    sign_in(page, world.agent_user.username)
    expect(page.locator("h1")).to_have_text("My credit")
    shoot(page, "agent-portal.png")

    page.click("a[data-nav=orders]")
    row = page.locator(f'tr[data-order="{order.external_id}"]')
    expect(row.locator(".badge.offer")).to_contain_text("CN¥4,000.00")
    row.locator(".finance-button").click()
    dialog = page.locator("#quote-dialog")
    expect(dialog.locator("[data-figure=principal]")).to_have_text("CN¥4,000.00")
    # Cancel closes the dialog in place (static/web/app.js; no inline handler under the CSP).
    page.evaluate("window.stillHere = true")
    page.click("#close-quote")
    expect(dialog).to_have_count(0)
    assert page.evaluate("window.stillHere === true")  # closed in place, not by navigating
    row.locator(".finance-button").click()
    expect(dialog.locator("[data-figure=total]")).to_contain_text("CN¥")
    shoot(page, "agent-quote.png")

    page.click("#confirm-finance")
    outcome = page.locator("#finance-body[data-outcome]")
    expect(outcome).to_have_attribute("data-outcome", "approved")
    loan = Loan.objects.get(order=order)
    assert loan.decision.outcome == "approved" and loan.principal == Decimal("4000.00")
    assert loan.status in APPROVED_OR_LATER

    page.click("#view-loan")
    loan.refresh_from_db()  # the page shows whatever status the loan has reached
    expect(page.locator("#loan-status")).to_have_text(word(LOAN_STATUS, loan.status))
    expect(page.locator("#repay-reference")).to_have_text(loan.reference)
    expect(page.locator("#balances [data-figure=principal]")).to_have_text("CN¥4,000.00")
    shoot(page, "agent-loan.png")


def test_agent_portal_fits_a_phone(world: World, open_page: Any) -> None:
    world.order("12000.00")
    loan_finance(user=world.agent_user, order_id=world.order("5000.00").pk)
    page = open_page(world.agent_user, viewport=PHONE)
    expect(page.locator(".gauge").first).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px phone"
    shoot(page, "agent-portal-phone.png")


def test_a_double_click_on_finance_creates_one_loan(world: World, open_page: Any) -> None:
    order = world.order("5000.00")
    page = open_page(world.agent_user)
    page.goto("/orders/")
    button = page.locator(f'tr[data-order="{order.external_id}"] .finance-button')
    button.click()
    page.click("#close-quote")  # changed one's mind: nothing is financed
    expect(page.locator("#quote-dialog")).to_have_count(0)
    assert not Loan.objects.filter(order=order).exists()
    button.click()
    page.locator("#confirm-finance").dblclick()
    expect(page.locator("#finance-body[data-outcome]")).to_have_attribute(
        "data-outcome", "approved"
    )
    assert Loan.objects.filter(order=order).count() == 1
    assert IdempotencyRecord.objects.filter(user=world.agent_user).count() == 1


@pytest.mark.postgres  # concurrent requests need real connections (not one shared SQLite one)
def test_the_same_finance_click_sent_twice_at_once_makes_one_loan(
    world: World, open_page: Any
) -> None:
    """Both requests carry the quote's key (no button left to disable): one loan, one reply."""
    order = world.order("5000.00")
    page = open_page(world.agent_user)
    page.goto("/orders/")
    page.locator(f'tr[data-order="{order.external_id}"] .finance-button').click()
    expect(page.locator("#confirm-finance")).to_be_visible()
    replies = page.evaluate(
        """async () => {
            const form = document.querySelector('#quote-dialog form');
            const key = form.querySelector('[name=idempotency_key]').value;
            const send = () => fetch(form.action, {method: 'POST', body: new FormData(form),
                                                   headers: {'Idempotency-Key': key}})
                .then(r => r.text());
            return Promise.all([send(), send()]);
        }"""
    )
    assert all('data-outcome="approved"' in reply for reply in replies)
    assert Loan.objects.filter(order=order).count() == 1
    assert IdempotencyRecord.objects.filter(user=world.agent_user).count() == 1


def test_referred_request_is_claimed_approved_and_second_approved(
    world: World, open_page: Any
) -> None:
    now = clock.now()
    for amount, hours in (("7500.00", 50), ("12000.00", 40)):  # one late, one nearly so
        older = loan_finance(
            user=world.other_agent_user, order_id=world.order(amount, agent=world.other_agent).pk
        )
        opened = now - dt.timedelta(hours=hours)
        Review.objects.filter(loan=older).update(
            created_at=opened, expires_at=opened + dt.timedelta(hours=48)
        )
    order = world.order("30000.00")  # principal 24,000: referred, two approvals
    agent = open_page(world.agent_user)
    agent.goto(f"/orders/{order.pk}/quote/")
    agent.click("#confirm-finance")
    expect(agent.locator("#finance-body")).to_have_attribute("data-outcome", "in_review")
    review = Review.objects.get(loan__order=order)

    maker = open_page(world.reviewer)
    expect(maker).to_have_url(re.compile(r"/reviews/$"))
    expect(maker.locator(f'tr[data-review="{review.pk}"]')).to_have_attribute("data-sla", "ok")
    expect(maker.locator("tr[data-review]").first).to_have_attribute("data-sla", "late")
    shoot(maker, "review-queue.png")
    maker.click(f'tr[data-review="{review.pk}"] a')
    maker.fill("#actions form:has(#claim) input[name=note]", "Checking the order documents")
    maker.click("#claim")
    expect(maker.locator("#claimed-by")).to_have_text(world.reviewer.username)
    maker.fill("#actions form:has(#approve) input[name=note]", "Documents match the order")
    maker.click("#approve")
    expect(maker.locator("#review-status")).to_have_text("Awaiting second approval")
    expect(maker.locator("#first-approver")).to_have_text(world.reviewer.username)
    shoot(maker, "review-case.png")

    checker = open_page(world.approver)
    checker.goto(f"/reviews/{review.pk}/")
    checker.fill("#actions form:has(#approve) input[name=note]", "Second approval")
    checker.click("#approve")
    expect(checker.locator("#review-status")).to_have_text("Approved")
    expect(checker.locator("#second-approver")).to_have_text(world.approver.username)
    review.refresh_from_db()
    assert review.status == "approved"
    assert (review.first_approver_id, review.second_approver_id) == (
        world.reviewer.pk,
        world.approver.pk,
    )
    assert Loan.objects.get(pk=review.loan_id).status in APPROVED_OR_LATER


def _dashboard_data(world: World) -> None:
    """Loans across several agents, some overdue and disbursed, and a rejected feed event."""
    agents = [world.agent, world.other_agent]
    for n in range(4):
        agent = AgentFactory(enterprises=[world.enterprise])
        CreditLineFactory(agent=agent, program=world.program)
        agents.append(agent)
    today = clock.business_date(world.program.time_zone)
    for i, line in enumerate(world.program.credit_lines.select_related("agent").order_by("id")):
        loan = make_loan(line, "active" if i % 2 else "overdue", f"{(i + 2) * 9000}.00",
                         outstanding=f"{(i + 2) * 9000}.00", dpd=0 if i % 2 else 15 * i + 5)  # fmt: skip
        ledger_post(
            kind=EntryKind.DISBURSEMENT,
            idempotency_key=f"browser-disburse:{loan.pk}",
            business_date=today - dt.timedelta(days=10 * i),
            currency="CNY",
            postings=[
                Posting.dr(AccountCode.PRINCIPAL_RECEIVABLE, loan.principal, loan=loan),
                Posting.cr(AccountCode.SETTLEMENT, loan.principal),
            ],
            loan=loan,
        )
        line.outstanding_principal = loan.principal
        line.save()
        world.program.outstanding_principal += loan.principal
    world.program.save()
    loan_finance(user=world.agent_user, order_id=world.order("5000.00").pk)
    FeedEvent.objects.create(
        enterprise=world.enterprise, channel="webhook", event_id="evt-bad", outcome="rejected",
        error_code="invalid_order", detail="amount: Amount must be greater than zero.",
        external_id="SO-REJECTED-1",
    )  # fmt: skip


def test_dashboard_renders_its_charts_with_data(world: World, open_page: Any) -> None:
    _dashboard_data(world)
    page = open_page(world.enterprise_admin)
    expect(page).to_have_url(re.compile(rf"/dashboard/{world.program.pk}/$"))
    expect(page.locator("body[data-charts-ready=true]")).to_have_count(1)
    charts = page.evaluate(
        """() => ['chart-utilisation', 'chart-overdue', 'chart-agents'].map(id => {
            const chart = Chart.getChart(id);
            return {id, sets: chart.data.datasets.map(d => d.data.map(Number)),
                    labels: chart.data.labels.length, drawn: chart.canvas.width > 0};
        })"""
    )
    by_id = {chart["id"]: chart for chart in charts}
    utilisation, overdue, agents = (
        by_id["chart-utilisation"],
        by_id["chart-overdue"],
        by_id["chart-agents"],
    )
    assert utilisation["labels"] == 90 and max(utilisation["sets"][0]) > 0
    assert overdue["labels"] == 4 and sum(overdue["sets"][0]) > 0
    assert agents["labels"] >= 5 and max(agents["sets"][0]) > 0
    assert all(chart["drawn"] for chart in charts)
    expect(page.locator("#rejections")).to_contain_text("SO-REJECTED-1")

    page.fill("input[name=q]", world.other_agent.code)
    expect(page.locator("#exposure-table tbody tr")).to_have_count(1)
    page.fill("input[name=q]", "")
    expect(page.locator("#exposure-table tbody tr")).to_have_count(6)
    page.click("a[data-sort=exposure]")  # currently largest first: now smallest first
    first = page.locator("#exposure-table tbody tr").first
    expect(first).to_have_attribute("data-agent", world.agent.code)  # 18,000 + 4,000 reserved
    page.select_option("select[name=grade]", "B")  # filtering keeps the order chosen
    expect(page).to_have_url(re.compile(r"grade=B"))
    expect(page).to_have_url(re.compile(r"dir=asc"))
    expect(first).to_have_attribute("data-agent", world.agent.code)
    page.goto(f"/dashboard/{world.program.pk}/")
    expect(page.locator("body[data-charts-ready=true]")).to_have_count(1)
    shoot(page, "enterprise-dashboard.png")

    with page.expect_download() as download:
        page.click(f'a[href="/dashboard/{world.program.pk}/loans.csv"]')
    assert download.value.suggested_filename.startswith(f"loans-{world.program.code}-")


def test_zh_hans_pages_show_chinese_text(world: World, open_page: Any) -> None:
    world.order("12345.67")
    visitor = open_page(None, locale="zh-CN")
    visitor.goto("/accounts/login/")
    expect(visitor.locator("h1")).to_have_text("登录")

    page = open_page(world.agent_user)
    expect(page.locator("h1")).to_have_text("My credit")
    page.select_option("select[name=language]", "zh-hans")
    page.click("#set-language")
    expect(page.locator("h1")).to_have_text("我的额度")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.locator("a[data-nav=orders]")).to_have_text("订单")
    expect(page.locator(".badge.offer").first).to_contain_text("最高可融 ¥9,876.53")
    shoot(page, "agent-portal-zh-hans.png")


def test_after_signing_out_the_back_button_shows_no_signed_in_page(
    world: World, browser_type: Any, browser_type_launch_args: dict[str, Any], live_server: Any
) -> None:
    """Signed-in pages are ``no-store``: Chromium neither keeps them in its back/forward cache
    once the session's cookie has changed nor serves them from its HTTP cache, so going back
    after signing out asks the server again (and is sent to sign in). Playwright turns that
    cache off by default; this test runs Chromium with it on, as people have it."""
    world.order("5000.00")
    browser = browser_type.launch(
        **browser_type_launch_args, ignore_default_args=["--disable-back-forward-cache"]
    )
    try:
        page = browser.new_context(base_url=live_server.url).new_page()
        sign_in(page, world.agent_user.username)
        page.click("a[data-nav=orders]")
        expect(page.locator("#sign-out")).to_be_visible()
        page.click("#sign-out")
        expect(page.locator("#sign-in")).to_be_visible()
        # A page restored from that cache fires no "load": wait for the navigation only.
        page.go_back(wait_until="commit")
        expect(page).to_have_url(re.compile(r"/accounts/login/"))
        expect(page.locator("#sign-out")).to_have_count(0)
        expect(page.locator("#sign-in")).to_be_visible()
    finally:
        browser.close()


def test_the_api_docs_render_swagger_ui_from_our_own_files(
    live_server: Any, open_page: Any
) -> None:
    """Swagger UI and its start-up script are our static files, allowed by the site's policy;
    any refused script or style would be a console error (the fixture fails on those)."""
    page = open_page(None)
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    page.goto("/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("SCF order-to-loan API")
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    finance = page.locator(".opblock-summary-path[data-path='/api/v1/orders/{order_id}/finance/']")
    expect(finance).to_have_count(1)
    assert fetched and all(url.startswith(live_server.url) for url in fetched), fetched
