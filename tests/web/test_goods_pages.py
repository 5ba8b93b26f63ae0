"""Goods and claims pages in a real browser (Chromium via Playwright, against ``live_server``):

- the agent sees the goods it may pick up per financed order, asks for a pick-up (within and
  beyond what it paid for) and sees the claims on its loans;
- the enterprise's admin sees the release queue and releases, sees breaches and guarantee usage
  against the caps, accepts one claim and disputes another; in Chinese too;
- risk staff see the goods, breaches and claim on the case page of the dispute.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import pytest
from playwright.sync_api import expect

from lending.models import GoodsHold, GuaranteeClaim, Review, ReviewKind
from lending.services.breaches import release_breaches_record
from lending.services.cob import cob_run
from orders.models import SalesOrder
from scf import clock
from tests.lending.tripartite_makers import (
    one_night_before_trigger,
    tripartite_loan,
    tripartite_terms,
)
from tests.web.conftest import World, build_world
from tests.web.test_browser import open_page, shoot  # noqa: F401 (fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("allow_orm_beside_playwright"),
]
NIGHT = dt.date(2026, 11, 20)


@pytest.fixture
def world(db: Any) -> World:
    world = build_world(limit=Decimal("100000000.00"), max_principal=Decimal("10000000.00"))
    tripartite_terms(world.program, program_cap=Decimal("1000000.00"))
    return world


def claims_on(world: World, count: int) -> list[GuaranteeClaim]:
    """``count`` loans of the agent past the trigger tonight, and COB raising their claims."""
    for _ in range(count):
        loan = tripartite_loan(world.line, order_value="10000.00", value_date=dt.date(2026, 8, 1))
        one_night_before_trigger(loan, night=NIGHT, trigger_dpd=60)
    assert cob_run(program_id=world.program.pk, business_date=NIGHT, today=NIGHT).ran
    return list(GuaranteeClaim.objects.order_by("pk"))


def test_agent_sees_goods_to_pick_up_and_asks_for_them(
    world: World,
    open_page: Any,  # noqa: F811
) -> None:
    loan = tripartite_loan(
        world.line, order_value="100000.00", value_date=clock.business_date("Asia/Shanghai")
    )
    claims_on(world, 1)
    page = open_page(world.agent_user)
    page.click("a[data-nav=goods]")
    row = page.locator(f"#hold-{loan.pk}")
    expect(row.locator(".available")).to_contain_text("30,000.00")
    row.locator("input[name=value]").fill("12000")
    row.locator("button[type=submit]").click()
    expect(page.locator(".messages .success")).to_contain_text("authorised")
    expect(page.locator(f"#hold-{loan.pk} .available")).to_contain_text("18,000.00")
    page.locator(f"#hold-{loan.pk} input[name=value]").fill("18000.01")
    page.locator(f"#hold-{loan.pk} button[type=submit]").click()
    expect(page.locator(".messages .error")).to_contain_text("more than the agent has paid for")
    assert GoodsHold.objects.get(loan=loan).released_value == Decimal("12000.00")
    expect(page.locator("#claims .claim-status")).to_have_text(["Raised"])
    shoot(page, "agent-goods.png")


def test_enterprise_releases_accepts_and_disputes_and_risk_sees_the_case(
    world: World,
    open_page: Any,  # noqa: F811
) -> None:
    loan = tripartite_loan(
        world.line, order_value="50000.00", value_date=clock.business_date("Asia/Shanghai")
    )
    first, second = claims_on(world, 2)
    SalesOrder.objects.filter(pk=loan.order_id).update(status="shipped")
    release_breaches_record(order_ids=[loan.order_id])

    page = open_page(world.enterprise_admin)
    page.click("a[data-nav=goods]")
    expect(page.locator(f"#queue-{loan.pk} .available")).to_contain_text("15,000.00")
    expect(page.locator("#breaches tbody tr")).to_have_count(1)
    # Two claims of 7,000 principal and a night of interest each.
    expect(page.locator("#guarantee-usage .program-cap")).to_contain_text("14,005.26")
    page.locator(f"#queue-{loan.pk} input[name=value]").fill("5000")
    page.locator(f"#queue-{loan.pk} button[type=submit]").click()
    expect(page.locator(".messages .success")).to_contain_text("authorised")
    expect(page.locator(f"#queue-{loan.pk} .available")).to_contain_text("10,000.00")

    page.locator(f"#claim-{first.pk} form[action$='/accept/'] button").click()
    expect(page.locator(f"#claim-{first.pk} .claim-status")).to_have_text("Accepted")
    dispute = page.locator(f"#claim-{second.pk} form[action$='/dispute/']")
    dispute.locator("input[name=reason]").fill("The goods never reached us.")
    dispute.locator("button").click()
    expect(page.locator(f"#claim-{second.pk} .claim-status")).to_have_text("Disputed")
    shoot(page, "enterprise-goods.png")

    page.select_option("select[name=language]", "zh-hans")
    page.click("#set-language")
    expect(page.locator("h1")).to_have_text("货物与索赔")
    expect(page.locator(f"#claim-{second.pk} .claim-status")).to_have_text("有异议")

    review = Review.objects.get(kind=ReviewKind.CLAIM_DISPUTE)
    risk = open_page(world.reviewer)
    risk.goto("/reviews/?kind=claim_dispute")
    risk.goto(f"/reviews/{review.pk}/")
    expect(risk.locator("#goods-claim")).to_contain_text(second.reference)
    expect(risk.locator("#goods-claim")).to_contain_text("The goods never reached us.")
    expect(risk.locator("#goods-breaches")).to_contain_text(loan.order.external_id)
    expect(risk).to_have_url(re.compile(rf"/reviews/{review.pk}/$"))
