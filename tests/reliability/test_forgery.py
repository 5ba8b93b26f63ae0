"""Scenario 11, forgery and replay on the signed order webhook: 401, and not one row written.

"0 writes" is measured by PostgreSQL itself: ``pg_stat_xact_user_tables`` counts every tuple the
current transaction inserted, updated or deleted (even in a savepoint rolled back), in every
table. The test runs in one transaction, so the counter before and after a request is the
request's writes. A valid request moves it (the positive control), a forged one must not.

Tried: a forged signature, a missing signature header, an empty one, one without ``sha256=``,
no timestamp, a non-numeric timestamp, the right enterprise signed with another enterprise's
secret, another enterprise's code with a good signature, timestamps 301 s old and ahead, the
body changed after signing, the same JSON re-serialised (the HMAC covers the raw bytes), and a
valid request replayed (inside the window: the duplicate is acknowledged and writes no order;
after it: 401). Every refusal is the same 401 body, so a caller learns nothing about why. The
signature is compared in constant time: ``hmac.compare_digest`` is what decides (a spy sees it),
and no ``==``/``!=`` touches the signature in the module's source.
"""

from __future__ import annotations

import ast
import inspect
import json
import time
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
from django.db import connection
from rest_framework.test import APIClient

from integrations.feed import signing
from integrations.feed.signing import sign
from orders.models import FeedEvent, SalesOrder
from tests.integrations.feed_helpers import WEBHOOK, event
from tests.orders.factories import EnterpriseFactory, order_payload

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

REFUSAL = {
    "code": "invalid_signature",
    "detail": "Missing or invalid signature, or timestamp outside the allowed window.",
    "fields": {},
}


def writes() -> int:
    """Tuples this transaction has inserted, updated or deleted so far, in every table."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(SUM(n_tup_ins + n_tup_upd + n_tup_del), 0) "
            "FROM pg_stat_xact_user_tables"
        )
        return int(cursor.fetchone()[0])


def post(raw: bytes, headers: dict[str, str]) -> Any:
    meta = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    return APIClient().post(WEBHOOK, data=raw, content_type="application/json", **meta)


def signed(enterprise: Any, raw: bytes, *, ts: int | None = None, secret: str = "") -> dict:
    ts = int(time.time()) if ts is None else ts
    return {
        "X-SCF-Enterprise": enterprise.code,
        "X-SCF-Timestamp": str(ts),
        "X-SCF-Signature": sign(secret or enterprise.plain_webhook_secret, ts, raw),
    }


def _raw(agent: Any, event_id: str = "evt-forge", external_id: str = "SO-F", **order: Any) -> bytes:
    payload = order_payload(agent.code, external_id=external_id, **order)
    return json.dumps(event(payload, event_id)).encode()


def _forgeries(enterprise: Any, agent: Any) -> dict[str, tuple[bytes, dict[str, str]]]:
    raw = _raw(agent)
    now = int(time.time())
    good = signed(enterprise, raw)
    other = EnterpriseFactory()
    tampered = raw.replace(b'"10000.00"', b'"90000.00"')
    assert tampered != raw
    reserialised = json.dumps(json.loads(raw), indent=1).encode()  # same JSON, other bytes
    return {
        "forged-hex": (raw, {**good, "X-SCF-Signature": "sha256=" + "ab" * 32}),
        "no-signature-header": (raw, {k: v for k, v in good.items() if k != "X-SCF-Signature"}),
        "empty-signature": (raw, {**good, "X-SCF-Signature": ""}),
        "no-prefix": (raw, {**good, "X-SCF-Signature": good["X-SCF-Signature"][7:]}),
        "no-timestamp": (raw, {k: v for k, v in good.items() if k != "X-SCF-Timestamp"}),
        "timestamp-not-a-number": (raw, {**good, "X-SCF-Timestamp": "yesterday"}),
        "other-enterprises-secret": (
            raw,
            signed(enterprise, raw, secret=other.plain_webhook_secret),
        ),
        "other-enterprises-code": (raw, {**good, "X-SCF-Enterprise": other.code}),
        "301-seconds-old": (raw, signed(enterprise, raw, ts=now - 301)),
        "301-seconds-ahead": (raw, signed(enterprise, raw, ts=now + 301)),
        "signed-timestamp-swapped": (raw, {**good, "X-SCF-Timestamp": str(now - 1)}),
        "body-changed-after-signing": (tampered, good),
        "json-reserialised": (reserialised, good),
    }


FORGERIES = [
    "forged-hex",
    "no-signature-header",
    "empty-signature",
    "no-prefix",
    "no-timestamp",
    "timestamp-not-a-number",
    "other-enterprises-secret",
    "other-enterprises-code",
    "301-seconds-old",
    "301-seconds-ahead",
    "signed-timestamp-swapped",
    "body-changed-after-signing",
    "json-reserialised",
]


@pytest.mark.parametrize("name", FORGERIES)
def test_forged_request_is_401_and_writes_nothing(enterprise, agent, name, caplog):
    raw, headers = _forgeries(enterprise, agent)[name]
    before = writes()
    response = post(raw, headers)
    assert response.status_code == 401, response.content
    assert response.json() == REFUSAL
    assert writes() == before
    assert SalesOrder.objects.count() == 0 and FeedEvent.objects.count() == 0
    signature = headers.get("X-SCF-Signature", "")
    logged = caplog.text
    assert enterprise.plain_webhook_secret not in logged
    assert not signature or signature not in logged


def test_the_same_request_signed_properly_writes(enterprise, agent):
    """Positive control: the counter moves for a real write, and raw bytes of any layout are
    accepted when they are what was signed."""
    raw = json.dumps(json.loads(_raw(agent)), indent=1).encode()
    before = writes()
    response = post(raw, signed(enterprise, raw))
    assert response.status_code == 200, response.content
    assert writes() > before
    assert SalesOrder.objects.filter(external_id="SO-F").count() == 1


def test_replay_inside_the_window_writes_no_order_and_after_it_is_401(enterprise, agent):
    raw = _raw(agent, "evt-replay", amount="10000.00")
    headers = signed(enterprise, raw)
    assert post(raw, headers).json() == {"status": "applied"}
    order = SalesOrder.objects.get(external_id="SO-F")
    snapshot = (order.amount, order.version, order.updated_at)

    replayed = post(raw, headers)
    assert (replayed.status_code, replayed.json()) == (200, {"status": "duplicate"})
    assert SalesOrder.objects.count() == 1

    later = SimpleNamespace(time=lambda: int(headers["X-SCF-Timestamp"]) + 301)
    before = writes()
    with mock.patch.object(signing, "time", later):
        late = post(raw, headers)
    assert (late.status_code, late.json()) == (401, REFUSAL)
    assert writes() == before
    order.refresh_from_db()
    assert (order.amount, order.version, order.updated_at) == snapshot
    assert FeedEvent.objects.filter(event_id="evt-replay").count() == 2  # applied + duplicate


def test_signature_is_checked_by_hmac_compare_digest(enterprise, agent):
    raw = _raw(agent)
    headers = {**signed(enterprise, raw), "X-SCF-Signature": "sha256=" + "0" * 64}
    with mock.patch.object(
        signing.hmac, "compare_digest", wraps=signing.hmac.compare_digest
    ) as spy:
        assert post(raw, headers).status_code == 401
        assert post(raw, signed(enterprise, raw)).status_code == 200
    assert spy.call_count == 2
    forged_call = spy.call_args_list[0].args
    assert b"0" * 64 in forged_call[1]
    expected = sign(enterprise.plain_webhook_secret, headers["X-SCF-Timestamp"], raw)
    assert forged_call[0] == expected.encode()
    # The decision is compare_digest's: were it to say "equal", a forged signature would pass.
    other = _raw(agent, "evt-forge-2", external_id="SO-F2")
    forged = {**signed(enterprise, other), "X-SCF-Signature": "sha256=" + "0" * 64}
    with mock.patch.object(signing.hmac, "compare_digest", return_value=True):
        assert post(other, forged).json() == {"status": "applied"}


def test_no_ordinary_comparison_touches_a_signature_in_the_signing_module():
    tree = ast.parse(inspect.getsource(signing))
    suspicious = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(
            isinstance(op, ast.Eq | ast.NotEq | ast.Is | ast.IsNot) for op in node.ops
        ):
            names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            if names & {"signature", "expected", "digest"}:
                suspicious.append(ast.unparse(node))
    assert suspicious == []
    calls = [
        ast.unparse(n.func)
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
    ]
    assert "hmac.compare_digest" in calls
