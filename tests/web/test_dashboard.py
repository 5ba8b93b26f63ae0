"""The core-enterprise dashboard: KPIs, chart data, exposure table, feed health, CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal
from typing import Any

import pytest

from lending.models import AccountCode, EntryKind
from lending.services.finance import loan_finance
from lending.services.ledger import Posting, ledger_post
from orders.models import FeedEvent
from scf import clock
from tests.orders.factories import OrderFactory
from tests.web.conftest import World, login, make_loan

pytestmark = pytest.mark.django_db


def _charts(response: Any) -> dict[str, Any]:
    body = response.content.decode()
    start = body.index('<script id="chart-data" type="application/json">') + len(
        '<script id="chart-data" type="application/json">'
    )
    return json.loads(body[start : body.index("</script>", start)])


def test_enterprise_admin_with_one_program_goes_straight_to_its_dashboard(world: World) -> None:
    response = login(world.enterprise_admin).get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"] == f"/dashboard/{world.program.pk}/"


def test_bank_staff_get_the_list_of_programs(world: World) -> None:
    body = login(world.ops).get("/dashboard/").content.decode()
    assert world.program.code in body and world.other_program.code in body


def test_kpis_come_from_the_program_dashboard(world: World) -> None:
    loan_finance(user=world.agent_user, order_id=world.order("5000.00").pk)  # approved: 4,000
    loan_finance(user=world.agent_user, order_id=world.order("10000.00").pk)  # in review: 8,000
    make_loan(world.other_line, "overdue", "3000.00", outstanding="3000.00", dpd=40)
    body = login(world.enterprise_admin).get(f"/dashboard/{world.program.pk}/").content.decode()
    assert 'data-kpi="limit">CN¥10,000,000.00<' in body
    assert 'data-kpi="utilised">CN¥12,000.00<' in body
    assert 'data-kpi="available">CN¥9,988,000.00<' in body
    assert 'data-kpi="financed-today">CN¥8,750.00<' in body  # orders of 5,000 and 3,750
    assert 'data-kpi="overdue">CN¥3,000.00<' in body


def test_charts_carry_utilisation_dpd_buckets_and_top_agents(world: World) -> None:
    approved = loan_finance(user=world.agent_user, order_id=world.order("5000.00").pk)
    overdue = make_loan(world.other_line, "overdue", "3000.00", outstanding="3000.00", dpd=70)
    today = clock.business_date(world.program.time_zone)
    for loan, day in ((approved, today - dt.timedelta(days=3)), (overdue, today)):
        ledger_post(
            kind=EntryKind.DISBURSEMENT,
            idempotency_key=f"test-disburse:{loan.pk}",
            business_date=day,
            currency="CNY",
            postings=[
                Posting.dr(AccountCode.PRINCIPAL_RECEIVABLE, loan.principal, loan=loan),
                Posting.cr(AccountCode.SETTLEMENT, loan.principal),
            ],
            loan=loan,
        )
    charts = _charts(login(world.enterprise_admin).get(f"/dashboard/{world.program.pk}/"))
    utilisation = charts["utilisation"]
    assert len(utilisation["labels"]) == 90
    assert utilisation["labels"][-1] == today.isoformat()
    assert utilisation["outstanding"][-5:] == ["0.00", "4000.00", "4000.00", "4000.00", "7000.00"]
    assert utilisation["financed"][-1] == "7000.00"  # both loans were financed today
    assert charts["overdue"]["labels"] == ["1-30", "31-60", "61-90", "90+"]
    assert charts["overdue"]["outstanding"] == ["0.00", "0.00", "3000.00", "0.00"]
    assert charts["agents"]["labels"] == [world.agent.code]  # only lines with exposure
    assert charts["agents"]["reserved"] == ["4000.00"]
    assert charts["words"]["outstanding"] == "Outstanding"


def _exposure_rows(body: str) -> list[str]:
    return [part.split('"', 1)[0] for part in body.split('<tr data-agent="')[1:]]


def test_exposure_table_sorts_and_filters(world: World) -> None:
    loan_finance(user=world.agent_user, order_id=world.order("5000.00").pk)
    loan_finance(
        user=world.other_agent_user, order_id=world.order("2500.00", agent=world.other_agent).pk
    )
    client = login(world.enterprise_admin)
    url = f"/dashboard/{world.program.pk}/"
    default = client.get(url).content.decode()
    assert _exposure_rows(default) == [world.agent.code, world.other_agent.code]
    # The current column sorts the other way round; another column starts largest first.
    assert 'href="?sort=exposure&amp;dir=asc" ' in default
    assert 'href="?sort=limit&amp;dir=desc" ' in default
    assert 'href="?sort=agent&amp;dir=asc" ' in default
    ascending = client.get(url, {"sort": "exposure", "dir": "asc"}, HTTP_HX_REQUEST="true")
    assert ascending.content.decode().lstrip().startswith('<div id="exposure">')
    assert _exposure_rows(ascending.content.decode()) == [world.other_agent.code, world.agent.code]
    found = client.get(url, {"q": world.other_agent.code.lower()}).content.decode()
    assert _exposure_rows(found) == [world.other_agent.code]
    world.line.risk_grade = "D"
    world.line.save()
    graded = client.get(url, {"grade": "D"}).content.decode()
    assert _exposure_rows(graded) == [world.agent.code]
    assert _exposure_rows(client.get(url, {"frozen": "yes"}).content.decode()) == []


def test_feed_health_shows_the_last_event_and_rejections_with_reasons(world: World) -> None:
    FeedEvent.objects.create(
        enterprise=world.enterprise, channel="webhook", event_id="evt-1", outcome="applied"
    )
    FeedEvent.objects.create(
        enterprise=world.enterprise,
        channel="webhook",
        event_id="evt-2",
        outcome="rejected",
        error_code="invalid_order",
        detail="amount: Amount must be greater than zero.",
        external_id="SO-BAD-1",
    )
    FeedEvent.objects.create(
        enterprise=world.other_enterprise, channel="webhook", event_id="x", outcome="rejected",
        error_code="other_enterprise_error",
    )  # fmt: skip
    body = login(world.enterprise_admin).get(f"/dashboard/{world.program.pk}/").content.decode()
    feed = body[body.index('id="feed-health"') :]
    assert "1 applied, 0 duplicate, 0 stale, 1 rejected" in feed
    assert "SO-BAD-1" in feed and "invalid_order" in feed
    assert "Amount must be greater than zero." in feed
    assert "other_enterprise_error" not in feed


def _csv(response: Any) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def test_orders_csv_has_every_order_of_the_program(world: World) -> None:
    first = world.order("1234.50")
    world.agent.name = "=HYPERLINK(evil)"
    world.agent.save()
    second = world.order("99.00", agent=world.other_agent)
    elsewhere = OrderFactory(enterprise=world.other_enterprise, agent=world.agent)
    response = login(world.enterprise_admin).get(f"/dashboard/{world.program.pk}/orders.csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith(
        f'attachment; filename="orders-{world.program.code}-'
    )
    rows = _csv(response)
    assert rows[0][:6] == [
        "Order number",
        "Agent code",
        "Agent name",
        "Amount",
        "Currency",
        "Status",
    ]
    by_id = {row[0]: row for row in rows[1:]}
    assert set(by_id) == {first.external_id, second.external_id}
    assert elsewhere.external_id not in by_id
    assert by_id[first.external_id][3] == "1234.50"
    assert by_id[first.external_id][2] == "'=HYPERLINK(evil)"  # never run as a formula


def test_loans_csv_has_the_programs_loans_with_balances(world: World) -> None:
    approved = loan_finance(user=world.agent_user, order_id=world.order("5000.00").pk)
    overdue = make_loan(world.other_line, "overdue", "3000.00", outstanding="2500.00", dpd=9)
    rows = _csv(login(world.ops).get(f"/dashboard/{world.program.pk}/loans.csv"))
    header, body = rows[0], rows[1:]
    assert header[:3] == ["Loan id", "Reference", "Order number"]
    by_ref = {row[1]: dict(zip(header, row, strict=True)) for row in body}
    assert set(by_ref) == {approved.reference, overdue.reference}
    approved.refresh_from_db()
    assert by_ref[approved.reference]["Status"] == approved.status
    assert by_ref[approved.reference]["Principal"] == "4000.00"
    assert by_ref[overdue.reference]["Outstanding principal"] == "2500.00"
    assert by_ref[overdue.reference]["Days past due"] == "9"
    assert Decimal(by_ref[overdue.reference]["Principal"]) == Decimal("3000.00")


def test_csv_times_are_local_like_the_pages_and_headed_with_their_zone(world: World) -> None:
    loan = make_loan(world.line, "active", "3000.00", outstanding="3000.00")
    at = dt.datetime(2026, 11, 20, 17, 30, 5, tzinfo=dt.UTC)  # 01:30:05 the next day in Shanghai
    type(loan).objects.filter(pk=loan.pk).update(requested_at=at, approved_at=at)
    rows = _csv(login(world.ops).get(f"/dashboard/{world.program.pk}/loans.csv"))
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["Requested at (Asia/Shanghai)"] == "2026-11-21 01:30:05"
    assert row["Approved at (Asia/Shanghai)"] == "2026-11-21 01:30:05"
    assert row["Closed at (Asia/Shanghai)"] == ""
    assert row["Due date"] == loan.due_date.isoformat()
    order = world.order()
    type(order).objects.filter(pk=order.pk).update(updated_at=at)
    orders = _csv(login(world.ops).get(f"/dashboard/{world.program.pk}/orders.csv"))
    mine = next(r for r in orders[1:] if r[0] == order.external_id)
    assert dict(zip(orders[0], mine, strict=True))["Updated at (Asia/Shanghai)"] == (
        "2026-11-21 01:30:05"
    )


def test_csv_headings_follow_the_language(world: World) -> None:
    client = login(world.ops)
    client.post("/accounts/language/", {"language": "zh-hans"})
    rows = _csv(client.get(f"/dashboard/{world.program.pk}/loans.csv"))
    assert rows[0][1] == "还款附言" and rows[0][-1] == "关闭时间 (Asia/Shanghai)"


def test_csv_exports_keep_the_pages_agent_filter(world: World) -> None:
    mine = make_loan(world.line, "active", "1000.00", outstanding="1000.00")
    theirs = make_loan(world.other_line, "active", "2000.00", outstanding="2000.00")
    client = login(world.enterprise_admin)
    page = client.get(f"/dashboard/{world.program.pk}/?q={world.other_agent.code}")
    body = page.content.decode()
    assert f"/dashboard/{world.program.pk}/loans.csv?q={world.other_agent.code}" in body
    url = f"/dashboard/{world.program.pk}/loans.csv?q={world.other_agent.code}"
    refs = {row[1] for row in _csv(client.get(url))[1:]}
    assert refs == {theirs.reference}
    url = f"/dashboard/{world.program.pk}/orders.csv?q={world.agent.code}"
    numbers = {row[0] for row in _csv(client.get(url))[1:]}
    assert numbers == {mine.order.external_id}
    frozen = _csv(client.get(f"/dashboard/{world.program.pk}/loans.csv?frozen=yes"))
    assert frozen[1:] == []
    everything = _csv(client.get(f"/dashboard/{world.program.pk}/loans.csv"))
    assert {row[1] for row in everything[1:]} == {mine.reference, theirs.reference}
    # The filter typed on the page (htmx) brings export links that carry it.
    fragment = client.get(
        f"/dashboard/{world.program.pk}/?grade=B", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert 'id="export-links" hx-swap-oob="true"' in fragment
    assert f"/dashboard/{world.program.pk}/orders.csv?grade=B" in fragment
