"""Order ingestion: the one service behind the webhook, the bulk API, CSV upload and the pull feed.

Design:
- ``order_parse`` (parse.py) validates shapes and money without the database.
- ``orders_ingest`` resolves agents in one query and writes every order of a batch with one
  ``INSERT ... ON CONFLICT (enterprise, external_id) DO UPDATE ... WHERE stored.version <
  new.version RETURNING``: a newer version replaces the row, an older or equal one changes nothing
  (stale), and concurrent writers of one order serialise on its row. Lines of applied orders are
  replaced set-based. No ``save()`` per row.
- ``order_event_ingest`` (``ingest_event.py``) wraps one webhook event around the same write.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from scf.errors import ApplicationError, ValidationFailed
from scf.sql import copy_rows, delete_in, insert_rows

from ..models import (
    AgentRelationship,
    CoreEnterprise,
    FeedEvent,
    FeedOutcome,
    SalesOrder,
    SalesOrderLine,
)
from .parse import (
    OrderInput,
    OrderInvalid,
    batch_size_check,
    latest_order_date,
    order_parse,
    payload_lines,
)

ORDER_COLUMNS = (
    "enterprise_id",
    "agent_id",
    "external_id",
    "amount",
    "currency",
    "status",
    "order_date",
    "version",
    "raw_payload",
    "created_at",
    "updated_at",
)
LINE_COLUMNS = (
    "order_id",
    "line_no",
    "sku",
    "quantity",
    "unit_price",
    "amount",
    "shipped_quantity",
)
_UPDATED = [c for c in ORDER_COLUMNS if c not in ("enterprise_id", "external_id", "created_at")]


@dataclass
class RowError:
    row: int
    external_id: str
    fields: dict[str, list[str]]

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "external_id": self.external_id, "fields": self.fields}


@dataclass
class IngestResult:
    created: int = 0
    updated: int = 0
    stale: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)
    # (order id, status) of every order this batch created or changed.
    applied: list[tuple[int, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "created": self.created,
            "updated": self.updated,
            "stale": self.stale,
            "rejected": self.rejected,
        }


class EnterpriseMismatch(ApplicationError):
    code = "enterprise_mismatch"
    status_code = 403


class BatchRejected(ValidationFailed):
    """An all-or-nothing batch had invalid rows; nothing was written."""

    code = "invalid_orders"

    def __init__(self, errors: list[RowError], total: int) -> None:
        rows = ", ".join(str(e.row) for e in errors[:20])
        super().__init__(
            f"{len(errors)} of {total} orders are invalid (rows {rows}); nothing was written.",
            extra={"errors": [e.as_dict() for e in errors]},
        )
        self.errors = errors


def orders_parse(
    enterprise: CoreEnterprise, payloads: Sequence[object], *, atomic: bool = True
) -> tuple[list[tuple[int, OrderInput]], list[RowError]]:
    """Validate a batch: field checks, the enterprise it is for, and that each agent buys from it.

    A row for another enterprise is refused outright (403) in an all-or-nothing batch; in a
    partial one (the pull feed) it is one more rejected row.
    """
    valid: list[tuple[int, OrderInput]] = []
    errors: list[RowError] = []
    latest = latest_order_date()
    for row, payload in enumerate(payloads):
        try:
            order = order_parse(payload, latest_date=latest)
        except OrderInvalid as exc:
            external_id = payload.get("external_id") if isinstance(payload, dict) else None
            errors.append(RowError(row, str(external_id or ""), exc.fields))
            continue
        if order.enterprise_code is not None and order.enterprise_code != enterprise.code:
            mismatch = {"enterprise_code": ["Orders can only be sent for your own enterprise."]}
            if atomic:
                raise EnterpriseMismatch(
                    f"Row {row} is for enterprise {order.enterprise_code!r}; this key belongs to "
                    f"{enterprise.code!r}.",
                    fields=mismatch,
                )
            errors.append(RowError(row, order.external_id, mismatch))
            continue
        valid.append((row, order))
    agent_ids = agents_by_code(enterprise, {order.agent_code for _, order in valid})
    known: list[tuple[int, OrderInput]] = []
    for row, order in valid:
        if order.agent_code in agent_ids:
            known.append((row, order))
        else:
            errors.append(
                RowError(
                    row,
                    order.external_id,
                    {"agent_code": [f"Unknown agent {order.agent_code!r} for this enterprise."]},
                )
            )
    errors.sort(key=lambda e: e.row)
    return known, errors


def agents_by_code(enterprise: CoreEnterprise, codes: set[str]) -> dict[str, int]:
    if not codes:
        return {}
    rows = AgentRelationship.objects.filter(
        enterprise=enterprise, active=True, agent__code__in=codes
    ).values_list("agent__code", "agent_id")
    return dict(rows)


def _latest_per_external_id(
    orders: list[tuple[int, OrderInput]],
) -> tuple[list[OrderInput], int]:
    """Keep the highest version of each external id within one batch; the rest are stale."""
    latest: dict[str, OrderInput] = {}
    for _, order in orders:
        seen = latest.get(order.external_id)
        if seen is None or order.version > seen.version:
            latest[order.external_id] = order
    return list(latest.values()), len(orders) - len(latest)


def orders_ingest(
    *,
    enterprise: CoreEnterprise,
    payloads: Sequence[object],
    channel: str,
    atomic: bool = True,
    event_id: str = "",
) -> IngestResult:
    """Ingest a batch of orders for one enterprise and record it in the feed log.

    ``atomic=True`` (the default for the bulk API and CSV): any invalid row rejects the whole
    batch with ``BatchRejected`` and nothing is written but the feed log entry. ``atomic=False``
    (the pull feed): valid rows are applied, invalid ones are reported in the result. A batch
    past the caps on orders or lines (``batch_size_check``) is refused whole before anything
    else (422 ``too_many_orders`` or ``too_many_lines``).
    """
    batch_size_check(orders=len(payloads), lines=sum(payload_lines(p) for p in payloads))
    orders, errors = orders_parse(enterprise, payloads, atomic=atomic)
    if errors and atomic:
        _log_batch(
            enterprise,
            channel,
            event_id,
            len(payloads),
            IngestResult(rejected=len(payloads), errors=errors),
        )
        raise BatchRejected(errors, len(payloads))
    with transaction.atomic():
        result = orders_write(enterprise, orders)
        result.rejected = len(errors)
        result.errors = errors
        _log_batch(enterprise, channel, event_id, len(payloads), result)
    return result


def _log_batch(
    enterprise: CoreEnterprise, channel: str, event_id: str, total: int, result: IngestResult
) -> None:
    if result.rejected and not (result.created or result.updated or result.stale):
        outcome = FeedOutcome.REJECTED
    else:
        outcome = FeedOutcome.APPLIED
    FeedEvent.objects.create(
        enterprise=enterprise,
        channel=channel,
        event_id="",
        event_type=f"batch:{event_id}"[:32] if event_id else "batch",
        outcome=outcome,
        error_code="invalid_orders" if result.errors else "",
        detail=f"{result.rejected} of {total} rows rejected" if result.errors else "",
        row_count=total,
        counts=result.counts(),
        errors=[e.as_dict() for e in result.errors[:1000]],
    )


COPY_THRESHOLD = 200  # rows; below this a multi-row INSERT is as fast and simpler


def orders_write(enterprise: CoreEnterprise, parsed: list[tuple[int, OrderInput]]) -> IngestResult:
    orders, stale_in_batch = _latest_per_external_id(parsed)
    result = IngestResult(stale=stale_in_batch)
    if not orders:
        return result
    agent_ids = agents_by_code(enterprise, {o.agent_code for o in orders})
    rows = _order_rows(enterprise, orders, agent_ids)
    bulk = connection.vendor == "postgresql" and len(rows) >= COPY_THRESHOLD
    returned = _upsert_copy(rows) if bulk else _upsert_values(rows)
    ids = {external_id: pk for pk, external_id, _ in returned}
    # Orders that existed before this statement had lines: those are replaced. Decided by the
    # upsert itself (not a lookup before it), so a concurrent first insert cannot be missed.
    replaced = [pk for pk, _, inserted in returned if not inserted]
    by_external = {o.external_id: o for o in orders}
    result.updated = len(replaced)
    result.created = len(ids) - result.updated
    result.stale += len(orders) - len(ids)
    result.applied = [(pk, by_external[e].status) for e, pk in ids.items()]
    _replace_lines(ids, by_external, replaced=replaced, bulk=bulk)
    return result


def _order_rows(
    enterprise: CoreEnterprise, orders: list[OrderInput], agent_ids: dict[str, int]
) -> list[tuple[Any, ...]]:
    ops = connection.ops
    now = ops.adapt_datetimefield_value(timezone.now())
    return [
        (
            enterprise.pk,
            agent_ids[o.agent_code],
            o.external_id,
            ops.adapt_decimalfield_value(o.amount, 18, 2),
            o.currency,
            o.status,
            ops.adapt_datefield_value(o.order_date),
            o.version,
            json.dumps(o.raw, separators=(",", ":"), ensure_ascii=False, default=str),
            now,
            now,
        )
        for o in orders
    ]


def _upsert_suffix(table: str) -> str:
    """``ON CONFLICT ... DO UPDATE ... WHERE newer RETURNING id, external_id, inserted?``.

    "Inserted" on PostgreSQL: a freshly inserted tuple has ``xmax = 0``. SQLite serialises
    writers, so there it cannot race and is read off the row's own timestamps.
    """
    qn = connection.ops.quote_name
    update_sql = ", ".join(f"{qn(c)} = excluded.{qn(c)}" for c in _UPDATED)
    inserted = "(xmax = 0)" if connection.vendor == "postgresql" else "(created_at = updated_at)"
    return (
        f"ON CONFLICT ({qn('enterprise_id')}, {qn('external_id')}) DO UPDATE SET {update_sql} "
        f"WHERE {qn(table)}.{qn('version')} < excluded.{qn('version')} "
        f"RETURNING {qn('id')}, {qn('external_id')}, {inserted}"
    )


def _upsert_values(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    table = SalesOrder._meta.db_table
    return insert_rows(table, ORDER_COLUMNS, rows, suffix=_upsert_suffix(table))


def _upsert_copy(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """PostgreSQL, large batches: COPY into a session temp table, then one upsert from it."""
    table = SalesOrder._meta.db_table
    columns = ", ".join(ORDER_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS scf_ingest_orders ON COMMIT DELETE ROWS AS "  # noqa: S608
            f"SELECT {columns} FROM {table} WITH NO DATA"
        )
    copy_rows("scf_ingest_orders", ORDER_COLUMNS, rows)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM scf_ingest_orders "  # noqa: S608
            + _upsert_suffix(table)
        )
        returned = cursor.fetchall()
        cursor.execute("TRUNCATE scf_ingest_orders")
    return returned


def _replace_lines(
    ids: dict[str, int], orders: dict[str, OrderInput], *, replaced: list[int], bulk: bool
) -> None:
    ops = connection.ops
    delete_in(SalesOrderLine._meta.db_table, "order_id", replaced)
    rows = [
        (
            pk,
            line_no,
            line.sku,
            ops.adapt_decimalfield_value(line.quantity, 18, 4),
            ops.adapt_decimalfield_value(line.unit_price, 18, 2),
            ops.adapt_decimalfield_value(line.amount, 18, 2),
            None
            if line.shipped_quantity is None
            else ops.adapt_decimalfield_value(line.shipped_quantity, 18, 4),
        )
        for external_id, pk in ids.items()
        for line_no, line in enumerate(orders[external_id].lines, start=1)
    ]
    if bulk:
        copy_rows(SalesOrderLine._meta.db_table, LINE_COLUMNS, rows)
    else:
        insert_rows(SalesOrderLine._meta.db_table, LINE_COLUMNS, rows)


__all__ = ["BatchRejected", "EnterpriseMismatch", "IngestResult", "orders_ingest"]
