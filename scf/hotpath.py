"""The hot paths' machinery: what the finance click and token authentication use to do in a few
statements and little Python what the ORM would do in many.

Everything here reaches past Django's public API, and each piece is kept only while a side-by-side
measurement shows it pays (docs/performance.md, decision log); each has a setting to turn it off:

* ``execute_prepared``: server-side prepared statements, once per database session
  (``SCF_PREPARED_STATEMENTS``; ``scf.postgresql`` adds generic plans for them);
* ``model_from_row`` and ``build``: model instances without ``Model.__init__``
  (``SCF_FAST_INSTANCES``), compared with Django's field by field in the tests;
* ``insert_select`` and ``with_statement``: several dependent INSERTs and UPDATEs as one ``WITH``
  statement, values prepared as ``Model.save`` prepares them.

The SQL of the finance click itself is in ``lending.services.finance_hotpath``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.models import Field, Model, signals
from django.db.models.base import ModelState

M = TypeVar("M", bound=Model)


# --- one statement for several dependent writes (PostgreSQL) -------------------------------------


# Field classes whose ``get_db_prep_save`` returns a value of these exact Python types unchanged
# on PostgreSQL with psycopg2 (and whose ``pre_save`` is the plain attribute). Exact classes
# only: a subclass (an encrypted field, say) may prepare its value differently.
_AS_IS: dict[type[Any], tuple[type, ...]] = {
    models.AutoField: (int,),
    models.BigAutoField: (int,),
    models.IntegerField: (int,),
    models.BigIntegerField: (int,),
    models.SmallIntegerField: (int,),
    models.PositiveIntegerField: (int,),
    models.PositiveSmallIntegerField: (int,),
    models.PositiveBigIntegerField: (int,),
    models.CharField: (str,),
    models.TextField: (str,),
    models.BooleanField: (bool,),
    models.DecimalField: (Decimal,),
    models.DateField: (dt.date,),
}


def _as_is_types(field: Any) -> tuple[type, ...]:
    if type(field) in (models.ForeignKey, models.OneToOneField):
        return _as_is_types(field.target_field)
    return _AS_IS.get(type(field), ())


@lru_cache(maxsize=64)
def _insert_template(
    model: type[Model], with_pk: bool
) -> tuple[str, tuple[tuple[Field[Any, Any], tuple[type, ...]], ...]]:
    """``INSERT INTO <table> (<columns>) SELECT <casts>`` for a model, built once per process,
    with each field and the value types it sends as they are (``_AS_IS``)."""
    fields = tuple(f for f in model._meta.concrete_fields if with_pk or not f.primary_key)
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in fields)
    values = ", ".join(f"CAST(%s AS {f.db_type(connection)})" for f in fields)
    plan = tuple((f, _as_is_types(f)) for f in fields)
    return f"INSERT INTO {qn(model._meta.db_table)} ({columns}) SELECT {values}", plan


def insert_select(obj: Model, *, source: str | None = None) -> tuple[str, list[Any]]:
    """``INSERT INTO <table> (<columns>) SELECT <values> [FROM <source>] RETURNING id`` for an
    unsaved model instance, as a member of a ``WITH`` statement (PostgreSQL).

    Values are prepared exactly as ``Model.save`` prepares them (``pre_save``, then
    ``get_db_prep_save``), except that a value the preparation would return unchanged (an
    ``int`` for an integer field, a ``Decimal`` for a decimal field, ...) is sent as it is; each
    is cast to its column's type: in a ``SELECT`` list an untyped parameter would otherwise be
    text. With ``source`` (another member's name) the row is written once per row that member
    returned: zero rows there means nothing is written here. The primary key is sent when the
    instance has one (ids reserved from the sequence beforehand).
    """
    template, plan = _insert_template(type(obj), obj.pk is not None)
    conn = connections[DEFAULT_DB_ALIAS]  # the wrapper itself: no proxy lookups per field
    params: list[Any] = []
    for f, as_is in plan:
        if as_is:
            value = getattr(obj, f.attname)
            if value is None or type(value) in as_is:
                params.append(value)
                continue
        params.append(f.get_db_prep_save(f.pre_save(obj, True), conn))
    origin = f" FROM {source}" if source else ""
    return f"{template}{origin} RETURNING id", params


@dataclass(frozen=True)
class Member:
    """One part of a ``WITH`` statement: its name, SQL and parameters."""

    name: str
    sql: str
    params: Sequence[Any] = ()


def with_statement(members: Sequence[Member], final: str) -> tuple[str, list[Any]]:
    """``WITH a AS (...), b AS (...) <final>``: every member runs, in one round trip, atomically;
    a member reads an earlier one's ``RETURNING`` rows by its name."""
    sql = "WITH " + ", ".join(f"{m.name} AS ({m.sql})" for m in members) + " " + final
    return sql, [p for m in members for p in m.params]


# --- reading model instances from hand-written joins ----------------------------------------------


@lru_cache(maxsize=128)
def select_list(model: type[Model], alias: str) -> str:
    """The columns of every concrete field of ``model``, qualified by ``alias``, in field order."""
    qn = connection.ops.quote_name
    return ", ".join(f"{alias}.{qn(f.column)}" for f in model._meta.concrete_fields)


@lru_cache(maxsize=64)
def _row_plan(
    model: type[Model], vendor: str
) -> tuple[tuple[str, ...], tuple[tuple[int, tuple[Any, ...], Any], ...]]:
    """The attribute names of ``model``'s concrete fields, and for each field the ORM's
    compiler would convert (the backend's converters, then the field's own ``from_db_value``:
    JSON, encrypted fields) its position, its converters and its column."""
    table = model._meta.db_table
    plan = []
    fields: list[Any] = list(model._meta.concrete_fields)
    for position, f in enumerate(fields):
        col = f.get_col(table)
        converters = tuple(connection.ops.get_db_converters(col)) + tuple(
            f.get_db_converters(connection)
        )
        if converters:
            plan.append((position, converters, col))
    return tuple(f.attname for f in fields), tuple(plan)


def model_from_row(model: type[M], row: Sequence[Any], start: int = 0) -> tuple[M, int]:
    """Build a ``model`` instance from ``row[start:]`` as ``select_list`` ordered the columns;
    the values are converted as the ORM would convert them. Returns the instance and the index
    after its columns."""
    conn = connections[DEFAULT_DB_ALIAS]  # the wrapper itself: no proxy lookups per value
    names, plan = _row_plan(model, conn.vendor)
    end = start + len(names)
    values = list(row[start:end])
    for position, converters, col in plan:
        value = values[position]
        for converter in converters:
            value = converter(value, col, conn)
        values[position] = value
    if _has_init_receivers(model):
        return model.from_db(conn.alias, names, values), end
    obj = model.__new__(model)
    state = obj._state = ModelState()
    state.adding, state.db = False, conn.alias
    obj.__dict__.update(zip(names, values, strict=True))
    return obj, end


# --- model instances without Model.__init__ -------------------------------------------------------
#
# ``Model.__init__`` walks every field through its descriptors, and ``ForwardManyToOneDescriptor``
# asks the database router for every related object passed in: for the dozen rows of a finance
# click (five built, seven read) a measurable share of a web worker's CPU. The two helpers here
# make the same instances directly: each field's value in the instance's ``__dict__``
# (what ``__init__`` leaves there), related objects in the field cache, and the reverse cache of a
# one-to-one. ``tests/lending/test_fast_instances.py`` compares them with Django's, field by
# field. Models with ``pre_init``/``post_init`` receivers (none of ours), and any model when
# database routers are configured (the instance's database would be theirs to choose), go
# through ``__init__``, and so does every model with ``SCF_FAST_INSTANCES`` off.


def _has_init_receivers(model: type[Model]) -> bool:
    return (
        not settings.SCF_FAST_INSTANCES
        or signals.pre_init.has_listeners(model)
        or signals.post_init.has_listeners(model)
        or bool(settings.DATABASE_ROUTERS)
    )


@lru_cache(maxsize=64)
def _build_plan(model: type[Model]) -> tuple[tuple[Any, bool], ...]:
    """Every concrete field, with whether it is a forward relation (set by name, to an object)."""
    return tuple(
        (f, bool(f.is_relation and (f.many_to_one or f.one_to_one)))
        for f in model._meta.concrete_fields
    )


def build(model: type[M], /, **values: Any) -> M:
    """An unsaved ``model`` instance equal to ``model(**values)``: a relation given by its name
    (``program=``) takes the object, any field by its attribute name (``program_id=``) the value;
    a field not given gets its default."""
    if _has_init_receivers(model):
        return model(**values)
    obj = model.__new__(model)
    state = obj._state = ModelState()
    attrs = obj.__dict__
    used = 0
    for f, related in _build_plan(model):
        if related and f.name in values:
            used += 1
            target = values[f.name]
            if target is not None and not isinstance(target, f.remote_field.model):
                raise ValueError(f"{model.__name__}.{f.name} must be a {f.remote_field.model}")
            attrs[f.attname] = None if target is None else getattr(target, f.target_field.attname)
            f.set_cached_value(obj, target)
            if target is not None:
                # As the descriptor does with no routers: the related object's database, else
                # the default one, for both.
                state.db = state.db or target._state.db or DEFAULT_DB_ALIAS
                target._state.db = target._state.db or state.db
                if f.one_to_one:
                    f.remote_field.set_cached_value(target, obj)
        elif f.attname in values:
            used += 1
            attrs[f.attname] = values[f.attname]
        else:
            attrs[f.attname] = f.get_default()
    if used != len(values):
        names = {f.name for f, _ in _build_plan(model)} | {f.attname for f, _ in _build_plan(model)}
        unknown = sorted(set(values) - names)
        raise TypeError(f"{model.__name__}() got unexpected keyword arguments: {unknown}")
    return obj


# --- server-side prepared statements ---------------------------------------------------------------


def _numbered(sql: str) -> str:
    """``%s`` placeholders as ``$1, $2, ...`` (the SQL here has no literal ``%``)."""
    parts = sql.split("%s")
    return "".join(part + (f"${i}" if i < len(parts) else "") for i, part in enumerate(parts, 1))


def execute_prepared(cursor: Any, sql: str, params: Sequence[Any]) -> None:
    """Run ``sql`` as a named prepared statement on PostgreSQL (plain ``execute`` elsewhere).

    The hot paths (authentication, the finance decision) send the same few statements thousands
    of times; preparing each once per connection saves PostgreSQL parsing and planning them every
    time (the decision's read with its sub-selects above all). Prepared statements
    belong to the database session: the names already prepared are remembered per underlying
    connection and forgotten when Django opens a new one. They survive a rolled-back transaction.
    (Behind a pooler in transaction mode, such as PgBouncer before 1.21, turn this off with
    the ``SCF_PREPARED_STATEMENTS`` setting.)
    """
    conn = cursor.db  # the wrapper the cursor belongs to
    if conn.vendor != "postgresql" or not _prepared_enabled():
        cursor.execute(sql, params)
        return
    raw = conn.connection
    known: tuple[Any, set[str]] | None = getattr(conn, "_scf_prepared", None)
    if known is None or known[0] is not raw:
        known = (raw, set())
        conn._scf_prepared = known
    name = _statement_name(sql)
    if name not in known[1]:
        cursor.execute(f"PREPARE {name} AS {_numbered(sql)}")
        known[1].add(name)
    if params:
        cursor.execute(f"EXECUTE {name} ({', '.join(['%s'] * len(params))})", params)
    else:
        cursor.execute(f"EXECUTE {name}")


@lru_cache(maxsize=256)
def _statement_name(sql: str) -> str:
    return "scf_" + hashlib.sha1(sql.encode(), usedforsecurity=False).hexdigest()[:20]


def _prepared_enabled() -> bool:
    return bool(settings.SCF_PREPARED_STATEMENTS)
