"""Order list and detail: each role sees what it may, another agent's order is a 404."""

import pytest

from tests.conftest import client_for
from tests.lending.factories import BankFactory, ProgramFactory
from tests.orders.factories import AgentFactory, EnterpriseFactory, OrderFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_agent_sees_only_own_orders(agent_client, agent, enterprise):
    mine = OrderFactory(agent=agent, enterprise=enterprise)
    other_agent = AgentFactory(enterprises=[enterprise])
    theirs = OrderFactory(agent=other_agent, enterprise=enterprise)
    listed = agent_client.get("/api/v1/orders/").json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == mine.id
    assert listed["results"][0]["amount"] == "10000.00"
    assert agent_client.get(f"/api/v1/orders/{mine.id}/").status_code == 200
    response = agent_client.get(f"/api/v1/orders/{theirs.id}/")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_enterprise_admin_sees_own_enterprise_only(enterprise_admin, enterprise, agent):
    mine = OrderFactory(agent=agent, enterprise=enterprise)
    theirs = OrderFactory(enterprise=EnterpriseFactory())
    client = client_for(enterprise_admin)
    ids = [o["id"] for o in client.get("/api/v1/orders/").json()["results"]]
    assert ids == [mine.id]
    assert client.get(f"/api/v1/orders/{theirs.id}/").status_code == 404


def test_bank_staff_see_their_banks_enterprises_orders_and_filter_by_status(
    ops_user, agent, enterprise
):
    ProgramFactory(enterprise=enterprise)  # with the ops admin's bank
    OrderFactory(agent=agent, enterprise=enterprise, status="shipped")
    OrderFactory(agent=agent, enterprise=enterprise, status="cancelled")
    elsewhere = EnterpriseFactory()  # works only with another bank
    ProgramFactory(enterprise=elsewhere, bank=BankFactory(code="BANK-B", name="Other"))
    theirs = OrderFactory(agent=agent, enterprise=elsewhere, status="shipped")
    client = client_for(ops_user)
    assert client.get("/api/v1/orders/").json()["count"] == 2
    assert client.get(f"/api/v1/orders/{theirs.id}/").status_code == 404
    shipped = client.get("/api/v1/orders/?status=shipped").json()
    assert [o["status"] for o in shipped["results"]] == ["shipped"]
    assert client.get("/api/v1/orders/?status=bogus").status_code == 422


def test_detail_includes_lines(agent_client, agent, enterprise):
    order = OrderFactory(agent=agent, enterprise=enterprise)
    body = agent_client.get(f"/api/v1/orders/{order.id}/").json()
    assert body["lines"][0]["amount"] == "10000.00"


def test_anonymous_is_401(client, db):
    assert client.get("/api/v1/orders/").status_code in (401, 403)


def test_user_role_must_match_party(db, agent, enterprise):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        UserFactory(role="agent", agent=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        UserFactory(role="risk_reviewer", enterprise=enterprise)


def test_health_reports_database_and_broker(client, db):
    body = client.get("/healthz").json()
    assert body["database"] == "ok" and body["broker"] in ("eager", "ok")


def test_openapi_schema_and_docs_served(client, db):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/integrations/orders/webhook/" in schema.content
    assert client.get("/api/docs/").status_code == 200
