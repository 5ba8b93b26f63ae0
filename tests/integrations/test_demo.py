"""seed_demo and demo_logins: the demo data set, its credentials file, and refreshing it."""

from __future__ import annotations

import datetime as dt
import json
import stat
from collections import Counter
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pgtrigger
import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Count, Sum
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from stdnum.cn import uscc

from integrations.demo.contents import DEMO_CONTENTS, demo_contents
from lending.models import (
    Bank,
    CreditLine,
    Loan,
    Program,
    ProgramStatus,
)
from orders.models import (
    Agent,
    AgentRelationship,
    CoreEnterprise,
    FeedEvent,
    Role,
    SalesOrder,
    SalesOrderLine,
    User,
)
from tests.orders.factories import order_payload

from .feed_helpers import event, post_bulk, post_signed

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 6, 30)
ORDERS = 150
AGENTS = 7
MODELS = (Bank, CoreEnterprise, Agent, AgentRelationship, SalesOrder, SalesOrderLine, User, Token)


def seed(path: Path, *extra: str, seed: int = 7, credit: bool = False) -> dict[str, Any]:
    call_command(
        "seed_demo",
        "--out",
        str(path),
        "--seed",
        str(seed),
        "--orders",
        str(ORDERS),
        "--agents",
        str(AGENTS),
        "--today",
        TODAY.isoformat(),
        *extra,
        *(() if credit else ("--no-credit-history",)),
        stdout=StringIO(),
    )
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture
def demo_file(tmp_path: Path) -> Path:
    return tmp_path / "demo.json"


@pytest.fixture
def demo(demo_file: Path) -> dict[str, Any]:
    return seed(demo_file)


def token_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def row_counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def test_seed_creates_bank_enterprises_agents_orders_and_users(demo, demo_file):
    assert row_counts() == {
        "Bank": 2,
        "CoreEnterprise": 2,
        "Agent": AGENTS,
        "AgentRelationship": AGENTS + sum(len(a["enterprise_codes"]) - 1 for a in demo["agents"]),
        "SalesOrder": ORDERS,
        "SalesOrderLine": SalesOrderLine.objects.count(),
        "User": 11,
        "Token": 11,
    }
    assert set(demo) >= {"base_url", "bank", "enterprises", "agents", "users"}
    assert demo["bank"]["code"] == Bank.objects.order_by("pk").first().code
    assert stat.S_IMODE(demo_file.stat().st_mode) == 0o600
    for entry in demo["enterprises"]:
        enterprise = CoreEnterprise.objects.get(pk=entry["id"], code=entry["code"])
        assert entry["name"] == enterprise.name
        assert entry["program_ids"] == list(
            Program.objects.filter(enterprise=enterprise).values_list("pk", flat=True)
        )
        # The first enterprise has a program with each of the two banks.
        banks = Program.objects.filter(pk__in=entry["program_ids"]).values_list("bank__code")
        first = entry["code"] == demo["enterprises"][0]["code"]
        assert sorted(code for (code,) in banks) == (["HCB", "JNCB"] if first else ["JNCB"])
        assert uscc.is_valid(enterprise.uscc)
        assert enterprise.settlement_account_no and enterprise.settlement_bank
    enterprise_codes = [e["code"] for e in demo["enterprises"]]
    per_enterprise = Counter()
    for entry in demo["agents"]:
        agent = Agent.objects.get(pk=entry["id"], code=entry["code"])
        stored = sorted(agent.enterprises.values_list("code", flat=True))
        assert entry["enterprise_codes"] == stored and set(stored) <= set(enterprise_codes)
        assert uscc.is_valid(agent.uscc) and agent.settlement_account_no
        per_enterprise.update(stored)
    assert per_enterprise.keys() == set(enterprise_codes)
    assert any(len(a["enterprise_codes"]) == 2 for a in demo["agents"])
    assert any(len(a["enterprise_codes"]) == 1 for a in demo["agents"])


def test_every_role_has_a_valid_demo_login(demo):
    users = demo["users"]
    assert Counter(u["role"] for u in users) == {
        Role.OPS_ADMIN: 1,
        Role.RISK_REVIEWER: 1,
        Role.RISK_APPROVER: 2,
        Role.ENTERPRISE_ADMIN: 2,
        Role.AGENT: 5,
    }
    assert {u["enterprise_code"] for u in users if u["role"] == Role.ENTERPRISE_ADMIN} == {
        e["code"] for e in demo["enterprises"]
    }
    for entry in users:
        user = authenticate(username=entry["username"], password=entry["password"])
        assert user is not None, entry["username"]
        validate_password(entry["password"], user)
        assert user.role == entry["role"]
        assert (user.agent.code if user.agent else None) == entry["agent_code"]
        assert (user.enterprise.code if user.enterprise else None) == entry["enterprise_code"]
        assert user.is_superuser == user.is_staff == (user.role == Role.OPS_ADMIN)


def test_the_demos_staff_work_for_the_demo_bank_and_an_agent_sees_two_banks_offers(demo):
    staff = [u for u in demo["users"] if u["role"] not in (Role.AGENT, Role.ENTERPRISE_ADMIN)]
    assert {User.objects.get(username=u["username"]).bank_membership.bank.code for u in staff} == {
        "JNCB"
    }
    reviewer = next(u for u in staff if u["role"] == Role.RISK_REVIEWER)
    programs = token_client(reviewer["token"]).get("/api/v1/programs/").json()["results"]
    assert {p["code"] for p in programs} == set(
        Program.objects.filter(bank__code="JNCB").values_list("code", flat=True)
    )
    # An agent with a login and lines at both banks: two offers in the quote.
    both = (
        CreditLine.objects.filter(agent__users__isnull=False)
        .values("agent_id")
        .annotate(n=Count("program__bank", distinct=True))
        .filter(n=2)
    )
    assert both.exists()
    agent_id = both[0]["agent_id"]
    login = next(u for u in demo["users"] if u["agent_code"] == Agent.objects.get(pk=agent_id).code)
    order = SalesOrder.objects.filter(
        agent_id=agent_id, enterprise__code=demo["enterprises"][0]["code"]
    ).first()
    quote = token_client(login["token"]).post(f"/api/v1/orders/{order.pk}/quote/").json()
    assert [o["bank"]["code"] for o in quote["offers"]] == ["JNCB", "HCB"]


def test_every_token_in_the_file_sees_exactly_its_orders(demo):
    seen_by_agents = 0
    for entry in demo["users"]:
        response = token_client(entry["token"]).get("/api/v1/orders/", {"page_size": 500})
        assert response.status_code == 200, entry["username"]
        body = response.json()
        if entry["role"] == Role.AGENT:
            expected = SalesOrder.objects.filter(agent__code=entry["agent_code"]).count()
            assert {o["agent_code"] for o in body["results"]} <= {entry["agent_code"]}
            seen_by_agents += body["count"]
        elif entry["role"] == Role.ENTERPRISE_ADMIN:
            expected = SalesOrder.objects.filter(enterprise__code=entry["enterprise_code"]).count()
            assert {o["enterprise"] for o in body["results"]} == {entry["enterprise_code"]}
        else:
            expected = ORDERS
        assert body["count"] == expected, entry["username"]
    assert 0 < seen_by_agents < ORDERS


def test_webhook_secret_in_the_file_signs_an_accepted_event(demo):
    entry = demo["enterprises"][1]
    enterprise = CoreEnterprise.objects.get(code=entry["code"])
    agent = next(a for a in demo["agents"] if entry["code"] in a["enterprise_codes"])
    body = event(order_payload(agent["code"], external_id="SO-DEMO-WH"), "evt-demo-1")
    response = post_signed(APIClient(), enterprise, body, secret=entry["webhook_secret"])
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "applied"}
    assert (
        SalesOrder.objects.get(enterprise=enterprise, external_id="SO-DEMO-WH").agent.code
        == (agent["code"])
    )


def test_api_key_in_the_file_works_on_the_bulk_endpoint(demo):
    entry = demo["enterprises"][0]
    agent = next(a for a in demo["agents"] if entry["code"] in a["enterprise_codes"])
    orders = [order_payload(agent["code"], external_id=f"SO-DEMO-B{i}") for i in range(3)]
    response = post_bulk(APIClient(), entry["api_key"], {"orders": orders})
    assert response.status_code == 200, response.content
    assert response.json()["created"] == 3
    created = SalesOrder.objects.filter(external_id__startswith="SO-DEMO-B")
    assert set(created.values_list("enterprise__code", flat=True)) == {entry["code"]}
    assert created.count() == 3


def test_orders_add_up_and_spread_over_statuses_and_six_months(demo):
    orders = SalesOrder.objects.annotate(line_total=Sum("lines__amount"), n=Count("lines"))
    for order in orders:
        assert order.amount == order.line_total, order.external_id
        assert 1 <= order.n <= 5 and order.currency == "CNY"
        assert TODAY - dt.timedelta(days=179) <= order.order_date <= TODAY
        assert order.raw_payload["amount"] == str(order.amount)
    for line in SalesOrderLine.objects.all():
        assert isinstance(line.amount, Decimal)
        assert line.amount == line.quantity * line.unit_price
    statuses = Counter(SalesOrder.objects.values_list("status", flat=True))
    assert set(statuses) == {"confirmed", "shipped", "delivered", "cancelled"}
    assert statuses["cancelled"] < ORDERS // 4
    months = {d.month for d in SalesOrder.objects.values_list("order_date", flat=True)}
    assert len(months) >= 5
    assert set(FeedEvent.objects.values_list("channel", flat=True)) == {"bulk"}


def test_if_empty_on_a_seeded_database_rotates_credentials_and_adds_no_rows(demo, demo_file):
    before = row_counts()
    changed = User.objects.get(username=demo["users"][-1]["username"])
    changed.set_password("someone-changed-it-77")
    changed.save()
    fresh = seed(demo_file, "--if-empty")
    assert row_counts() == before
    assert [u["token"] for u in fresh["users"]] == [u["token"] for u in demo["users"]]
    assert [u["username"] for u in fresh["users"]] == [u["username"] for u in demo["users"]]
    assert [a["code"] for a in fresh["agents"]] == [a["code"] for a in demo["agents"]]
    for entry in fresh["users"]:
        assert authenticate(username=entry["username"], password=entry["password"]) is not None
    client = APIClient()
    for old, new in zip(demo["enterprises"], fresh["enterprises"], strict=True):
        assert new["code"] == old["code"] and new["api_key"] != old["api_key"]
        assert new["webhook_secret"] != old["webhook_secret"]
        agent = next(a for a in fresh["agents"] if new["code"] in a["enterprise_codes"])
        body = {"orders": [order_payload(agent["code"], external_id=f"SO-R-{new['code']}")]}
        assert post_bulk(client, old["api_key"], body).status_code == 401
        assert post_bulk(client, new["api_key"], body).status_code == 200
        enterprise = CoreEnterprise.objects.get(code=new["code"])
        signed = event(order_payload(agent["code"]), f"evt-r-{new['code']}")
        assert post_signed(
            client, enterprise, signed, secret=old["webhook_secret"]
        ).status_code == (401)
        assert post_signed(
            client, enterprise, signed, secret=new["webhook_secret"]
        ).status_code == (200)


def test_if_empty_on_an_empty_database_seeds(demo_file):
    data = seed(demo_file, "--if-empty")
    assert SalesOrder.objects.count() == ORDERS and len(data["users"]) == 11


def test_seeding_twice_without_if_empty_refuses_and_keeps_the_file(demo, demo_file):
    before = row_counts()
    text = demo_file.read_text(encoding="utf-8")
    with pytest.raises(CommandError, match="--if-empty"):
        seed(demo_file)
    assert row_counts() == before
    assert demo_file.read_text(encoding="utf-8") == text


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Everything the seed decides (not ids, secrets, tokens or timestamps)."""
    return {
        "enterprises": sorted(
            CoreEnterprise.objects.values_list(
                "code", "name", "uscc", "settlement_account_no", "settlement_bank"
            )
        ),
        "agents": sorted(
            Agent.objects.values_list("code", "name", "uscc", "email", "settlement_account_no")
        ),
        "relationships": sorted(
            AgentRelationship.objects.values_list("agent__code", "enterprise__code")
        ),
        "orders": sorted(
            SalesOrder.objects.values_list(
                "enterprise__code", "external_id", "agent__code", "amount", "status", "order_date"
            )
        ),
        "lines": sorted(
            SalesOrderLine.objects.values_list(
                "order__external_id", "line_no", "sku", "quantity", "unit_price", "amount"
            )
        ),
        "users": sorted(
            User.objects.values_list("username", "role", "agent__code", "enterprise__code")
        ),
    }


def wipe() -> None:
    """Empty every table the seed writes. The ledger and the audit log are append-only on
    PostgreSQL (their triggers are set aside here); the foreign keys are checked at the end,
    when every row is gone."""
    tables = [
        model._meta.db_table
        for label in ("lending", "orders", "integrations", "authtoken")
        for model in apps.get_app_config(label).get_models(include_auto_created=True)
        if model._meta.managed and not model._meta.proxy
    ]
    quote = connection.ops.quote_name
    with pgtrigger.ignore(), connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"DELETE FROM {quote(table)}")


def test_same_seed_gives_the_same_data_and_another_seed_other_data(demo_file):
    seed(demo_file, seed=11)
    first = snapshot()
    wipe()
    seed(demo_file, seed=11)
    assert snapshot() == first
    wipe()
    seed(demo_file, seed=12)
    other = snapshot()
    assert other["orders"] != first["orders"] and other["agents"] != first["agents"]
    assert len(other["orders"]) == len(first["orders"]) == ORDERS


def test_demo_logins_prints_every_login_and_the_urls(demo, demo_file):
    out = StringIO()
    call_command("demo_logins", str(demo_file), stdout=out)
    text = out.getvalue()
    for entry in demo["users"]:
        line = next(row for row in text.splitlines() if row.split()[:1] == [entry["username"]])
        assert entry["password"] in line and entry["role"] in line
        assert (entry["agent_code"] or entry["enterprise_code"] or "-") in line
    assert "http://127.0.0.1:8000/admin/" in text and "http://127.0.0.1:8000/api/docs/" in text
    assert demo["enterprises"][0]["webhook_secret"] not in text


def test_demo_logins_name_the_three_front_ends_and_who_signs_in_to_each(demo, demo_file):
    out = StringIO()
    call_command("demo_logins", str(demo_file), stdout=out)
    lines = out.getvalue().splitlines()
    for name, path, roles in (
        ("Agent portal", "/", {Role.AGENT}),
        ("Enterprise dashboard", "/dashboard/", {Role.ENTERPRISE_ADMIN}),
        ("Risk review queue", "/reviews/", {Role.RISK_REVIEWER, Role.RISK_APPROVER}),
    ):
        line = next(row for row in lines if row.strip().startswith(name))
        assert f"http://127.0.0.1:8000{path} " in line, line
        users = {u["username"] for u in demo["users"] if u["role"] in roles}
        assert set(line.rsplit(": ", 1)[1].split(", ")) == users, line


def test_demo_logins_without_a_file_says_to_seed_first(tmp_path):
    with pytest.raises(CommandError, match="seed_demo"):
        call_command("demo_logins", str(tmp_path / "missing.json"), stdout=StringIO())


def test_demo_with_credit_history_trains_and_grades_outside_the_demo_programs(demo_file):
    from lending.models import AgentScore, CreditModel

    demo = seed(demo_file, credit=True)
    history = Program.objects.get(code="PRG-HIST")
    assert history.status == ProgramStatus.SUSPENDED
    assert history.enterprise.code not in {e["code"] for e in demo["enterprises"]}
    demo_agents = {a["code"] for a in demo["agents"]}
    # The model learnt from the history; the nightly run graded the demo's lines with it.
    model = CreditModel.objects.get()
    assert model.promoted_at is not None
    assert Loan.objects.filter(program=history).count() > 1000
    graded = set(AgentScore.objects.filter(model=model).values_list("agent__code", flat=True))
    assert graded == demo_agents
    for entry in demo["enterprises"]:
        lines = CreditLine.objects.filter(program_id__in=entry["program_ids"])
        assert set(lines.values_list("agent__code", flat=True)) <= demo_agents
    admin = next(u for u in demo["users"] if u["role"] == Role.ENTERPRISE_ADMIN)
    client = token_client(admin["token"])
    programs = client.get("/api/v1/programs/").json()["results"]
    assert programs and history.code not in {p["code"] for p in programs}
    orders = client.get("/api/v1/orders/", {"page_size": 1}).json()["count"]
    assert orders == SalesOrder.objects.filter(enterprise__code=admin["enterprise_code"]).count()
    assert demo_contents()["orders"] == ORDERS
    assert demo_contents()["history_agents"] == 300


def readme_seed_counts() -> list[int]:
    """The count column of the README's "What it seeds" table, in order."""
    text = (settings.BASE_DIR / "README.md").read_text(encoding="utf-8")
    table = text[text.index("What it seeds") :].split("\n\n")[1]
    rows = [line for line in table.splitlines() if line.startswith("|")][2:]
    return [int(row.rstrip(" |").rsplit("|", 1)[1].replace(",", "")) for row in rows]


def test_the_readme_states_exactly_what_the_default_seed_creates(demo_file):
    out = StringIO()
    call_command("seed_demo", "--out", str(demo_file), "--today", TODAY.isoformat(), stdout=out)
    contents = demo_contents()
    assert dict(zip(DEMO_CONTENTS, readme_seed_counts(), strict=True)) == contents
    printed = out.getvalue()
    for key in ("agents", "credit_lines", "orders", "finance_requests", "users"):
        assert f"{contents[key]} {DEMO_CONTENTS[key]}" in printed, (key, printed)
    assert (
        f"{contents['history_agents']} synthetic dealers, {contents['history_orders']} orders, "
        f"{contents['history_loans']} loans"
    ) in printed
