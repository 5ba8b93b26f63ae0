"""Helpers to call the order feed as a sales system would."""

from __future__ import annotations

import json
import time
from typing import Any

from rest_framework.test import APIClient

from integrations.feed.signing import sign

WEBHOOK = "/api/v1/integrations/orders/webhook/"
BULK = "/api/v1/integrations/orders/bulk/"


def event(order: dict[str, Any], event_id: str, type_: str = "order.upserted") -> dict[str, Any]:
    return {"event_id": event_id, "type": type_, "order": order}


def post_signed(
    client: APIClient,
    enterprise: Any,
    body: bytes | dict[str, Any],
    *,
    secret: str | None = None,
    timestamp: int | None = None,
    code: str | None = None,
    signature: str | None = None,
) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    ts = int(time.time()) if timestamp is None else timestamp
    headers = {
        "HTTP_X_SCF_ENTERPRISE": code if code is not None else enterprise.code,
        "HTTP_X_SCF_TIMESTAMP": str(ts),
        "HTTP_X_SCF_SIGNATURE": signature
        if signature is not None
        else sign(secret or enterprise.plain_webhook_secret, ts, raw),
    }
    return client.post(WEBHOOK, data=raw, content_type="application/json", **headers)


def post_bulk(client: APIClient, api_key: str, body: Any) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(
        BULK, data=raw, content_type="application/json", HTTP_AUTHORIZATION=f"Api-Key {api_key}"
    )
