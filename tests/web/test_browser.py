"""The three front ends in a real browser: Debian's Chromium, driven by Playwright, against
``live_server``. Screenshots of each front end are written to ``docs/img/``.

Transactional tests: the live server answers from its own thread (its own connection on
PostgreSQL), so the data a test writes must be committed.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from django.core.cache import caches
from django.test import override_settings
from playwright.sync_api import Browser, Page, expect

from lending.models import AccountCode, CreditLine, EntryKind, IdempotencyRecord, Loan, Review
from lending.services.audit import audit_record
from lending.services.finance import loan_finance
from lending.services.ledger import Posting, ledger_post
from lending.services.lines import credit_line_freeze
from lending.services.reviews import review_claim, review_decline
from lending.views.words import word
from lending.views.words.statuses import LOAN_STATUS
from orders.models import FeedEvent, User
from scf import clock, throttling
from tests.lending.factories import BankFactory, CreditLineFactory, ProgramFactory
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

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
WIDTHS = {"desktop": DESKTOP, "phone": PHONE}


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
        page.on("console", lambda msg: errors.append(msg.text) if console_error(msg) else None)
        if user is not None:
            sign_in(page, user.username)
        return page

    yield open_as
    for context in contexts:
        context.close()
    assert errors == []


# Chromium logs every 4xx reply as a console error; a 429 is the portal's "please slow down"
# answer, expected where a test sends one (any other failed load still fails the test).
RATE_LIMITED_LOAD = "the server responded with a status of 429"


def console_error(message: Any) -> bool:
    return bool(message.type == "error" and RATE_LIMITED_LOAD not in message.text)


def sign_in(page: Page, username: str) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_load_state()
    expect(page.locator("#sign-out")).to_be_visible()


def shoot(page: Page, name: str, *, full_page: bool = True) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=full_page)


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
    shoot(page, "agent-quote.png", full_page=False)  # the dialog over the page

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


def test_a_click_over_the_rate_limit_shows_the_please_slow_down_dialog(
    world: World, open_page: Any
) -> None:
    """The portal answers 429 (with Retry-After); htmx swaps it in (the base page's config)."""
    first, second = world.order("5000.00"), world.order("4000.00")
    now = (int(time.time()) // 60) * 60 + 1.0  # one second into a minute: one window
    limits = {"finance": "1/min", "quote": "600/min"}
    with (
        override_settings(API_RATE_LIMITS=limits),
        mock.patch.object(throttling, "clock", return_value=now),
    ):
        caches["default"].delete(f"throttle:finance:{world.agent_user.pk}:{int(now // 60)}")
        page = open_page(world.agent_user)
        page.goto("/orders/")
        for order, outcome in ((first, "approved"), (second, "rate-limited")):
            page.locator(f'tr[data-order="{order.external_id}"] .finance-button').click()
            page.click("#confirm-finance")
            expect(page.locator("#finance-body[data-outcome]")).to_have_attribute(
                "data-outcome", outcome
            )
            if order is first:
                page.goto("/orders/")
        expect(page.locator("[data-error=throttled]")).to_contain_text("Please wait 59 seconds")
        page.click("#finance-body [data-close-dialog]")
        expect(page.locator("#quote-dialog")).to_have_count(0)
    assert not Loan.objects.filter(order=second).exists()


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


# --- layout: nothing wider than the screen (issue 17, items 3, 4 and 7) -------------------------

OVERFLOW = """() => {
    const width = document.documentElement.clientWidth;
    const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
        + (typeof el.className === 'string' && el.className.trim()
           ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
    const found = [];
    if (document.documentElement.scrollWidth > width) {
        found.push(`the page is ${document.documentElement.scrollWidth}px wide`);
    }
    for (const el of document.body.querySelectorAll('*')) {
        const box = el.getBoundingClientRect();
        if (!box.width && !box.height) continue;
        if (box.right > width + 0.5 || box.left < -0.5) {
            found.push(`${name(el)} spans ${Math.round(box.left)}..${Math.round(box.right)}px`);
        }
        const style = getComputedStyle(el);
        if (['auto', 'scroll', 'hidden'].includes(style.overflowX) && el.tagName !== 'SELECT'
            && el.scrollWidth > el.clientWidth + 1 && !el.closest('nav.site li.company')) {
            found.push(`${name(el)} clips or scrolls: ${el.scrollWidth}px in ${el.clientWidth}px`);
        }
    }
    return found.slice(0, 12);
}"""

HEADER_ROWS = """() => {
    const boxes = Array.from(document.querySelectorAll('nav.site li'))
        .filter(li => li.getClientRects().length).map(li => li.getBoundingClientRect())
        .sort((a, b) => a.top - b.top);
    let rows = 0, bottom = -Infinity;
    for (const box of boxes) {
        if (box.top >= bottom - 2) { rows += 1; bottom = box.bottom; }
        else { bottom = Math.max(bottom, box.bottom); }
    }
    return rows;
}"""


def assert_fits(page: Page, where: str) -> None:
    """No element sticks out of the viewport, and no box clips or scrolls its content sideways
    (a table column cut off), at the page's width."""
    page.wait_for_load_state()
    assert page.evaluate(OVERFLOW) == [], where


def _busy_world(world: World) -> dict[str, Any]:
    """Everything the pages show, with long texts: loans in every state, refusals of every
    kind on the agent's orders, a referral declined by a reviewer, a long audit trail."""
    _dashboard_data(world)  # the agent's first loan is 5 days past due: its orders say so
    today = clock.business_date(world.program.time_zone)
    world.order("2000000.00")  # above the program's maximum and the line
    world.order("12000.00", order_date=today - dt.timedelta(days=200))  # too old
    world.order("7000.00", status="delivered")
    referred = loan_finance(
        user=world.other_agent_user, order_id=world.order("9000.00", agent=world.other_agent).pk
    )
    review = Review.objects.get(loan=referred)
    review_claim(user=world.reviewer, review_id=review.pk)
    review_decline(
        user=world.reviewer,
        review_id=review.pk,
        reason="credit_risk",
        note="Sales to this dealer fell by half in the last quarter",
    )
    pending = loan_finance(
        user=world.other_agent_user, order_id=world.order("15000.00", agent=world.other_agent).pk
    )
    for n in range(3):
        audit_record(
            actor=world.ops,
            action="line.freeze_requested_by_operations_after_review",
            obj=pending,
            after={
                "reasons": ["insufficient_credit_line", "agent_overdue"],
                "reference": pending.reference * 3,
                "n": n,
            },
            note="A long note " * 20,
        )
    return {"declined": Loan.objects.get(pk=referred.pk), "in_review": pending,
            "review": Review.objects.get(loan=pending)}  # fmt: skip


@pytest.mark.parametrize("size", WIDTHS, ids=list(WIDTHS))
def test_every_page_fits_the_screen(world: World, open_page: Any, size: str) -> None:
    viewport = WIDTHS[size]
    made = _busy_world(world)
    overdue = Loan.objects.filter(agent=world.agent, status="overdue").first()
    assert overdue is not None
    agent = open_page(world.agent_user, viewport=viewport)
    if size == "phone":
        rows = agent.evaluate(HEADER_ROWS)
        assert rows <= 2, f"the site bar takes {rows} rows on a phone"
    for url in ("/", "/orders/", "/loans/", f"/loans/{overdue.pk}/"):
        agent.goto(url)
        assert_fits(agent, f"{url} at {size}")
    expect(agent.locator("#schedule")).to_be_visible()
    agent.goto("/orders/")
    agent.locator("tr[data-order] .finance-button, tr[data-order] [data-repay]").first.wait_for()
    if size == "phone":
        shoot(agent, "agent-orders-phone.png")
    other = open_page(world.other_agent_user, viewport=viewport)
    for loan in (made["declined"], made["in_review"]):
        other.goto(f"/loans/{loan.pk}/")
        assert_fits(other, f"{loan.status} loan at {size}")
        expect(other.locator("#schedule")).to_have_count(0)
        expect(other.locator("#repay-instructions")).to_have_count(0)
    admin = open_page(world.enterprise_admin, viewport=viewport)
    for url in (f"/dashboard/{world.program.pk}/", "/orders/", "/loans/"):
        admin.goto(url)
        assert_fits(admin, f"{url} (enterprise) at {size}")
    staff = open_page(world.reviewer, viewport=viewport)
    if size == "phone":
        assert staff.evaluate(HEADER_ROWS) <= 2
    for url in ("/reviews/", f"/reviews/{made['review'].pk}/", "/reviews/audit/"):
        staff.goto(url)
        assert_fits(staff, f"{url} at {size}")


def test_the_quote_dialog_works_from_the_keyboard(world: World, open_page: Any) -> None:
    order = world.order("5000.00")
    page = open_page(world.agent_user)
    page.goto("/orders/")
    button = page.locator(f'tr[data-order="{order.external_id}"] .finance-button')
    button.focus()
    page.keyboard.press("Enter")
    dialog = page.locator("dialog#quote-dialog[open]")
    expect(dialog).to_be_visible()
    inside = "() => !!document.activeElement.closest('dialog[open]')"
    assert page.evaluate(inside), "the focus moves into the dialog"
    assert page.evaluate("() => document.querySelector('dialog[open]').matches(':modal')")
    for key in ["Tab"] * 6 + ["Shift+Tab"] * 6:
        page.keyboard.press(key)
        assert page.evaluate(inside), f"{key} left the dialog"
    page.keyboard.press("Escape")
    expect(page.locator("#quote-dialog")).to_have_count(0)
    assert page.evaluate("() => document.activeElement.classList.contains('finance-button')")
    # Again, and through to the outcome with the keyboard alone.
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    page.locator("#confirm-finance").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#finance-body[data-outcome]")).to_have_attribute(
        "data-outcome", "approved"
    )
    # Focus follows the outcome once htmx has settled it in the dialog.
    expect(page.locator("dialog[open] #finance-body")).to_be_focused()
    assert page.evaluate(inside)
    page.keyboard.press("Escape")
    expect(page.locator("#quote-dialog")).to_have_count(0)
    assert Loan.objects.filter(order=order).count() == 1


def test_filter_fields_have_visible_labels(world: World, open_page: Any) -> None:
    _dashboard_data(world)
    unlabelled = """() => Array.from(document.querySelectorAll(
            'main input:not([type=hidden]), main select, main textarea'))
        .filter(f => f.getClientRects().length)
        .filter(f => !Array.from(f.labels || []).some(l => l.innerText.trim()
                     && l.getClientRects().length && getComputedStyle(l).visibility !== 'hidden'))
        .map(f => f.name)"""
    agent = open_page(world.agent_user)
    for url in ("/orders/", "/loans/"):
        agent.goto(url)
        assert agent.evaluate(unlabelled) == [], url
    admin = open_page(world.enterprise_admin)
    admin.goto(f"/dashboard/{world.program.pk}/")
    assert admin.evaluate(unlabelled) == []


@pytest.mark.parametrize("size", WIDTHS, ids=list(WIDTHS))
def test_orders_offer_finance_only_where_the_click_would_pass(
    world: World, open_page: Any, size: str
) -> None:
    world.line.limit = Decimal("6000.00")
    world.line.save()
    loan_finance(user=world.agent_user, order_id=world.order("5000.00").pk)  # 4,000 taken
    small, too_big = world.order("1500.00"), world.order("3000.00")  # 1,200 fits, 2,400 not
    page = open_page(world.agent_user, viewport=WIDTHS[size])
    page.goto("/orders/")
    refused = page.locator(f'tr[data-order="{too_big.external_id}"]')
    expect(refused).to_have_attribute("data-offer", "declined")
    expect(refused.locator(".finance-button")).to_have_count(0)
    reason = refused.locator('[data-reason="insufficient_credit_line"]')
    expect(reason).to_contain_text("CN¥2,000.00 available")
    expect(reason).to_contain_text("up to CN¥2,500.01")
    offered = page.locator(f'tr[data-order="{small.external_id}"]')
    expect(offered).to_have_attribute("data-offer", "approved")
    expect(offered.locator(".finance-button")).to_be_visible()
    assert_fits(page, f"orders at {size}")
    if size == "desktop":
        refused_quote = page.locator(f'a[href="/orders/{too_big.pk}/quote/"]')
        expect(refused_quote).to_have_count(0)
        page.goto(f"/orders/{too_big.pk}/quote/")  # asked for anyway (a bookmark, an old page)
        expect(page.locator("#close-quote")).to_have_text("Close")
        expect(page.locator("#quote-figures")).not_to_contain_text("You receive")
        shoot(page, "agent-quote-refused.png", full_page=False)
    CreditLine.objects.filter(pk=world.line.pk).update(limit=Decimal("100000.00"))
    credit_line_freeze(actor=world.ops, line=CreditLine.objects.get(pk=world.line.pk), reason="x")
    page.goto("/orders/")
    expect(refused.locator('[data-reason="line_frozen"]')).to_be_visible()
    expect(page.locator(".finance-button")).to_have_count(0)
    assert_fits(page, f"orders of a frozen line at {size}")


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


# --- many banks per enterprise: the quote dialog lists each bank's offer (issue 21, item 5) ----

SECOND_BANK = "Second Commercial Bank"


def _second_bank(world: World) -> Any:
    program = ProgramFactory(
        enterprise=world.enterprise,
        bank=BankFactory(code="BANK-B", name=SECOND_BANK),
        annual_rate=Decimal("0.048000"),
        tenor_days=120,
        advance_rate=Decimal("0.7000"),
        auto_approve_limit=Decimal("1000.00"),
    )
    CreditLineFactory(agent=world.agent, program=program)
    return program


@pytest.mark.parametrize(
    ("language", "intro", "second_button"),
    [
        ("en", "2 banks offer to finance this order", f"Finance with {SECOND_BANK}"),
        ("zh-hans", "2 家银行可为此订单融资", f"选择{SECOND_BANK}融资"),
    ],
)
def test_the_agent_sees_both_banks_offers_and_finances_with_the_chosen_one(
    world: World, open_page: Any, language: str, intro: str, second_button: str
) -> None:
    second = _second_bank(world)
    order = world.order("5000.00")
    page = open_page(world.agent_user)
    if language != "en":
        page.select_option("select[name=language]", language)
        page.click("#set-language")
        expect(page.locator("html")).to_have_attribute("lang", language)
    page.click("a[data-nav=orders]")
    page.locator(f'tr[data-order="{order.external_id}"] .finance-button').click()
    dialog = page.locator("#quote-dialog")
    expect(dialog.locator("#offers-intro")).to_contain_text(intro)
    rows = dialog.locator("#quote-offers tbody tr")
    expect(rows).to_have_count(2)
    first, chosen = rows.nth(0), rows.nth(1)
    expect(first).to_have_attribute("data-program", str(world.program.pk))
    expect(first).to_have_attribute("data-outcome", "approved")
    expect(first.locator("[data-figure=principal]")).to_contain_text("4,000.00")
    expect(chosen).to_contain_text(SECOND_BANK)
    expect(chosen).to_have_attribute("data-outcome", "in_review")
    expect(chosen.locator("[data-figure=principal]")).to_contain_text("3,500.00")
    expect(chosen.locator("button.choose-offer")).to_have_text(second_button)
    chosen.locator("button.choose-offer").click()
    expect(page.locator("#finance-body[data-outcome]")).to_have_attribute(
        "data-outcome", "in_review"
    )
    loan = Loan.objects.get(order=order)
    assert loan.program_id == second.pk and loan.principal == Decimal("3500.00")


def test_a_single_program_keeps_the_one_offer_dialog(world: World, open_page: Any) -> None:
    order = world.order("5000.00")
    page = open_page(world.agent_user)
    page.goto(f"/orders/{order.pk}/quote/")
    expect(page.locator("#quote-figures [data-figure=principal]")).to_contain_text("4,000.00")
    expect(page.locator("#quote-offers")).to_have_count(0)
    expect(page.locator("#confirm-finance")).to_be_visible()
