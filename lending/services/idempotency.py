"""Idempotency-Key handling: the first reply is stored and replayed for the same key and body.

The key is claimed with ``INSERT ... ON CONFLICT DO NOTHING``: a concurrent request with the same
key waits on the unique index until the first commits, then finds its stored reply. A key reused
with another body is refused with 422 ``idempotency_key_reused``.

Records are kept ``IDEMPOTENCY_RETENTION_DAYS`` (beat runs ``idempotency_records_purge`` daily).

Replies are byte-identical, not just equal: PostgreSQL's ``jsonb`` does not keep the order of an
object's keys, so the first reply and every replay put their keys in one canonical (sorted) order.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.db import connection
from django.utils import timezone

from scf.errors import ValidationFailed
from scf.hotpath import execute_prepared

from ..models import IdempotencyRecord

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class StoredReply:
    status: int
    body: dict[str, Any]


class IdempotencyKeyReused(ValidationFailed):
    code = "idempotency_key_reused"


def canonical(value: Any) -> Any:
    """``value`` with every object's keys in sorted order (lists keep theirs)."""
    if isinstance(value, dict):
        return {str(k): canonical(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [canonical(item) for item in value]
    return value


def request_fingerprint(scope: str, body: Any) -> str:
    text = json.dumps([scope, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@lru_cache(maxsize=1)
def _claim_sql() -> str:
    qn = connection.ops.quote_name
    columns = ", ".join(qn(c) for c in ("user_id", "key", "scope", "request_hash", "created_at"))
    return (
        f"INSERT INTO {qn(IdempotencyRecord._meta.db_table)} ({columns}) "  # noqa: S608 - names from code
        "VALUES (%s, %s, %s, %s, %s) "
        f"ON CONFLICT ({qn('user_id')}, {qn('key')}) DO NOTHING RETURNING {qn('id')}"
    )


def idempotency_claim(
    *, user_id: int, key: str, scope: str, fingerprint: str
) -> tuple[int | None, StoredReply | None]:
    """Claim ``key`` for this request, inside the caller's transaction.

    Returns ``(record_id, None)`` when this request is the first (the caller must store its reply
    in the same transaction: ``idempotency_store``, or ``idempotency_store_sql`` as a member of
    its own write statement), or ``(None, reply)`` to replay.
    """
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationFailed(
            "Idempotency-Key must be 1 to 255 printable characters.",
            code="invalid_idempotency_key",
            fields={"Idempotency-Key": ["1 to 255 printable characters."]},
        )
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        execute_prepared(cursor, _claim_sql(), [user_id, key, scope, fingerprint, now])
        inserted = cursor.fetchone()
    if inserted:
        return int(inserted[0]), None
    record = IdempotencyRecord.objects.get(user_id=user_id, key=key)
    if record.request_hash != fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used for a different request.",
            fields={"Idempotency-Key": ["Already used with another request body."]},
        )
    assert record.response_status is not None and record.response_body is not None
    return None, StoredReply(record.response_status, canonical(record.response_body))


@lru_cache(maxsize=1)
def _store_sql() -> str:
    qn = connection.ops.quote_name
    meta = IdempotencyRecord._meta
    status, body = meta.get_field("response_status").column, meta.get_field("response_body").column
    return (
        f"UPDATE {qn(meta.db_table)} SET {qn(status)} = %s, {qn(body)} = %s "  # noqa: S608 - names from code
        f"WHERE {qn('id')} = %s"
    )


def idempotency_store_sql(
    *, record_id: int, reply: StoredReply, after: str | None = None
) -> tuple[str, list[Any]]:
    """The UPDATE that stores ``reply`` on the claimed record, with its parameters (the body as
    the JSON field saves it). With ``after`` (a ``WITH`` member's name) it applies only when that
    member returned a row, so that a finance statement that wrote nothing stores nothing."""
    body_field = IdempotencyRecord._meta.get_field("response_body")
    body = body_field.get_db_prep_save(reply.body, connection)
    # ``after`` is a member name from code, never input.
    guard = f" AND EXISTS (SELECT 1 FROM {after}) RETURNING 1" if after else ""  # noqa: S608
    sql = _store_sql() + guard
    return sql, [reply.status, body, record_id]


def idempotency_store(*, record_id: int, reply: StoredReply) -> None:
    """Store the reply on the claimed record (one UPDATE)."""
    sql, params = idempotency_store_sql(record_id=record_id, reply=reply)
    with connection.cursor() as cursor:
        execute_prepared(cursor, sql, params)


def idempotency_records_purge(*, created_before: dt.datetime, batch: int = 5000) -> int:
    """Delete the records created before ``created_before``; returns how many.

    Past the retention period a client no longer retries, and the table would otherwise grow by
    one row per click forever. Oldest first, ``batch`` rows per statement, each its own short
    transaction (not one long one over the whole purge), found through the primary key: ids
    grow with ``created_at``, so the oldest rows come first in the key's order and the purge
    needs no index of its own on the hot insert path. A key purged and sent again is a new
    request: a finance click on an order already financed is then a 409, never a second loan."""
    deleted = 0
    while True:
        ids = list(
            IdempotencyRecord.objects.filter(created_at__lt=created_before)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch]
        )
        if not ids:
            return deleted
        deleted += IdempotencyRecord.objects.filter(pk__in=ids).delete()[0]
