"""Secrets are never logged: keys, webhook secrets, signatures, tokens, passwords.

The calls below run with every logger at DEBUG, through the handler and filters that
``settings.LOGGING`` configures, and the captured output is searched for each secret.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from integrations.feed.signing import sign
from scf.logging import REDACTED, JsonFormatter, RedactSecretsFilter, redact_text
from tests.integrations.feed_helpers import WEBHOOK, event, post_bulk
from tests.lending.factories import CreditLineFactory, ProgramFactory
from tests.orders.factories import AgentFactory, OrderFactory, UserFactory, order_payload

PASSWORD = "pw-for-tests-1"


def console_handler() -> logging.StreamHandler[Any]:
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and any(
            isinstance(f, RedactSecretsFilter) for f in handler.filters
        ):
            return handler
    raise AssertionError("the console handler with the redaction filter is not configured")


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Everything the configured console handler writes, with all loggers at DEBUG."""
    handler = console_handler()
    buffer = io.StringIO()
    old_stream = handler.setStream(buffer)
    names = [*logging.root.manager.loggerDict, "factory"]
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in names)]
    levels = {lg: lg.level for lg in loggers}
    for lg in loggers:
        if lg.name == "factory" or lg.name.startswith("factory."):
            # factory_boy (test tooling, not the app) logs the password it sets on test users.
            lg.setLevel(logging.INFO)
        elif lg.name != "django.db.backends":  # SQL is off by configuration
            lg.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        for lg, level in levels.items():
            lg.setLevel(level)
        handler.setStream(old_stream)  # type: ignore[arg-type]


def drive_everything(enterprise: Any, agent: Any) -> list[str]:
    """Webhook (good and forged), bulk (good and bad key), sign-in, token call: their secrets."""
    api = APIClient()
    secret = enterprise.plain_webhook_secret
    api_key = enterprise.plain_api_key
    body = json.dumps(event(order_payload(agent.code, external_id="SO-LOG-1"), "evt-log-1"))
    ts = int(time.time())
    signature = sign(secret, ts, body.encode())
    ok = api.post(
        WEBHOOK,
        data=body,
        content_type="application/json",
        HTTP_X_SCF_ENTERPRISE=enterprise.code,
        HTTP_X_SCF_TIMESTAMP=str(ts),
        HTTP_X_SCF_SIGNATURE=signature,
    )
    assert ok.status_code == 200, ok.content
    forged_signature = sign("whsec_forged-secret-value-123", ts, body.encode())
    forged = api.post(
        WEBHOOK,
        data=body,
        content_type="application/json",
        HTTP_X_SCF_ENTERPRISE=enterprise.code,
        HTTP_X_SCF_TIMESTAMP=str(ts),
        HTTP_X_SCF_SIGNATURE=forged_signature,
    )
    assert forged.status_code == 401

    bulk = post_bulk(api, api_key, {"orders": [order_payload(agent.code, external_id="SO-LOG-2")]})
    assert bulk.status_code == 200, bulk.content
    wrong_key = "sk_wrong-integration-key-0123456789"
    assert post_bulk(api, wrong_key, {"orders": []}).status_code == 401

    user = UserFactory(role="agent", agent=agent)
    web = Client()
    bad_password = "Not-The-Password-42!"
    assert web.post("/accounts/login/", {"username": user.username, "password": bad_password})
    signed_in = web.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert signed_in.status_code == 302
    session_id = web.cookies["sessionid"].value

    token = Token.objects.create(user=user).key
    order = OrderFactory(agent=agent, enterprise=enterprise)
    tokened = APIClient()
    tokened.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    finance = tokened.post(
        f"/api/v1/orders/{order.pk}/finance/", {}, format="json", HTTP_IDEMPOTENCY_KEY="log-1"
    )
    assert finance.status_code == 201, finance.content
    return [
        secret,
        signature.removeprefix("sha256="),
        forged_signature.removeprefix("sha256="),
        api_key,
        wrong_key,
        PASSWORD,
        bad_password,
        session_id,
        token,
    ]


@pytest.mark.django_db
def test_no_secret_reaches_the_log_from_webhook_bulk_login_and_token_calls(
    captured: io.StringIO,
) -> None:
    program = ProgramFactory()
    enterprise = program.enterprise
    agent = AgentFactory(enterprises=[enterprise])
    CreditLineFactory(agent=agent, program=program)
    secrets = drive_everything(enterprise, agent)

    # A careless line of the kind that leaks: the filter must catch it too.
    logging.getLogger("scf.careless").debug(
        "incoming %s password=%s",
        {"Authorization": f"Api-Key {secrets[3]}", "X-SCF-Signature": f"sha256={secrets[1]}"},
        secrets[5],
        extra={"headers": {"X-Api-Key": secrets[3], "Cookie": f"sessionid={secrets[7]}"}},
    )

    output = captured.getvalue()
    assert "order webhook rejected" in output  # the capture does see the calls' logs
    assert "Unauthorized" in output  # django.request's warning for the 401s
    assert REDACTED in output
    for secret in secrets:
        assert len(secret) >= 8
        assert secret not in output, f"a secret was logged: {secret[:4]}..."


def test_redaction_of_header_and_field_shapes() -> None:
    samples = {
        "Authorization: Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b": "9944b091",
        "Authorization: Api-Key sk_live_abcdef123456": "sk_live",
        "X-SCF-Signature: sha256=" + "ab" * 32: "abab",
        '{"webhook_secret": "whsec_123456789"}': "whsec",
        "password=hunter2-is-long&next=/": "hunter2",
        "'api_key': 'k-0123456789'": "k-0123",
        "Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig": "eyJhbGci",
    }
    for text, secret in samples.items():
        redacted = redact_text(text)
        assert secret not in redacted, text
        assert REDACTED in redacted
    assert redact_text("financed order SO-1 for 800.00 CNY") == "financed order SO-1 for 800.00 CNY"


def test_json_lines_carry_redacted_extras() -> None:
    record = logging.LogRecord("scf.x", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    record.headers = {"Authorization": "Token abcdef0123456789", "Accept": "application/json"}
    record.api_key = "sk_0123456789"
    RedactSecretsFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "hello world"
    assert line["headers"] == {"Authorization": REDACTED, "Accept": "application/json"}
    assert line["api_key"] == REDACTED
