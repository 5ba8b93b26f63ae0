"""Set-based writes of many rows of one model: ``COPY`` on PostgreSQL, multi-row ``INSERT`` on SQLite.

``BulkRows`` collects rows with every concrete column of a model (the field's default where the
caller sets nothing: ``""`` for text, else ``None``), converts each value once per column for the
backend (JSON as text; on SQLite dates and datetimes as Django stores them) and writes them with
``scf.sql.copy_rows`` or ``scf.sql.insert_rows``. No model instances, no signals, no ``save()``:
the caller sets every value, including timestamps Django would fill in.

``reserve_ids`` hands out primary keys before the rows are written, so rows of several tables can
point at each other in one pass: a sequence on PostgreSQL (safe under concurrency); on SQLite,
whose writers are serialised (``transaction_mode = IMMEDIATE``), the keys above the largest.
Without reserved keys, ``BulkRows(model, with_pk=False)`` leaves the key to the database.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import json
from collections.abc import Callable
from typing import Any, cast

from django.db import connection, models

from scf.sql import insert_rows


class BulkRows:
    def __init__(self, model: type[models.Model], *, with_pk: bool = True) -> None:
        self.model = model
        self.postgres = connection.vendor == "postgresql"
        self.fields = [f for f in model._meta.concrete_fields if with_pk or not f.primary_key]
        make = _copy_text if self.postgres else _sqlite_value
        # (name, the default already converted, converter) per column.
        self.columns: list[tuple[str, Any, Callable[[Any], Any]]] = []
        for field in self.fields:
            convert, default = make(field), field.get_default()
            stored = None if default is None else convert(default)
            self.columns.append(
                (field.attname, NULL if self.postgres and stored is None else stored, convert)
            )
        self.rows: list[Any] = []  # COPY text lines on PostgreSQL, tuples on SQLite

    def add(self, **values: Any) -> None:
        null = NULL if self.postgres else None
        row = [
            default
            if (v := values.get(name, _UNSET)) is _UNSET
            else null
            if v is None
            else convert(v)
            for name, default, convert in self.columns
        ]
        self.rows.append("\t".join(cast(list[str], row)) if self.postgres else tuple(row))

    def write(self) -> int:
        """Write the rows collected so far; returns how many."""
        count = len(self.rows)
        if not count:
            return 0
        table = self.model._meta.db_table
        columns = [f.column for f in self.fields]
        if self.postgres:
            _copy(table, columns, self.rows)
        else:
            insert_rows(table, columns, self.rows)
        self.rows = []
        return count


_UNSET = object()
_JSON = json.JSONEncoder(check_circular=False, separators=(",", ":"))


# --- PostgreSQL: COPY text format, one converter per column ---------------------------------------

NULL = "\\N"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _escaped(value: Any) -> str:
    return str(value).translate(_ESCAPES)


def _json_text(value: Any) -> str:
    return _JSON.encode(value).translate(_ESCAPES)


@functools.lru_cache(maxsize=16384)
def _timestamp(value: dt.datetime) -> str:
    return value.isoformat()


def _boolean(value: Any) -> str:
    return "t" if value else "f"


def _copy_text(field: models.Field) -> Callable[[Any], str]:
    if isinstance(field, models.JSONField):
        return _json_text
    if isinstance(field, models.BooleanField):
        return _boolean
    if isinstance(field, models.DateTimeField):
        return _timestamp
    if isinstance(field, models.DateField):
        return dt.date.isoformat
    if isinstance(field, models.CharField | models.TextField):
        return _escaped
    return str  # numbers and keys


def _copy(table: str, columns: list[str], lines: list[str]) -> None:
    buffer = io.StringIO("\n".join(lines) + "\n")
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        sql = f"COPY {qn(table)} ({', '.join(qn(c) for c in columns)}) FROM STDIN"
        cursor.cursor.copy_expert(sql, buffer)


# --- SQLite: values as Django stores them ---------------------------------------------------------


@functools.lru_cache(maxsize=16384)
def _sqlite_datetime(value: dt.datetime) -> str:
    """As Django stores an aware datetime in SQLite: naive UTC text."""
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ")


def _same(value: Any) -> Any:
    return value


def _sqlite_value(field: models.Field) -> Callable[[Any], Any]:
    if isinstance(field, models.JSONField):
        return _JSON.encode
    if isinstance(field, models.DateTimeField):
        return _sqlite_datetime
    if isinstance(field, models.DateField):
        return dt.date.isoformat
    return str if isinstance(field, models.DecimalField) else _same


def reserve_ids(model: type[models.Model], count: int) -> list[int]:
    """``count`` primary keys nobody else will use (see the module docstring)."""
    if count == 0:
        return []
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [table, count],
            )
            return [int(row[0]) for row in cursor.fetchall()]
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {connection.ops.quote_name(table)}")  # noqa: S608
        first = int(cursor.fetchone()[0]) + 1
    return list(range(first, first + count))
