"""Idempotency-Key handling: the first reply is stored and replayed for the same key and body.

The key is claimed with ``INSERT ... ON CONFLICT DO NOTHING``: a concurrent request with the same
key waits on the unique index until the first commits, then finds its stored reply. A key reused
with another body is refused with 422 ``idempotency_key_reused``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from scf.errors import ValidationFailed
from scf.sql import insert_rows

from ..models import IdempotencyRecord

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class StoredReply:
    status: int
    body: dict[str, Any]


class IdempotencyKeyReused(ValidationFailed):
    code = "idempotency_key_reused"


def request_fingerprint(scope: str, body: Any) -> str:
    canonical = json.dumps([scope, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotency_claim(
    *, user_id: int, key: str, scope: str, fingerprint: str
) -> tuple[int | None, StoredReply | None]:
    """Claim ``key`` for this request, inside the caller's transaction.

    Returns ``(record_id, None)`` when this request is the first (the caller must store its reply
    with ``idempotency_store`` in the same transaction), or ``(None, reply)`` to replay.
    """
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValidationFailed(
            "Idempotency-Key must be 1 to 255 characters.",
            code="invalid_idempotency_key",
            fields={"Idempotency-Key": ["1 to 255 characters."]},
        )
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    inserted = insert_rows(
        IdempotencyRecord._meta.db_table,
        ("user_id", "key", "scope", "request_hash", "created_at"),
        [(user_id, key, scope, fingerprint, now)],
        suffix='ON CONFLICT ("user_id", "key") DO NOTHING RETURNING "id"',
    )
    if inserted:
        return int(inserted[0][0]), None
    record = IdempotencyRecord.objects.get(user_id=user_id, key=key)
    if record.request_hash != fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used for a different request.",
            fields={"Idempotency-Key": ["Already used with another request body."]},
        )
    assert record.response_status is not None and record.response_body is not None
    return None, StoredReply(record.response_status, record.response_body)


def idempotency_store(*, record_id: int, reply: StoredReply) -> None:
    IdempotencyRecord.objects.filter(pk=record_id).update(
        response_status=reply.status, response_body=reply.body
    )


def idempotent(
    *, user_id: int, key: str, scope: str, fingerprint: str, run: Callable[[], StoredReply]
) -> StoredReply:
    """Run ``run`` once per (user, key): first call runs and stores, later calls replay.

    ``run`` must do its writes in its own atomic block and turn domain errors into a reply, so
    that a failed attempt leaves nothing but its stored reply behind.
    """
    with transaction.atomic():
        record_id, replay = idempotency_claim(
            user_id=user_id, key=key, scope=scope, fingerprint=fingerprint
        )
        if replay is not None:
            return replay
        assert record_id is not None
        reply = run()
        idempotency_store(record_id=record_id, reply=reply)
    return reply
