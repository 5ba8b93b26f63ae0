"""Deeply nested JSON and oversized bodies: a 400 or 413 in the API's error shape, never a 500.

A body of 50,000 ``[`` used to raise ``RecursionError`` inside the JSON parser: an HTML 500
and a logged traceback on the webhook, the bulk endpoint and every JSON endpoint. The parser
now refuses nesting past ``API_JSON_MAX_DEPTH`` before it recurses, and each endpoint refuses
a body above its byte cap (``API_MAX_BODY_BYTES``, or the endpoint's own) before reading it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from orders.models import FeedEvent, SalesOrder
from scf.errors import ApplicationError
from tests.conftest import client_for
from tests.integrations.feed_helpers import BULK, event, post_bulk, post_signed
from tests.orders.factories import OrderFactory, order_payload
from tests.security.test_idor import api_endpoints
from tests.security.world import ROLES, seed_world

DEEP = b"[" * 50_000
CSV_URL = "/api/v1/integrations/orders/csv/"


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) >= {"code", "detail", "fields"} and body["code"] == code, body
    return body


def nested(depth: int, inner: str = "1") -> bytes:
    return ("[" * depth + inner + "]" * depth).encode()


def server_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


# --- the parser -------------------------------------------------------------------------------


def test_nesting_up_to_the_cap_parses_and_one_level_more_is_refused(settings: Any) -> None:
    from scf.parsers import json_parse

    cap = settings.API_JSON_MAX_DEPTH
    assert 8 <= cap <= 100
    assert json_parse(nested(cap)) == json.loads(nested(cap))
    deep_objects = ('{"a":' * cap + "1" + "}" * cap).encode()
    assert json_parse(deep_objects) == json.loads(deep_objects)
    for body in (nested(cap + 1), ('{"a":' * (cap + 1) + "1" + "}" * (cap + 1)).encode(), DEEP):
        with pytest.raises(ApplicationError) as refused:
            json_parse(body)
        assert (refused.value.code, refused.value.status_code) == ("json_too_deep", 400)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    from scf.parsers import json_parse

    text = "[" * 5000 + '\\"{' * 100 + "]" * 7
    body = json.dumps({"sku": text, "lines": [{"sku": "]]]"}]}).encode()
    assert json_parse(body) == json.loads(body)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


TRICKY_TEXT = st.text(alphabet='[]{}"\\ab\n\u005b', max_size=8)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | TRICKY_TEXT,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(TRICKY_TEXT, children, max_size=3)
    ),
    max_leaves=30,
)


@hypothesis_settings(max_examples=300, deadline=None, derandomize=True)
@given(value=JSON_VALUES, cap=st.integers(min_value=0, max_value=6))
def test_the_depth_scan_agrees_with_the_parsed_value(value: Any, cap: int) -> None:
    """Whatever strings hold (brackets, quotes, backslashes, escapes), a body is refused exactly
    when its value is nested deeper than the cap."""
    from scf.parsers import json_parse

    for body in (json.dumps(value).encode(), json.dumps(value, ensure_ascii=False).encode()):
        if _depth(value) <= cap:
            assert json_parse(body, max_depth=cap) == value
        else:
            with pytest.raises(ApplicationError) as refused:
                json_parse(body, max_depth=cap)
            assert refused.value.code == "json_too_deep"


def test_unbalanced_or_cut_off_deep_bodies_are_malformed_without_recursing() -> None:
    from scf.parsers import json_parse

    for body in (b"[" * 50_000 + b"}", DEEP + b'"', b'["' + b"[" * 50_000, b"{" * 50_000 + b"]"):
        with pytest.raises(ApplicationError) as refused:
            json_parse(body)
        assert refused.value.status_code == 400
        assert refused.value.code in ("malformed_json", "json_too_deep")


# --- the order feed ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_deeply_nested_signed_webhook_is_400_and_writes_nothing(
    enterprise: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    response = post_signed(APIClient(), enterprise, DEEP)
    assert_error(response, 400, "json_too_deep")
    assert not SalesOrder.objects.exists() and not FeedEvent.objects.exists()
    assert server_errors(caplog) == []


@pytest.mark.django_db
def test_deeply_nested_bulk_is_400_and_writes_nothing(
    enterprise: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    for body in (DEEP, b'{"orders": ' + DEEP):
        assert_error(post_bulk(APIClient(), enterprise.plain_api_key, body), 400, "json_too_deep")
    assert not SalesOrder.objects.exists() and not FeedEvent.objects.exists()
    assert server_errors(caplog) == []


@pytest.mark.django_db
def test_an_order_nested_within_the_cap_still_goes_through(enterprise: Any, agent: Any) -> None:
    order = order_payload(agent.code, external_id="SO-DEEP-OK")
    response = post_signed(APIClient(), enterprise, event(order, "evt-deep-ok"))
    assert response.status_code == 200, response.content
    assert SalesOrder.objects.filter(external_id="SO-DEEP-OK").exists()


# --- every JSON endpoint ----------------------------------------------------------------------


@pytest.mark.django_db
def test_no_endpoint_answers_a_deeply_nested_body_with_a_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every write route of the URL conf, as every role, with its own objects' ids."""
    caplog.set_level(logging.WARNING)
    world = seed_world()
    own = {
        "order_id": world.a.orders["confirmed"].pk,
        "loan_id": world.a.loans["active"].pk,
        "review_id": world.a.review.pk,
        "program_id": world.a.program.pk,
        "agent_id": world.a.agent.pk,
        "proposal_id": 1,
        "agreement_id": 1,
        "change_id": 1,
        "withdrawal_id": 1,
        "claim_id": 1,
        "breach_id": 1,
        "credit_id": 1,  # no unapplied credit exists: a 404 (or 403) before the body matters
    }
    sent = refused = 0
    faults: list[str] = []
    for role in ROLES:
        client = client_for(world.user_for(role))
        for endpoint in api_endpoints():
            if endpoint.method == "get":
                continue
            path = "/" + endpoint.route
            for param in endpoint.params:
                path = path.replace(f"<int:{param}>", str(own[param]))
            response = getattr(client, endpoint.method)(
                path, DEEP, content_type="application/json", HTTP_IDEMPOTENCY_KEY=f"deep-{sent}"
            )
            sent += 1
            content_type = response.get("Content-Type", "")
            body = response.json() if content_type.startswith("application/json") else {}
            if response.status_code >= 500 or set(body) < {"code", "detail", "fields"}:
                faults.append(f"{role} {endpoint.method.upper()} {path}: {response.status_code}")
            refused += body.get("code") == "json_too_deep"
    assert faults == []
    assert server_errors(caplog) == []
    # The rest are refused earlier (401, 403, 415) or never read a body (quote); the feed's own
    # doors, which need a signature or an integration key, have their tests above.
    assert sent >= 70 and refused >= 20, (sent, refused)


def test_a_drf_json_endpoint_refuses_a_deep_body_with_the_error_shape(
    agent_client: Any, agent: Any, enterprise: Any
) -> None:
    order = OrderFactory(agent=agent, enterprise=enterprise)
    response = agent_client.post(
        f"/api/v1/orders/{order.pk}/finance/",
        DEEP,
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="deep-finance",
    )
    assert_error(response, 400, "json_too_deep")
    assert not order.loans.exists()


# --- bytes per endpoint -----------------------------------------------------------------------


def padded(body: dict[str, Any], size: int) -> bytes:
    """``body`` as JSON, padded with spaces to ``size`` bytes."""
    raw = json.dumps(body).encode()
    return raw + b" " * (size - len(raw))


@pytest.mark.django_db
def test_a_webhook_body_over_the_default_cap_is_413_before_it_is_read(
    enterprise: Any, agent: Any, settings: Any
) -> None:
    settings.API_MAX_BODY_BYTES = 4096
    order = order_payload(agent.code, external_id="SO-BIG")
    ok = post_signed(APIClient(), enterprise, padded(event(order, "evt-fits"), 4096))
    assert ok.status_code == 200, ok.content
    big = post_signed(APIClient(), enterprise, padded(event(order, "evt-big"), 4097))
    assert_error(big, 413, "request_too_large")
    assert FeedEvent.objects.filter(event_id="evt-big").count() == 0


@pytest.mark.django_db
def test_bulk_has_its_own_larger_cap(enterprise: Any, agent: Any, settings: Any) -> None:
    settings.API_MAX_BODY_BYTES = 4096
    settings.ORDER_BULK_MAX_BYTES = 16384
    orders = [order_payload(agent.code, external_id=f"SO-B{i}") for i in range(3)]
    ok = post_bulk(APIClient(), enterprise.plain_api_key, padded({"orders": orders}, 16384))
    assert ok.status_code == 200, ok.content
    big = post_bulk(APIClient(), enterprise.plain_api_key, padded({"orders": orders}, 16385))
    assert_error(big, 413, "request_too_large")


@pytest.mark.django_db
def test_the_csv_upload_has_its_own_cap(enterprise_admin: Any, settings: Any) -> None:
    settings.ORDER_CSV_MAX_BYTES = 2048
    client = client_for(enterprise_admin)
    upload = SimpleUploadedFile("orders.csv", b"x" * 4096, "text/csv")
    response = client.post(CSV_URL, {"file": upload}, format="multipart")
    assert_error(response, 413, "request_too_large")


def test_a_token_api_call_over_the_default_cap_is_413(
    agent_client: Any, agent: Any, enterprise: Any, settings: Any
) -> None:
    settings.API_MAX_BODY_BYTES = 1024
    order = OrderFactory(agent=agent, enterprise=enterprise)
    response = agent_client.post(
        f"/api/v1/orders/{order.pk}/finance/",
        padded({}, 1025),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="big-finance",
    )
    assert_error(response, 413, "request_too_large")
    assert not order.loans.exists()


def test_the_default_caps_fit_what_the_endpoints_take(settings: Any) -> None:
    """A largest legitimate webhook event (one order of 1,000 lines with 64-character SKUs)
    fits the default cap; the bulk and CSV caps are larger than the default."""
    lines = [{"sku": "S" * 64, "quantity": "9999.9999", "unit_price": "999999999.99"}] * 1000
    order = {**order_payload("A" * 64, external_id="E" * 64), "lines": lines}
    assert len(json.dumps(event(order, "e" * 128)).encode()) < settings.API_MAX_BODY_BYTES
    assert settings.ORDER_BULK_MAX_BYTES > settings.API_MAX_BODY_BYTES
    assert settings.ORDER_CSV_MAX_BYTES > settings.API_MAX_BODY_BYTES
    assert BULK  # the bulk endpoint is the one with ORDER_BULK_MAX_BYTES


@pytest.mark.django_db
def test_the_schema_documents_413_on_every_operation_that_takes_a_body() -> None:
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    operations = [
        (path, method, operation)
        for path, item in schema.json()["paths"].items()
        for method, operation in item.items()
        if "requestBody" in operation
    ]
    assert len(operations) >= 10
    for path, method, operation in operations:
        assert "413" in operation["responses"], f"{method.upper()} {path}"
