"""The order feed's log over the API: the events, newest first, and the feed's health.

Enterprise admins read their own enterprise's events; ops admins those of the enterprises their
bank has a program with (all of them in the list, one named by code for the health).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from orders.models import FeedChannel, FeedEvent, FeedOutcome
from tests.conftest import client_for
from tests.lending.factories import BankFactory, ProgramFactory
from tests.orders.factories import EnterpriseFactory, UserFactory

pytestmark = pytest.mark.django_db

EVENTS_URL = "/api/v1/integrations/orders/events/"
HEALTH_URL = "/api/v1/integrations/orders/health/"


def event(enterprise: Any, outcome: str, hours_ago: float, **kw: Any) -> FeedEvent:
    row = FeedEvent.objects.create(
        enterprise=enterprise,
        channel=kw.pop("channel", FeedChannel.WEBHOOK),
        outcome=outcome,
        event_id=kw.pop("event_id", ""),
        **kw,
    )
    at = timezone.now() - dt.timedelta(hours=hours_ago)
    FeedEvent.objects.filter(pk=row.pk).update(received_at=at)
    row.received_at = at
    return row


@pytest.fixture
def log(enterprise: Any) -> dict[str, Any]:
    other = EnterpriseFactory()
    # Both work with the ops admins' bank; a third only with another bank.
    ProgramFactory(enterprise=enterprise)
    ProgramFactory(enterprise=other)
    foreign = EnterpriseFactory()
    ProgramFactory(enterprise=foreign, bank=BankFactory(code="BANK-2", name="Other Bank"))
    event(foreign, FeedOutcome.APPLIED, 0.05, event_id="f1")
    rows = {
        "applied_old": event(enterprise, FeedOutcome.APPLIED, 30, event_id="e1"),
        "applied": event(enterprise, FeedOutcome.APPLIED, 2, event_id="e2"),
        "duplicate": event(enterprise, FeedOutcome.DUPLICATE, 1, event_id="e2"),
        "rejected_old": event(enterprise, FeedOutcome.REJECTED, 40, error_code="bad_amount"),
        "rejected": event(
            enterprise, FeedOutcome.REJECTED, 0.5, channel=FeedChannel.BULK, error_code="x"
        ),
        "elsewhere": event(other, FeedOutcome.APPLIED, 0.1, event_id="o1"),
    }
    return {"enterprise": enterprise, "other": other, "foreign": foreign, **rows}


def test_an_enterprise_admin_reads_its_own_events_newest_first(
    enterprise_admin: Any, log: dict[str, Any]
) -> None:
    reply = client_for(enterprise_admin).get(EVENTS_URL)
    assert reply.status_code == 200
    ids = [row["id"] for row in reply.json()["results"]]
    names = ["rejected", "duplicate", "applied", "applied_old", "rejected_old"]
    assert ids == [log[name].pk for name in names]
    assert {row["enterprise"] for row in reply.json()["results"]} == {log["enterprise"].code}


def test_the_events_filter_by_outcome_and_channel(
    enterprise_admin: Any, log: dict[str, Any]
) -> None:
    client = client_for(enterprise_admin)
    rejected = client.get(EVENTS_URL, {"outcome": "rejected"}).json()["results"]
    assert [row["id"] for row in rejected] == [log["rejected"].pk, log["rejected_old"].pk]
    bulk = client.get(EVENTS_URL, {"outcome": "rejected", "channel": "bulk"}).json()["results"]
    assert [row["id"] for row in bulk] == [log["rejected"].pk]
    refused = client.get(EVENTS_URL, {"outcome": "lost"})
    assert refused.status_code == 422
    assert refused.json()["fields"] == {"outcome": ["Unknown value."]}


def test_an_ops_admin_reads_every_enterprise_or_one_by_code(
    ops_user: Any, log: dict[str, Any]
) -> None:
    client = client_for(ops_user)
    everyone = client.get(EVENTS_URL).json()
    assert everyone["count"] == 6
    assert everyone["results"][0]["id"] == log["elsewhere"].pk
    one = client.get(EVENTS_URL, {"enterprise": log["other"].code}).json()["results"]
    assert [row["id"] for row in one] == [log["elsewhere"].pk]
    # An enterprise that works only with another bank is not this bank's to read.
    assert client.get(EVENTS_URL, {"enterprise": log["foreign"].code}).json()["count"] == 0


def test_the_health_gives_the_last_events_the_day_by_outcome_and_the_latest_rejections(
    enterprise_admin: Any, log: dict[str, Any]
) -> None:
    reply = client_for(enterprise_admin).get(HEALTH_URL)
    assert reply.status_code == 200
    health = reply.json()
    assert list(health) == [
        "last_event_at",
        "last_applied_at",
        "last_24h_applied",
        "last_24h_duplicate",
        "last_24h_stale",
        "last_24h_rejected",
        "recent_rejections",
    ]
    parse = dt.datetime.fromisoformat
    assert parse(health["last_event_at"]) == log["rejected"].received_at
    assert parse(health["last_applied_at"]) == log["applied"].received_at
    counts = [health[f"last_24h_{o}"] for o in ("applied", "duplicate", "stale", "rejected")]
    assert counts == [1, 1, 0, 1]
    rejections = health["recent_rejections"]
    assert [row["id"] for row in rejections] == [log["rejected"].pk, log["rejected_old"].pk]
    assert rejections[0]["enterprise"] == log["enterprise"].code


def test_the_health_keeps_the_ten_latest_rejections(enterprise_admin: Any, enterprise: Any) -> None:
    rows = [event(enterprise, FeedOutcome.REJECTED, hours) for hours in range(1, 13)]
    health = client_for(enterprise_admin).get(HEALTH_URL).json()
    assert [row["id"] for row in health["recent_rejections"]] == [row.pk for row in rows[:10]]


def test_an_ops_admin_names_the_enterprise_for_its_health(
    ops_user: Any, log: dict[str, Any]
) -> None:
    client = client_for(ops_user)
    assert client.get(HEALTH_URL).status_code == 404
    health = client.get(HEALTH_URL, {"enterprise": log["other"].code}).json()
    assert health["last_24h_applied"] == 1
    assert health["recent_rejections"] == []
    foreign = client.get(HEALTH_URL, {"enterprise": log["foreign"].code}).json()
    assert foreign["last_24h_applied"] == 0
    refused = client.get(HEALTH_URL, {"enterprise": "a\x00"})
    assert refused.status_code == 422


def test_other_roles_may_not_read_the_feed_log(log: dict[str, Any]) -> None:
    reviewer = client_for(UserFactory(role="risk_reviewer"))
    assert reviewer.get(EVENTS_URL).status_code == 403
    assert reviewer.get(HEALTH_URL).status_code == 403
