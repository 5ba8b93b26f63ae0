"""The back office's tripartite pages write through the services: terms set up (audited), caps
and ratios only proposed there and approved by another person with the list's action."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest
from django.test import Client

from lending.models import AuditLog, TermsChange, TripartiteTerms
from tests.lending.factories import ProgramFactory
from tests.lending.tripartite_world import World, world
from tests.orders.factories import UserFactory

pytestmark = pytest.mark.django_db


def staff() -> Any:
    client = Client()
    client.force_login(UserFactory(role="ops_admin", is_staff=True, is_superuser=True))
    return client


def test_terms_are_set_up_in_the_back_office_and_audited(enterprise: Any) -> None:
    program = ProgramFactory(enterprise=enterprise)
    form = {
        "program": program.pk,
        "enabled": "on",
        "guarantee_type": "buyback",
        "trigger_dpd": "60",
        "claim_window_days": "30",
        "margin_ratio": "0.3000",
        "security_ratio": "0.0000",
        "program_cap": "1000000.00",
        "margin_withdraw_approval_threshold": "50000.00",
    }
    reply = staff().post("/admin/lending/tripartiteterms/add/", form)
    assert reply.status_code == 302, reply.content[:2000]
    terms = TripartiteTerms.objects.get(program=program)
    assert terms.margin_ratio == D("0.3000") and terms.enabled
    assert AuditLog.objects.filter(action="tripartite_terms.create").count() == 1


def test_a_change_proposed_in_the_back_office_is_approved_by_another_person(
    enterprise: Any,
) -> None:
    w: World = world(enterprise)
    maker, checker = staff(), staff()
    form = {"program": w.program.pk, "changes": '{"margin_ratio": "0.25"}', "reason": "policy"}
    assert maker.post("/admin/lending/termschange/add/", form).status_code == 302
    change = TermsChange.objects.get()
    action = {"action": "approve", "_selected_action": [change.pk]}
    maker.post("/admin/lending/termschange/", action)
    w.terms.refresh_from_db()
    assert w.terms.margin_ratio == D("0.3000")  # the proposer cannot approve it
    checker.post("/admin/lending/termschange/", action)
    w.terms.refresh_from_db()
    assert w.terms.margin_ratio == D("0.2500")
    assert TermsChange.objects.get().status == "approved"
