"""Many new rows of one model at once: ``COPY`` on PostgreSQL, ``bulk_create`` elsewhere.

A statement can bring 100,000 entries; Django's ``bulk_create`` spends most of its time
preparing each value of each row in Python. On PostgreSQL the ids are drawn from the table's
sequence first (one query), set on the objects (so rows pointing at them can be built next), and
the rows are loaded with ``COPY`` (``scf.sql.copy_rows``). JSON columns are written as JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from django.db import connection, models

from scf.sql import copy_rows


def _value(field: models.Field[Any, Any], obj: models.Model) -> Any:
    value = getattr(obj, field.attname)
    if isinstance(field, models.JSONField):
        return json.dumps(value)
    return value


def rows_insert(model: type[models.Model], objs: Sequence[models.Model]) -> None:
    """Insert ``objs`` (new, unsaved) and set their primary keys."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(objs, batch_size=2000)
        return
    table = model._meta.db_table
    pk = model._meta.pk
    assert pk is not None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [table, pk.column, len(objs)],
        )
        for obj, (new_id,) in zip(objs, cursor.fetchall(), strict=True):
            obj.pk = new_id
    fields = [f for f in model._meta.concrete_fields]
    copy_rows(
        table,
        [f.column for f in fields],
        ([_value(f, obj) for f in fields] for obj in objs),
    )
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias
