"""Tripartite terms and agreements through the API: who may read and write them, maker-checker
on caps and ratios, and the audit trail of every change."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from lending.models import Agreement, AuditLog, TermsChange, TripartiteTerms
from tests.conftest import client_for
from tests.lending.factories import ProgramFactory
from tests.lending.tripartite_world import World, agent_under, today, world
from tests.orders.factories import AgentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def w(enterprise: Any) -> World:
    return world(enterprise)


def actions(obj: Any) -> list[str]:
    rows = AuditLog.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk))
    return sorted(rows.values_list("action", flat=True))


def test_operations_set_up_terms_once_and_the_enterprise_reads_them(enterprise: Any) -> None:
    program = ProgramFactory(enterprise=enterprise)
    ops = client_for(UserFactory(role="ops_admin"))
    body = {"enabled": True, "margin_ratio": "0.3", "program_cap": "5000000.00"}
    reply = ops.post(f"/api/v1/programs/{program.pk}/tripartite/", body, format="json")
    assert reply.status_code == 201, reply.content
    assert reply.json()["margin_ratio"] == "0.3000" and reply.json()["guarantee_type"] == "buyback"
    again = ops.post(f"/api/v1/programs/{program.pk}/tripartite/", body, format="json")
    assert again.status_code == 409 and again.json()["code"] == "tripartite_terms_exist"
    admin = client_for(UserFactory(role="enterprise_admin", enterprise=enterprise))
    assert admin.get(f"/api/v1/programs/{program.pk}/tripartite/").json()["enabled"] is True
    terms = TripartiteTerms.objects.get(program=program)
    assert actions(terms) == ["tripartite_terms.create"]


def test_bad_terms_are_refused_with_field_errors_and_nothing_written(enterprise: Any) -> None:
    program = ProgramFactory(enterprise=enterprise)
    ops = client_for(UserFactory(role="ops_admin"))
    body = {"margin_ratio": "1.0", "trigger_dpd": 0, "enabled": "yes", "colour": "red"}
    reply = ops.post(f"/api/v1/programs/{program.pk}/tripartite/", body, format="json")
    assert reply.status_code == 422
    assert set(reply.json()["fields"]) == {"margin_ratio", "trigger_dpd", "enabled", "colour"}
    assert not TripartiteTerms.objects.exists()


def test_caps_and_ratios_cannot_be_patched_directly(w: World) -> None:
    ops = client_for(w.ops)
    url = f"/api/v1/programs/{w.program.pk}/tripartite/"
    reply = ops.patch(url, {"margin_ratio": "0.2"}, format="json")
    assert reply.status_code == 422 and "margin_ratio" in reply.json()["fields"]
    reply = ops.patch(url, {"trigger_dpd": 90}, format="json")
    assert reply.status_code == 200 and reply.json()["trigger_dpd"] == 90
    w.terms.refresh_from_db()
    assert w.terms.margin_ratio == D("0.3000") and w.terms.version == 2


def test_a_ratio_change_needs_a_second_person(w: World) -> None:
    body = {"program": w.program.pk, "changes": {"margin_ratio": "0.25"}, "reason": "new policy"}
    proposed = client_for(w.ops).post("/api/v1/terms-changes/", body, format="json")
    assert proposed.status_code == 201, proposed.content
    change_id = proposed.json()["id"]
    assert proposed.json()["before"] == {"margin_ratio": "0.3000"}
    same = client_for(w.ops).post(f"/api/v1/terms-changes/{change_id}/approve/", {}, format="json")
    assert same.status_code == 409 and same.json()["code"] == "maker_checker_same_user"
    w.terms.refresh_from_db()
    assert w.terms.margin_ratio == D("0.3000")
    agent = client_for(UserFactory(role="agent", agent=w.agent))
    assert agent.post(f"/api/v1/terms-changes/{change_id}/approve/", {}).status_code == 403
    done = client_for(w.ops2).post(f"/api/v1/terms-changes/{change_id}/approve/", {}, format="json")
    assert done.status_code == 200 and done.json()["status"] == "approved"
    w.terms.refresh_from_db()
    assert w.terms.margin_ratio == D("0.2500") and w.terms.version == 2
    change = TermsChange.objects.get(pk=change_id)
    assert actions(change) == ["terms_change.approve", "terms_change.propose"]
    again = client_for(w.ops2).post(f"/api/v1/terms-changes/{change_id}/approve/", {})
    assert again.status_code == 409 and again.json()["code"] == "terms_change_closed"


def test_a_cap_is_never_cut_below_its_usage_and_a_stale_change_is_refused(w: World) -> None:
    Agreement.objects.filter(pk=w.agreement.pk).update(agent_cap_used=D("600000.00"))
    body = {
        "program": w.program.pk,
        "agreement": w.agreement.pk,
        "changes": {"agent_cap": "500000.00"},
    }
    change = client_for(w.ops).post("/api/v1/terms-changes/", body, format="json").json()
    reply = client_for(w.ops2).post(f"/api/v1/terms-changes/{change['id']}/approve/", {})
    assert reply.status_code == 409 and reply.json()["code"] == "cap_below_usage"
    client_for(w.ops2).post(
        f"/api/v1/terms-changes/{change['id']}/reject/", {"reason": "too low"}, format="json"
    )
    body = {"program": w.program.pk, "changes": {"program_cap": "2000000.00"}}
    change = client_for(w.ops).post("/api/v1/terms-changes/", body, format="json").json()
    TripartiteTerms.objects.filter(pk=w.terms.pk).update(program_cap=D("3000000.00"))
    reply = client_for(w.ops2).post(f"/api/v1/terms-changes/{change['id']}/approve/", {})
    assert reply.status_code == 409 and reply.json()["code"] == "terms_change_stale"
    assert Agreement.objects.get(pk=w.agreement.pk).agent_cap == D("1000000.00")


def test_agreements_are_signed_by_operations_and_read_by_their_parties(w: World) -> None:
    other, *_ = agent_under(w.program)
    Agreement.objects.filter(agent=other).delete()
    ops = client_for(w.ops)
    url = f"/api/v1/programs/{w.program.pk}/agreements/"
    body = {"agent": other.pk, "signed_on": str(today(w.program)), "agent_cap": "300000.00"}
    signed = ops.post(url, body, format="json")
    assert signed.status_code == 201, signed.content
    assert signed.json()["version"] == 1 and signed.json()["agent_cap"] == "300000.00"
    resigned = ops.post(url, {**body, "agent_cap": "400000.00"}, format="json")
    assert resigned.status_code == 409 and resigned.json()["code"] == "agreement_cap_change"
    resigned = ops.post(url, {k: v for k, v in body.items() if k != "agent_cap"}, format="json")
    assert resigned.status_code == 201 and resigned.json()["version"] == 2
    assert Agreement.objects.get(pk=signed.json()["id"]).status == "superseded"
    assert len(ops.get(url).json()["results"]) == 3
    mine = client_for(UserFactory(role="agent", agent=other))
    assert {row["agent"] for row in mine.get(url).json()["results"]} == {other.pk}
    assert mine.get(f"/api/v1/agreements/{w.agreement.pk}/").status_code == 404
    assert mine.post(url, body, format="json").status_code == 403
    admin = client_for(UserFactory(role="enterprise_admin", enterprise=w.program.enterprise))
    assert admin.get(f"/api/v1/agreements/{w.agreement.pk}/").status_code == 200
    assert actions(Agreement.objects.get(pk=resigned.json()["id"])) == ["agreement.sign"]


def test_an_agreement_for_an_agent_of_another_enterprise_is_refused(w: World) -> None:
    outsider = AgentFactory()
    body = {"agent": outsider.pk, "signed_on": str(today(w.program)), "agent_cap": "1.00"}
    reply = client_for(w.ops).post(
        f"/api/v1/programs/{w.program.pk}/agreements/", body, format="json"
    )
    assert reply.status_code == 422 and "agent" in reply.json()["fields"]
    assert not Agreement.objects.filter(agent=outsider).exists()
