"""Set-based writes that work on PostgreSQL and SQLite alike: multi-row INSERT in chunks.

Django's ``bulk_create`` cannot express ``ON CONFLICT ... DO UPDATE ... WHERE``, which is how the
order feed applies a newer version and leaves an older one alone in a single statement.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, cast

from django.db import connection
from django.db.models import Field, Model

POSTGRES_ROWS_PER_STATEMENT = 2000


def rows_per_statement(columns: int) -> int:
    max_params = connection.features.max_query_params
    if max_params:
        return max(1, max_params // columns)
    return POSTGRES_ROWS_PER_STATEMENT


def chunks(rows: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def insert_rows(
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    suffix: str = "",
) -> list[tuple[Any, ...]]:
    """INSERT ``rows`` into ``table`` in as few statements as the backend allows.

    ``suffix`` is appended to every statement (``ON CONFLICT ...``, ``RETURNING ...``); when it
    contains ``RETURNING`` the returned rows of all chunks are collected and returned.
    """
    if not rows:
        return []
    qn = connection.ops.quote_name
    column_sql = ", ".join(qn(c) for c in columns)
    placeholder = "(" + ", ".join(["%s"] * len(columns)) + ")"
    returned: list[tuple[Any, ...]] = []
    with connection.cursor() as cursor:
        for chunk in chunks(rows, rows_per_statement(len(columns))):
            sql = (
                f"INSERT INTO {qn(table)} ({column_sql}) VALUES "  # noqa: S608 - names from code
                + ", ".join([placeholder] * len(chunk))
                + (" " + suffix if suffix else "")
            )
            params = [value for row in chunk for value in row]
            cursor.execute(sql, params)
            if "RETURNING" in suffix.upper():
                returned.extend(cursor.fetchall())
    return returned


def delete_in(table: str, column: str, values: Sequence[Any]) -> None:
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        for chunk in chunks(values, rows_per_statement(1)):
            marks = ", ".join(["%s"] * len(chunk))
            sql = f"DELETE FROM {qn(table)} WHERE {qn(column)} IN ({marks})"  # noqa: S608
            cursor.execute(sql, list(chunk))


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value).translate(_COPY_ESCAPES)


def copy_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """PostgreSQL only: load rows with ``COPY ... FROM STDIN`` (text format), the fastest path.

    Values go as text: Decimals and ints via ``str``, dates ISO 8601, ``None`` as NULL; tabs,
    newlines and backslashes are escaped.
    """
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join(_copy_text(v) for v in row))
        buffer.write("\n")
    buffer.seek(0)
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        sql = f"COPY {qn(table)} ({', '.join(qn(c) for c in columns)}) FROM STDIN"
        cursor.cursor.copy_expert(sql, buffer)


def rows_update(objs: Sequence[Model], fields: Sequence[str], *, batch: int = 1000) -> None:
    """Save ``fields`` of ``objs`` (saved rows of one model) from their attributes.

    On PostgreSQL one ``UPDATE ... FROM (VALUES ...)`` per ``batch`` rows, each value cast to its
    column's type: Django's ``bulk_update`` builds a ``CASE`` per field with a branch per row,
    which costs more to build in Python than the update costs the database.
    """
    if not objs:
        return
    model = type(objs[0])
    if connection.vendor != "postgresql":
        model._default_manager.bulk_update(objs, list(fields), batch_size=batch)
        return
    meta = model._meta
    assert meta.pk is not None
    saved = cast("list[Field[Any, Any]]", [meta.pk, *(meta.get_field(name) for name in fields)])
    qn = connection.ops.quote_name
    names = [qn(f.column) for f in saved]
    row_sql = "(" + ", ".join(f"%s::{f.db_type(connection)}" for f in saved) + ")"
    assignments = ", ".join(f"{name} = v.{name}" for name in names[1:])
    with connection.cursor() as cursor:
        for chunk in chunks(objs, batch):
            sql = (
                f"UPDATE {qn(meta.db_table)} AS t SET {assignments} "  # noqa: S608 - names from code
                f"FROM (VALUES {', '.join([row_sql] * len(chunk))}) AS v ({', '.join(names)}) "
                f"WHERE t.{names[0]} = v.{names[0]}"
            )
            params = [
                f.get_db_prep_save(getattr(obj, f.attname), connection)
                for obj in chunk
                for f in saved
            ]
            cursor.execute(sql, params)
