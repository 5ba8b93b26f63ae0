"""feed_orders against a live server: signed webhook events, counted replies, failures shown."""

from __future__ import annotations

import json
import re
import socket
from collections import Counter
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Sum

from orders.models import FeedEvent, SalesOrder

pytestmark = pytest.mark.django_db(transaction=True)

ENTERPRISE = "CE-TYJX"
# The SQLite test database lives in memory, and the live server shares that one connection with
# all of its request threads: concurrent requests would interleave their transactions. A file or
# PostgreSQL database (the demo, production) has a connection per thread.
CONCURRENCY = 4 if settings.IS_POSTGRES else 1


@pytest.fixture
def demo_file(tmp_path: Path) -> Path:
    path = tmp_path / "demo.json"
    call_command(
        "seed_demo",
        "--out",
        str(path),
        "--orders",
        "30",
        "--agents",
        "5",
        "--no-credit-history",  # the feed sends orders; the scoring history is test_demo's
        stdout=StringIO(),
    )
    return path


def feed(url: str, demo_file: Path, count: int, *extra: str) -> str:
    out = StringIO()
    try:
        call_command(
            "feed_orders",
            "--url",
            url,
            "--count",
            str(count),
            "--credentials",
            str(demo_file),
            *extra,
            stdout=out,
        )
    except CommandError as exc:
        raise CommandError(f"{exc}\n{out.getvalue()}") from exc
    return out.getvalue()


def reply_counts(output: str) -> dict[str, int]:
    return {m[1]: int(m[2]) for m in re.finditer(r"^  (\S+ [^:\n]+): (\d+)$", output, re.M)}


def test_feed_orders_pushes_new_orders_through_the_live_webhook(live_server, demo_file):
    before = SalesOrder.objects.count()
    output = feed(
        live_server.url,
        demo_file,
        40,
        "--enterprise",
        ENTERPRISE,
        "--concurrency",
        str(CONCURRENCY),
    )
    assert reply_counts(output) == {"200 applied": 40}
    assert re.search(rf"\(\d+\.\d orders/s, concurrency {CONCURRENCY}\)", output)
    assert SalesOrder.objects.count() == before + 40
    events = FeedEvent.objects.filter(channel="webhook")
    assert Counter(events.values_list("outcome", flat=True)) == {"applied": 40}
    assert len(set(events.values_list("event_id", flat=True))) == 40
    credentials = json.loads(demo_file.read_text(encoding="utf-8"))
    agents = {a["code"] for a in credentials["agents"] if ENTERPRISE in a["enterprise_codes"]}
    new = SalesOrder.objects.filter(external_id__in=events.values("external_id"))
    assert new.count() == 40
    assert set(new.values_list("enterprise__code", flat=True)) == {ENTERPRISE}
    assert set(new.values_list("agent__code", flat=True)) <= agents
    for order in new.annotate(line_total=Sum("lines__amount")):
        assert order.amount == order.line_total and order.status == "confirmed"


def test_a_second_run_sends_new_orders_not_duplicates(live_server, demo_file):
    feed(live_server.url, demo_file, 5, "--concurrency", "1")
    output = feed(live_server.url, demo_file, 5, "--concurrency", str(CONCURRENCY))
    assert reply_counts(output) == {"200 applied": 5}
    assert FeedEvent.objects.filter(channel="webhook", outcome="applied").count() == 10


def test_rejected_replies_are_counted_printed_and_fail_the_command(live_server, demo_file):
    credentials: dict[str, Any] = json.loads(demo_file.read_text(encoding="utf-8"))
    credentials["enterprises"][0]["webhook_secret"] = "whsec_wrong"
    demo_file.write_text(json.dumps(credentials), encoding="utf-8")
    before = SalesOrder.objects.count()
    with pytest.raises(CommandError) as failure:
        feed(live_server.url, demo_file, 3, "--concurrency", str(CONCURRENCY))
    text = str(failure.value)
    assert "3 of 3 orders were not accepted" in text
    assert reply_counts(text) == {"401 invalid_signature": 3}
    assert "order #1: 401 invalid_signature" in text
    assert SalesOrder.objects.count() == before


def test_an_unreachable_server_is_reported_not_raised_per_request(demo_file):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(CommandError, match="2 of 2 orders were not accepted") as failure:
        feed(f"http://127.0.0.1:{port}", demo_file, 2, "--timeout", "2")
    assert reply_counts(str(failure.value)) == {"no reply ConnectionError": 2}


def test_an_unknown_enterprise_is_refused(demo_file):
    with pytest.raises(CommandError, match="No enterprise CE-NOPE"):
        feed("http://127.0.0.1:1", demo_file, 1, "--enterprise", "CE-NOPE")
