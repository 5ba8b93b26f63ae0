"""Programs, dashboards and credit lines: figures, visibility, freezes, limits, audit, admin."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from lending.models import AuditLog, CreditLine, Decision, Loan, Program
from lending.services.credit import line_reserve
from lending.services.lines import (
    credit_line_create,
    credit_line_freeze,
    credit_line_update,
    program_create,
    program_update,
)
from orders.models import User
from scf.errors import Conflict, ValidationFailed
from tests.conftest import client_for
from tests.lending.conftest import finance
from tests.lending.factories import CreditLineFactory, ProgramFactory
from tests.orders.factories import AgentFactory, EnterpriseFactory, OrderFactory, UserFactory

pytestmark = pytest.mark.django_db

# 10:00 on 2026-11-20 in Asia/Shanghai (the programs' zone).
NOW = dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC)
_refs = itertools.count(1)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def make_loan(
    line: CreditLine,
    status: str,
    principal: str,
    *,
    outstanding: str = "0.00",
    reserved: str = "0.00",
    dpd: int = 0,
    approved_at: dt.datetime | None = None,
) -> Loan:
    """A loan written straight to the table (balances as given), on its own order."""
    amount = Decimal(principal) / Decimal("0.8")
    order = OrderFactory(agent=line.agent, enterprise=line.program.enterprise, amount=amount)
    requested_at = approved_at or NOW
    return Loan.objects.create(
        program=line.program,
        credit_line=line,
        agent=line.agent,
        order=order,
        status=status,
        currency="CNY",
        order_amount=amount,
        principal=Decimal(principal),
        advance_rate=Decimal("0.8000"),
        annual_rate=Decimal("0.054000"),
        penalty_rate=Decimal("0.081000"),
        day_count="ACT/360",
        tenor_days=90,
        grace_days=3,
        reserved_amount=Decimal(reserved),
        outstanding_principal=Decimal(outstanding),
        days_past_due=dpd,
        due_date=requested_at.date() + dt.timedelta(days=90),
        reference=f"T{next(_refs):010d}",
        requested_at=requested_at,
        decided_at=requested_at,
        approved_at=approved_at,
    )


def set_balances(row: Program | CreditLine, outstanding: str, reserved: str) -> None:
    type(row).objects.filter(pk=row.pk).update(
        outstanding_principal=Decimal(outstanding), reserved=Decimal(reserved)
    )


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> dt.datetime:
    monkeypatch.setattr("scf.clock.now", lambda: NOW)
    return NOW


@pytest.fixture
def reviewer(db: Any) -> User:
    return UserFactory(role="risk_reviewer")


# (line, status, principal, outstanding, reserved, DPD, approved at (UTC)). Shanghai is UTC+8:
# 11-19 17:00 UTC is 01:00 on the 20th there (today); 11-19 15:30 is 23:30 on the 19th (this
# month, not today); 10-31 16:30 is 00:30 on 1 November (this month); 10-31 15:00 is 23:00 on
# 31 October (last month). DPDs sit on the bucket edges 30/31, 90/91.
BOOK: list[tuple[str, str, str, str, str, int, dt.datetime | None]] = [
    ("a", "active", "8000.00", "8000.00", "0.00", 0, utc(2026, 11, 19, 17)),
    ("a", "overdue", "20000.00", "15000.00", "0.00", 45, utc(2026, 9, 1)),
    ("a", "in_review", "6000.00", "0.00", "6000.00", 0, None),
    ("a", "approved", "7000.00", "0.00", "7000.00", 0, utc(2026, 11, 20, 1)),
    ("a", "overdue", "10000.00", "10000.00", "0.00", 30, utc(2026, 8, 1)),
    ("a", "overdue", "12000.00", "12000.00", "0.00", 91, utc(2026, 7, 1)),
    ("b", "active", "5000.00", "5000.00", "0.00", 10, utc(2026, 11, 19, 15, 30)),
    ("b", "overdue", "30000.00", "30000.00", "0.00", 90, utc(2026, 7, 15)),
    ("b", "overdue", "9000.00", "4000.00", "0.00", 31, utc(2026, 10, 31, 16, 30)),
    ("b", "repaid", "4000.00", "0.00", "0.00", 12, utc(2026, 10, 31, 15)),  # repaid: not overdue
    ("b", "written_off", "3000.00", "0.00", "0.00", 200, utc(2026, 5, 1)),
    ("b", "declined", "2000.00", "0.00", "0.00", 0, None),
    ("b", "disbursing", "2500.00", "0.00", "2500.00", 0, utc(2026, 11, 10)),
    ("b", "expired", "1500.00", "0.00", "0.00", 0, None),
]


def line_for(program: Program, limit: str, **extra: Any) -> CreditLine:
    agent = AgentFactory(enterprises=[program.enterprise])
    return CreditLineFactory(program=program, agent=agent, limit=Decimal(limit), **extra)


@pytest.fixture
def book(enterprise: Any, frozen_clock: dt.datetime) -> dict[str, Any]:
    """A small program: three agents (C frozen, no loans), loans in every status (BOOK)."""
    program = ProgramFactory(enterprise=enterprise, limit=Decimal("1000000.00"))
    lines = {
        "a": line_for(program, "200000.00"),
        "b": line_for(program, "100000.00", risk_grade="C"),
        "c": line_for(program, "50000.00", risk_grade="A", frozen=True),
    }
    for key, status, principal, outstanding, reserved, dpd, approved_at in BOOK:
        make_loan(
            lines[key],
            status,
            principal,
            outstanding=outstanding,
            reserved=reserved,
            dpd=dpd,
            approved_at=approved_at,
        )
    set_balances(lines["a"], "45000.00", "13000.00")
    set_balances(lines["b"], "39000.00", "2500.00")
    set_balances(program, "84000.00", "15500.00")
    # Another enterprise's program: none of it may leak into the figures above.
    other = CreditLineFactory(program=ProgramFactory(), limit=Decimal("90000.00"))
    make_loan(other, "overdue", "50000.00", outstanding="50000.00", dpd=5, approved_at=NOW)
    set_balances(other, "50000.00", "0.00")
    set_balances(other.program, "50000.00", "0.00")
    return {"program": program, **lines, "other": other}


def money_bucket(bucket: str, count: int, outstanding: str) -> dict[str, Any]:
    return {"bucket": bucket, "count": count, "outstanding": outstanding}


def dashboard_of(book: dict[str, Any], user: User) -> dict[str, Any]:
    response = client_for(user).get(f"/api/v1/programs/{book['program'].id}/dashboard/")
    assert response.status_code == 200, response.content
    return response.json()


def test_dashboard_headline_and_financed_figures_match_hand_computed_numbers(
    book, enterprise_admin
):
    body = dashboard_of(book, enterprise_admin)
    assert (body["as_of"], body["program"]["id"]) == ("2026-11-20", book["program"].id)
    assert (body["limit"], body["outstanding"], body["reserved"]) == (
        "1000000.00",
        "84000.00",
        "15500.00",
    )
    assert (body["utilised"], body["available"]) == ("99500.00", "900500.00")
    # Approved or beyond: 8000+20000+7000+10000+12000 (A) + 5000+30000+9000+4000+3000+2500 (B);
    # order amounts are principal / 0.8.
    assert body["financed"] == {
        "order_count": 11,
        "order_amount": "138125.00",
        "principal": "110500.00",
    }
    # Today in Shanghai: 8000 and 7000. This month: those, 5000, 9000 and 2500.
    assert body["financed_today"] == {
        "order_count": 2,
        "order_amount": "18750.00",
        "principal": "15000.00",
    }
    assert body["financed_month"] == {
        "order_count": 5,
        "order_amount": "39375.00",
        "principal": "31500.00",
    }


def test_dashboard_dpd_buckets_match_hand_computed_numbers(book, reviewer):
    body = dashboard_of(book, reviewer)
    # 1-30: DPD 30 (10000) and 10 (5000); 31-60: 45 (15000) and 31 (4000); 61-90: 90 (30000);
    # 90+: 91 (12000). Repaid and written-off loans are not overdue, whatever their DPD.
    assert body["overdue"] == [
        money_bucket("1-30", 2, "15000.00"),
        money_bucket("31-60", 2, "19000.00"),
        money_bucket("61-90", 1, "30000.00"),
        money_bucket("90+", 1, "12000.00"),
    ]
    assert body["overdue_total"] == money_bucket("total", 6, "76000.00")


def test_dashboard_agent_exposure_sorted_by_exposure(book, enterprise_admin):
    a, b, c = book["a"], book["b"], book["c"]
    body = dashboard_of(book, enterprise_admin)
    fields = ("limit", "outstanding", "reserved", "exposure", "available", "risk_grade")
    rows = [
        (
            row["agent_id"],
            *(row[f] for f in fields),
            row["frozen"],
            row["loan_count"],
            row["max_dpd"],
        )
        for row in body["agents"]
    ]
    # Loan count: loans reserving or outstanding (A: 6; B: 5000, 30000, 9000, 2500 -> 4).
    assert rows == [
        (
            a.agent_id,
            "200000.00",
            "45000.00",
            "13000.00",
            "58000.00",
            "142000.00",
            "B",
            False,
            6,
            91,
        ),
        (b.agent_id, "100000.00", "39000.00", "2500.00", "41500.00", "58500.00", "C", False, 4, 90),
        (c.agent_id, "50000.00", "0.00", "0.00", "0.00", "50000.00", "A", True, 0, 0),
    ]
    assert (body["agents"][0]["agent_code"], body["agents"][0]["agent_name"]) == (
        a.agent.code,
        a.agent.name,
    )


def test_program_list_shows_headline_figures_to_bank_staff(book, reviewer):
    program, other = book["program"], book["other"].program
    body = client_for(reviewer).get("/api/v1/programs/").json()
    assert body["count"] == 2 and body["next"] is None
    rows = {row["id"]: row for row in body["results"]}
    assert set(rows) == {program.id, other.id}
    mine = rows[program.id]
    assert (mine["limit"], mine["utilised"], mine["available"]) == (
        "1000000.00",
        "99500.00",
        "900500.00",
    )
    assert (mine["financed_order_count"], mine["financed_order_amount"]) == (11, "138125.00")
    assert (mine["overdue_count"], mine["overdue_outstanding"]) == (6, "76000.00")
    assert mine["agent_count"] == 3
    assert (rows[other.id]["financed_principal"], rows[other.id]["overdue_count"]) == (
        "50000.00",
        1,
    )


def test_enterprise_admin_sees_only_its_enterprises_programs(book, enterprise_admin):
    program, other = book["program"], book["other"].program
    client = client_for(enterprise_admin)
    assert [p["id"] for p in client.get("/api/v1/programs/").json()["results"]] == [program.id]
    assert client.get(f"/api/v1/programs/{other.id}/").status_code == 404
    assert client.get(f"/api/v1/programs/{other.id}/dashboard/").status_code == 404


def test_another_enterprises_admin_gets_404_for_the_dashboard(book):
    outsider = UserFactory(role="enterprise_admin", enterprise=EnterpriseFactory())
    client = client_for(outsider)
    program = book["program"]
    assert client.get(f"/api/v1/programs/{program.id}/dashboard/").status_code == 404
    assert client.get(f"/api/v1/programs/{program.id}/").status_code == 404
    assert client.get("/api/v1/programs/").json()["count"] == 0


def test_agent_sees_its_programs_terms_but_not_program_figures(book):
    program, a = book["program"], book["a"]
    client = client_for(UserFactory(role="agent", agent=a.agent))
    listing = client.get("/api/v1/programs/").json()
    assert [p["id"] for p in listing["results"]] == [program.id]
    assert listing["results"][0]["limit"] is None
    assert listing["results"][0]["financed_order_count"] is None
    detail = client.get(f"/api/v1/programs/{program.id}/").json()
    assert (detail["advance_rate"], detail["tenor_days"], detail["day_count"]) == (
        "0.8000",
        90,
        "ACT/360",
    )
    assert detail["min_principal"] == "1000.00" and detail["auto_approve_limit"] is None
    assert client.get(f"/api/v1/programs/{program.id}/dashboard/").status_code == 404
    assert client.get(f"/api/v1/programs/{book['other'].program.id}/").status_code == 404


def test_program_detail_gives_terms_to_its_enterprise_admin(book, enterprise_admin):
    Program.objects.filter(pk=book["program"].pk).update(refer_rules=["order_too_old"])
    detail = client_for(enterprise_admin).get(f"/api/v1/programs/{book['program'].id}/").json()
    assert detail["refer_rules"] == ["order_too_old"]
    assert detail["auto_approve_limit"] == "500000.00"
    assert detail["maker_checker_threshold"] == "200000.00"
    assert detail["time_zone"] == "Asia/Shanghai" and detail["currency"] == "CNY"
    assert detail["enterprise"]["id"] == book["program"].enterprise_id


def test_agent_sees_its_own_credit_line(agent_client, agent, line):
    set_balances(line, "300000.00", "8000.00")
    response = agent_client.get(f"/api/v1/agents/{agent.id}/credit-line/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["limit"], body["outstanding"], body["reserved"], body["available"]) == (
        "1000000.00",
        "300000.00",
        "8000.00",
        "692000.00",
    )
    assert (body["risk_grade"], body["frozen"], body["currency"]) == ("B", False, "CNY")
    assert body["program"] == line.program_id and body["frozen_reason"] is None


def test_agent_b_asking_for_agent_a_line_gets_404(enterprise, line):
    agent_b = AgentFactory(enterprises=[enterprise])
    CreditLineFactory(agent=agent_b, program=line.program)
    client = client_for(UserFactory(role="agent", agent=agent_b))
    assert client.get(f"/api/v1/agents/{line.agent_id}/credit-line/").status_code == 404
    assert client.get(f"/api/v1/agents/{agent_b.id}/credit-line/").status_code == 200


def test_enterprise_admins_see_lines_in_their_programs_only(line, enterprise_admin, reviewer):
    url = f"/api/v1/agents/{line.agent_id}/credit-line/"
    assert client_for(enterprise_admin).get(url).json()["id"] == line.id
    outsider = UserFactory(role="enterprise_admin", enterprise=EnterpriseFactory())
    assert client_for(outsider).get(url).status_code == 404
    assert client_for(reviewer).get(url).json()["id"] == line.id


def test_agent_with_lines_in_two_programs_picks_one_with_program_param(agent, line):
    second_enterprise = EnterpriseFactory()
    second = CreditLineFactory(
        agent=agent, program=ProgramFactory(enterprise=second_enterprise), limit=Decimal("5000.00")
    )
    client = client_for(UserFactory(role="agent", agent=agent))
    url = f"/api/v1/agents/{agent.id}/credit-line/"
    assert client.get(url).json()["program"] == line.program_id
    chosen = client.get(url, {"program": second.program_id}).json()
    assert (chosen["program"], chosen["limit"]) == (second.program_id, "5000.00")
    assert client.get(url, {"program": "abc"}).status_code == 422
    assert client.get(url, {"program": 999999}).status_code == 404
    # The second enterprise's admin sees only the line in its own program.
    admin_2 = UserFactory(role="enterprise_admin", enterprise=second_enterprise)
    assert client_for(admin_2).get(url).json()["program"] == second.program_id
    assert client_for(admin_2).get(url, {"program": line.program_id}).status_code == 404


def test_frozen_line_declines_finance_with_line_frozen_until_unfrozen(
    agent_client, agent, enterprise, order, line, reviewer
):
    staff = client_for(reviewer)
    base = f"/api/v1/agents/{agent.id}/credit-line"
    frozen = staff.post(f"{base}/freeze/", {"reason": "KYC refresh overdue"}, format="json")
    assert frozen.status_code == 200, frozen.content
    assert (frozen.json()["frozen"], frozen.json()["frozen_reason"]) == (
        True,
        "KYC refresh overdue",
    )
    declined = finance(agent_client, order.id, key="while-frozen").json()
    assert declined["decision"]["outcome"] == "declined"
    assert "line_frozen" in [r["code"] for r in declined["decision"]["reasons"]]
    assert CreditLine.objects.get(pk=line.pk).reserved == 0

    unfrozen = staff.post(f"{base}/unfreeze/", {"reason": "KYC done"}, format="json")
    assert unfrozen.status_code == 200 and unfrozen.json()["frozen"] is False
    later = OrderFactory(agent=agent, enterprise=enterprise)
    assert finance(agent_client, later.id, key="after").json()["decision"]["outcome"] == "approved"

    audit = list(
        AuditLog.objects.filter(object_type="lending.creditline", object_id=str(line.pk)).order_by(
            "id"
        )
    )
    assert [(row.action, row.actor_id, row.note) for row in audit] == [
        ("credit_line.freeze", reviewer.id, "KYC refresh overdue"),
        ("credit_line.unfreeze", reviewer.id, "KYC done"),
    ]
    assert audit[0].before == {"frozen": False, "frozen_reason": ""}
    assert audit[0].after == {"frozen": True, "frozen_reason": "KYC refresh overdue"}
    assert audit[1].after == {"frozen": False, "frozen_reason": ""}


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 501}])
def test_freeze_without_a_reason_is_422_and_changes_nothing(agent, line, reviewer, body):
    response = client_for(reviewer).post(
        f"/api/v1/agents/{agent.id}/credit-line/freeze/", body, format="json"
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert "reason" in response.json()["fields"]
    assert CreditLine.objects.get(pk=line.pk).frozen is False
    assert not AuditLog.objects.exists()


@pytest.mark.parametrize("role", ["risk_reviewer", "risk_approver", "ops_admin"])
def test_bank_staff_may_freeze(role, agent, line):
    client = client_for(UserFactory(role=role))
    url = f"/api/v1/agents/{agent.id}/credit-line/freeze/"
    assert client.post(url, {"reason": "watch list"}, format="json").status_code == 200
    again = client.post(url, {"reason": "watch list"}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "line_already_frozen")
    assert AuditLog.objects.filter(action="credit_line.freeze").count() == 1


def test_agents_and_enterprise_admins_may_not_freeze(agent_client, agent, line, enterprise_admin):
    url = f"/api/v1/agents/{agent.id}/credit-line/freeze/"
    assert agent_client.post(url, {"reason": "x"}, format="json").status_code == 403
    assert client_for(enterprise_admin).post(url, {"reason": "x"}, format="json").status_code == 403
    assert CreditLine.objects.get(pk=line.pk).frozen is False


def test_freeze_for_an_agent_without_a_line_is_404(enterprise, reviewer):
    lineless = AgentFactory(enterprises=[enterprise])
    response = client_for(reviewer).post(
        f"/api/v1/agents/{lineless.id}/credit-line/freeze/", {"reason": "x"}, format="json"
    )
    assert response.status_code == 404


def test_line_limit_below_utilisation_is_422_and_changes_nothing(line, ops_user):
    set_balances(line, "600000.00", "100000.00")
    with pytest.raises(ValidationFailed) as caught:
        credit_line_update(actor=ops_user, line=line, limit=Decimal("699999.99"), risk_grade="A")
    assert caught.value.code == "limit_below_utilisation"
    assert caught.value.status_code == 422 and "limit" in caught.value.fields
    line.refresh_from_db()
    assert (line.limit, line.risk_grade) == (Decimal("1000000.00"), "B")
    assert not AuditLog.objects.exists()
    # Exactly the utilisation is allowed: available becomes zero.
    updated = credit_line_update(actor=ops_user, line=line, limit=Decimal("700000.00"))
    assert updated.available == 0


def test_program_limit_below_utilisation_is_422_and_changes_nothing(program, ops_user):
    set_balances(program, "2000000.00", "500000.00")
    with pytest.raises(ValidationFailed) as caught:
        program_update(actor=ops_user, program=program, limit=Decimal("2499999.00"))
    assert caught.value.code == "limit_below_utilisation"
    assert Program.objects.get(pk=program.pk).limit == Decimal("10000000.00")
    assert not AuditLog.objects.exists()


def test_program_update_audits_old_and_new_values_of_changed_fields(program, ops_user):
    updated = program_update(
        actor=ops_user,
        program=program,
        limit="12000000.00",
        advance_rate=Decimal("0.7500"),
        refer_rules=["agent_overdue"],
        tenor_days=90,  # unchanged: not recorded
    )
    assert (updated.limit, updated.advance_rate) == (Decimal("12000000.00"), Decimal("0.7500"))
    row = AuditLog.objects.get()
    assert (row.action, row.actor_id, row.object_id) == (
        "program.update",
        ops_user.id,
        str(program.pk),
    )
    assert row.actor_label == f"ops_admin:{ops_user.username}"
    assert row.before == {"limit": "10000000.00", "advance_rate": "0.8000", "refer_rules": []}
    assert row.after == {
        "limit": "12000000.00",
        "advance_rate": "0.7500",
        "refer_rules": ["agent_overdue"],
    }
    stored = Program.objects.get(pk=program.pk)
    assert (stored.limit, stored.refer_rules) == (Decimal("12000000.00"), ["agent_overdue"])


def test_line_update_audits_old_and_new_values(line, ops_user):
    credit_line_update(actor=ops_user, line=line, limit=Decimal("250000.00"), risk_grade="D")
    row = AuditLog.objects.get()
    assert row.action == "credit_line.update"
    assert row.before == {"limit": "1000000.00", "risk_grade": "B"}
    assert row.after == {"limit": "250000.00", "risk_grade": "D"}
    # Nothing changed: nothing written.
    credit_line_update(actor=ops_user, line=line, limit=Decimal("250000.00"))
    assert AuditLog.objects.count() == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("advance_rate", Decimal("0")),
        ("advance_rate", Decimal("1.01")),
        ("advance_rate", 0.8),
        ("annual_rate", Decimal("-0.01")),
        ("penalty_rate", Decimal("1.5")),
        ("refer_rules", ["line_headroom"]),
        ("refer_rules", "order_too_old"),
        ("day_count", "30/360"),
        ("tenor_days", 0),
        ("time_zone", "Mars/Olympus"),
        ("currency", "USD"),
        ("outstanding_principal", Decimal("0")),
    ],
)
def test_program_update_rejects_out_of_range_or_unknown_values(program, ops_user, field, value):
    with pytest.raises(ValidationFailed) as caught:
        program_update(actor=ops_user, program=program, **{field: value})
    assert caught.value.status_code == 422 and field in caught.value.fields
    assert not AuditLog.objects.exists()


def test_min_principal_above_max_is_refused(program, ops_user):
    with pytest.raises(ValidationFailed) as caught:
        program_update(actor=ops_user, program=program, min_principal=Decimal("2000000.00"))
    assert "min_principal" in caught.value.fields


def test_credit_line_create_audits_and_refuses_duplicates_and_strangers(
    agent, program, ops_user, enterprise
):
    line = credit_line_create(
        actor=ops_user, agent=agent, program=program, limit="300000.00", risk_grade="B"
    )
    assert line.limit == Decimal("300000.00") and line.available == Decimal("300000.00")
    row = AuditLog.objects.get()
    assert (row.action, row.object_id) == ("credit_line.create", str(line.pk))
    assert row.after == {
        "agent": agent.code,
        "program": program.code,
        "limit": "300000.00",
        "risk_grade": "B",
    }
    with pytest.raises(Conflict) as duplicate:
        credit_line_create(
            actor=ops_user, agent=agent, program=program, limit="1.00", risk_grade="B"
        )
    assert duplicate.value.code == "credit_line_exists"
    stranger = AgentFactory()
    with pytest.raises(ValidationFailed) as refused:
        credit_line_create(
            actor=ops_user, agent=stranger, program=program, limit="1.00", risk_grade="B"
        )
    assert refused.value.code == "agent_not_with_enterprise"
    assert AuditLog.objects.count() == 1


def test_program_create_refuses_a_taken_code_and_missing_terms(program, ops_user):
    terms = {
        field: getattr(program, field)
        for field in ("name", "advance_rate", "limit", "max_principal", "annual_rate")
    }
    terms.update(
        penalty_rate=program.penalty_rate,
        auto_approve_limit=program.auto_approve_limit,
        maker_checker_threshold=program.maker_checker_threshold,
    )
    with pytest.raises(Conflict) as taken:
        program_create(
            actor=ops_user,
            bank=program.bank,
            enterprise=program.enterprise,
            code=program.code,
            **terms,
        )
    assert taken.value.code == "program_code_taken"
    with pytest.raises(ValidationFailed) as missing:
        program_create(actor=ops_user, bank=program.bank, enterprise=program.enterprise, code="X")
    assert set(missing.value.fields) >= {"name", "limit", "advance_rate"}
    assert Program.objects.count() == 1 and not AuditLog.objects.exists()


# --- Admin ---------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client: Any, db: Any) -> Any:
    superuser = User.objects.create_superuser("root-admin", "root@example.com", "pw-root-1")
    client.force_login(superuser)
    client.superuser = superuser
    return client


def test_admin_pages_load_for_an_ops_superuser(admin_client, book):
    program, a = book["program"], book["a"]
    loan = Loan.objects.filter(credit_line=a).first()
    Decision.objects.create(
        loan=loan, outcome="approved", engine_version="t", decided_at=NOW, inputs={"x": 1}
    )
    credit_line_freeze(actor=admin_client.superuser, line=a, reason="check")
    assert admin_client.superuser.role == "ops_admin"
    pages = [
        reverse("admin:lending_bank_changelist"),
        reverse("admin:lending_program_changelist"),
        reverse("admin:lending_program_add"),
        reverse("admin:lending_program_change", args=[program.pk]),
        reverse("admin:lending_creditline_changelist"),
        reverse("admin:lending_creditline_add"),
        reverse("admin:lending_creditline_change", args=[a.pk]),
        reverse("admin:lending_loan_changelist"),
        reverse("admin:lending_loan_change", args=[loan.pk]),
        reverse("admin:lending_decision_changelist"),
        reverse("admin:lending_review_changelist"),
        reverse("admin:lending_auditlog_changelist"),
        reverse("admin:lending_auditlog_change", args=[AuditLog.objects.first().pk]),
        reverse("admin:lending_journalentry_changelist"),
        reverse("admin:lending_journalline_changelist"),
    ]
    for url in pages:
        assert admin_client.get(url).status_code == 200, url
    assert b"decision" in admin_client.get(pages[8]).content.lower()
    # Read-only models: no add page, and the audit trail cannot be deleted.
    assert admin_client.get(reverse("admin:lending_auditlog_add")).status_code == 403
    assert admin_client.get(reverse("admin:lending_loan_add")).status_code == 403
    audit_id = AuditLog.objects.first().pk
    delete = reverse("admin:lending_auditlog_delete", args=[audit_id])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert AuditLog.objects.filter(pk=audit_id).exists()


def test_admin_line_change_goes_through_the_service_and_is_audited(admin_client, line):
    url = reverse("admin:lending_creditline_change", args=[line.pk])
    response = admin_client.post(url, {"limit": "400000.00", "risk_grade": "A", "_save": "Save"})
    assert response.status_code == 302, response.content[:2000]
    row = AuditLog.objects.get()
    assert (row.action, row.actor_id) == ("credit_line.update", admin_client.superuser.id)
    assert row.before == {"limit": "1000000.00", "risk_grade": "B"}
    assert row.after == {"limit": "400000.00", "risk_grade": "A"}


def test_admin_refuses_a_limit_below_utilisation_with_a_form_error(admin_client, line):
    set_balances(line, "500000.00", "0.00")
    url = reverse("admin:lending_creditline_change", args=[line.pk])
    response = admin_client.post(url, {"limit": "400000.00", "risk_grade": "B", "_save": "Save"})
    assert response.status_code == 200
    assert b"may not go below the utilisation" in response.content
    assert CreditLine.objects.get(pk=line.pk).limit == Decimal("1000000.00")
    assert not AuditLog.objects.exists()


def program_form(program: Program, **overrides: str) -> dict[str, str]:
    data = {
        field: str(getattr(program, field))
        for field in (
            "name",
            "status",
            "advance_rate",
            "limit",
            "min_principal",
            "max_principal",
            "tenor_days",
            "annual_rate",
            "day_count",
            "grace_days",
            "penalty_rate",
            "max_order_age_days",
            "max_dpd_tolerated",
            "auto_approve_limit",
            "auto_approve_grade",
            "maker_checker_threshold",
            "review_hold_hours",
            "time_zone",
            "holiday_country",
        )
    }
    data["refer_rules"] = "[]"
    data["_save"] = "Save"
    data.update(overrides)
    return data


def test_admin_program_change_is_audited_with_only_changed_fields(admin_client, program):
    url = reverse("admin:lending_program_change", args=[program.pk])
    data = program_form(program, annual_rate="0.060000", refer_rules='["order_too_old"]')
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content[:3000]
    row = AuditLog.objects.get()
    assert row.action == "program.update"
    assert row.before == {"annual_rate": "0.054000", "refer_rules": []}
    assert row.after == {"annual_rate": "0.060000", "refer_rules": ["order_too_old"]}


def test_admin_program_change_rejects_unknown_refer_rule(admin_client, program):
    url = reverse("admin:lending_program_change", args=[program.pk])
    response = admin_client.post(url, program_form(program, refer_rules='["no_such_rule"]'))
    assert response.status_code == 200 and b"Not referable" in response.content
    assert Program.objects.get(pk=program.pk).refer_rules == []
    assert not AuditLog.objects.exists()


def test_admin_reports_a_refusal_that_slipped_past_the_form(admin_client, line, monkeypatch):
    """A limit cut raced by an approval: the form saw room, the locked service does not."""
    monkeypatch.setattr("lending.admin.credit_line_validate", lambda **kwargs: kwargs["changes"])
    set_balances(line, "500000.00", "0.00")
    url = reverse("admin:lending_creditline_change", args=[line.pk])
    response = admin_client.post(
        url, {"limit": "400000.00", "risk_grade": "B", "_save": "Save"}, follow=True
    )
    assert response.redirect_chain == [(url, 302)]
    assert b"Not saved: The limit may not go below the utilisation" in response.content
    assert CreditLine.objects.get(pk=line.pk).limit == Decimal("1000000.00")
    assert not AuditLog.objects.exists()


def test_admin_creates_a_program_through_the_service(admin_client, program):
    data = program_form(program, name="Second program")
    data.update(
        bank=str(program.bank_id),
        enterprise=str(program.enterprise_id),
        code="PRG-NEW",
        currency="CNY",
    )
    response = admin_client.post(reverse("admin:lending_program_add"), data)
    assert response.status_code == 302, response.content[:3000]
    created = Program.objects.get(code="PRG-NEW")
    assert (created.name, created.limit) == ("Second program", program.limit)
    row = AuditLog.objects.get()
    assert (row.action, row.object_id) == ("program.create", str(created.pk))
    assert row.after["code"] == "PRG-NEW" and row.after["limit"] == "10000000.00"
    assert row.after["enterprise"] == program.enterprise.code


def test_admin_creates_a_line_through_the_service(admin_client, agent, program):
    response = admin_client.post(
        reverse("admin:lending_creditline_add"),
        {
            "agent": agent.pk,
            "program": program.pk,
            "limit": "150000.00",
            "risk_grade": "C",
            "_save": "Save",
        },
    )
    assert response.status_code == 302, response.content[:3000]
    line = CreditLine.objects.get(agent=agent, program=program)
    assert line.limit == Decimal("150000.00")
    row = AuditLog.objects.get()
    assert (row.action, row.object_id) == ("credit_line.create", str(line.pk))


def test_admin_freeze_action_freezes_with_the_given_reason_and_audits(admin_client, line):
    changelist = reverse("admin:lending_creditline_changelist")
    response = admin_client.post(
        changelist,
        {"action": "freeze_lines", "_selected_action": [line.pk], "reason": "fraud alert"},
    )
    assert response.status_code == 302
    stored = CreditLine.objects.get(pk=line.pk)
    assert (stored.frozen, stored.frozen_reason) == (True, "fraud alert")
    response = admin_client.post(
        changelist, {"action": "unfreeze_lines", "_selected_action": [line.pk], "reason": ""}
    )
    assert CreditLine.objects.get(pk=line.pk).frozen is False
    notes = list(AuditLog.objects.order_by("id").values_list("action", "note"))
    assert notes == [
        ("credit_line.freeze", "fraud alert"),
        ("credit_line.unfreeze", "Unfrozen in the admin by root-admin"),
    ]


# --- Query counts --------------------------------------------------------------------------


def add_agents(program: Program, enterprise: Any, count: int) -> None:
    for n in range(count):
        line = CreditLineFactory(program=program, agent=AgentFactory(enterprises=[enterprise]))
        make_loan(line, "overdue", "1000.00", outstanding="1000.00", dpd=n + 1, approved_at=NOW)
        make_loan(line, "approved", "2000.00", reserved="2000.00", approved_at=NOW)
        set_balances(line, "1000.00", "2000.00")


def count_queries(client: Any, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


def test_list_and_dashboard_queries_do_not_grow_with_agents_or_loans(
    enterprise, frozen_clock, enterprise_admin, django_assert_max_num_queries
):
    program = ProgramFactory(enterprise=enterprise)
    ProgramFactory(enterprise=enterprise)
    client = client_for(enterprise_admin)
    dashboard = f"/api/v1/programs/{program.id}/dashboard/"
    add_agents(program, enterprise, 3)
    small = (count_queries(client, "/api/v1/programs/"), count_queries(client, dashboard))
    add_agents(program, enterprise, 27)
    with django_assert_max_num_queries(4):
        listing = client.get("/api/v1/programs/")
    with django_assert_max_num_queries(5):
        body = client.get(dashboard).json()
    large = (count_queries(client, "/api/v1/programs/"), count_queries(client, dashboard))
    assert large == small
    assert len(body["agents"]) == 30 and body["overdue_total"]["count"] == 30
    assert listing.json()["results"][0]["agent_count"] == 30


# --- Locking (PostgreSQL) ------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_limit_cut_waits_for_a_reservation_in_flight_and_then_refuses(line):
    """The cut blocks on the line's row lock and then sees the reservation: a clean 422."""
    holding, release = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def reserve() -> None:
        try:
            with transaction.atomic():
                CreditLine.objects.select_for_update().get(pk=line.pk)
                line_reserve(line_id=line.pk, amount=Decimal("600000.00"))
                holding.set()
                release.wait(10)
        finally:
            connection.close()

    def cut() -> None:
        try:
            credit_line_update(actor=None, line=line, limit=Decimal("500000.00"))
            outcome["code"] = "saved"
        except ValidationFailed as exc:
            outcome["code"] = exc.code
        finally:
            connection.close()

    reserver = threading.Thread(target=reserve)
    reserver.start()
    assert holding.wait(10)
    cutter = threading.Thread(target=cut)
    cutter.start()
    time.sleep(0.5)
    assert cutter.is_alive(), "the limit change must wait for the row lock"
    release.set()
    reserver.join(10)
    cutter.join(10)
    assert outcome == {"code": "limit_below_utilisation"}
    stored = CreditLine.objects.get(pk=line.pk)
    assert (stored.limit, stored.reserved) == (Decimal("1000000.00"), Decimal("600000.00"))
