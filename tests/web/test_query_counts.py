"""No N+1: every list page and the dashboard run the same, bounded number of queries whatever
the number of rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from lending.models import AuditLog, Review
from lending.services.audit import audit_record
from orders.models import FeedEvent
from scf import clock
from tests.lending.factories import CreditLineFactory
from tests.orders.factories import AgentFactory
from tests.web.conftest import World, login, make_loan

pytestmark = pytest.mark.django_db


def grow(world: World, n: int) -> None:
    """``n`` more of everything the list pages show, spread over the world's parties."""
    for i in range(n):
        world.order(status="confirmed" if i % 2 else "shipped")
        make_loan(world.line, "active", "1000.00", outstanding="1000.00")
        make_loan(world.other_line, "overdue", "2000.00", outstanding="2000.00", dpd=i + 1)
        loan = make_loan(world.line, "in_review", "3000.00", reserved="0.00")
        review = Review.objects.create(loan=loan, created_at=clock.now())
        agent = AgentFactory(enterprises=[world.enterprise])
        CreditLineFactory(agent=agent, program=world.program)
        FeedEvent.objects.create(
            enterprise=world.enterprise, channel="webhook", event_id=f"evt-q-{AuditLog.objects.count()}-{i}",
            outcome="rejected", error_code="invalid_order",
        )  # fmt: skip
        audit_record(actor=world.ops, action="test.row", obj=loan)
        # The audit trail names each object and the users in its changes: rows of several kinds.
        audit_record(
            actor=world.reviewer,
            action="review.claim",
            obj=review,
            after={"claimed_by": world.reviewer.pk},
        )
        audit_record(actor=world.ops, action="credit_line.freeze", obj=world.line)


def count(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
        if getattr(response, "streaming", False):
            b"".join(response.streaming_content)
    assert response.status_code == 200, url
    return len(queries)


# (role, address, name, most queries allowed: what the page runs today plus two of slack)
PAGES: list[tuple[str, Callable[[World], str], str, int]] = [
    ("agent", lambda w: "/", "portal", 9),
    ("agent", lambda w: "/orders/", "orders (agent)", 8),
    ("enterprise_admin", lambda w: "/orders/?financeable=1", "orders (enterprise)", 8),
    ("agent", lambda w: "/loans/", "loans (agent)", 6),
    ("ops_admin", lambda w: "/loans/", "loans (bank)", 6),
    ("ops_admin", lambda w: "/dashboard/", "program list", 5),
    ("enterprise_admin", lambda w: f"/dashboard/{w.program.pk}/", "dashboard", 12),
    ("risk_reviewer", lambda w: "/reviews/", "review queue", 6),
    ("risk_reviewer", lambda w: f"/reviews/{Review.objects.first().pk}/", "case", 9),
    ("risk_reviewer", lambda w: "/reviews/?q=WEB", "review queue (search)", 6),
    ("ops_admin", lambda w: "/reviews/audit/", "audit trail", 10),
    ("ops_admin", lambda w: "/reviews/audit.csv", "audit csv", 9),
    ("enterprise_admin", lambda w: f"/dashboard/{w.program.pk}/loans.csv", "loans csv", 6),
    ("enterprise_admin", lambda w: f"/dashboard/{w.program.pk}/orders.csv", "orders csv", 6),
]


@pytest.mark.parametrize(("role", "url", "name", "bound"), PAGES, ids=[p[2] for p in PAGES])
def test_page_queries_do_not_grow_with_rows(
    world: World,
    django_assert_max_num_queries: Any,
    role: str,
    url: Callable[[World], str],
    name: str,
    bound: int,
) -> None:
    client = login(world.user(role))
    grow(world, 2)
    few = count(client, url(world))
    grow(world, 20)
    with django_assert_max_num_queries(bound):
        response = client.get(url(world))
        if getattr(response, "streaming", False):
            b"".join(response.streaming_content)
    many = count(client, url(world))
    assert many == few, f"{name}: {few} queries with few rows, {many} with many"


def test_the_orders_offers_take_the_same_queries_for_every_kind_of_refusal(
    world: World, django_assert_max_num_queries: Any
) -> None:
    """Each row's offer is the engine in quote mode; a page of refusals of every kind, financed
    orders and loans to repay costs what a page of plain offers costs."""
    from decimal import Decimal

    from lending.services.finance import loan_finance

    client = login(world.agent_user)
    world.order()
    few = count(client, "/orders/")
    make_loan(world.line, "overdue", "1000.00", outstanding="1000.00", dpd=4)
    for i in range(4):
        world.order("10000.00")  # referred
        world.order(status="delivered")
        world.order("3000000.00")  # above the maximum and the line
        loan_finance(user=world.agent_user, order_id=world.order("900.00").pk)  # declined: small
    world.program.limit = Decimal("1.00")
    world.program.save()
    with django_assert_max_num_queries(8):
        body = client.get("/orders/").content.decode()
    assert 'data-repay="' in body and 'data-reason="insufficient_program_limit"' in body
    assert count(client, "/orders/") == few
