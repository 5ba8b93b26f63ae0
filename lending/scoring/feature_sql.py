"""The one SQL statement behind ``features_as_of`` (``lending.scoring.features``), in both dialects.

The statement returns, per credit line in id order, the line, agent and program ids and then the
features in the order of ``features.FEATURES``; the definitions are in that module's docstring.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from ..models import LoanStatus, Program

WINDOWS = (30, 90, 365)
MONTHS = 12
MONTH_DAYS = 30
MIN_MONTHS_FOR_CV = 3
WORK_MEM = "128MB"
DISBURSED = (LoanStatus.ACTIVE, LoanStatus.OVERDUE, LoanStatus.REPAID, LoanStatus.WRITTEN_OFF)


# --- SQL dialect --------------------------------------------------------------------------------


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def _days(later: str, earlier: str) -> str:
    """Whole days from ``earlier`` to ``later`` (both dates)."""
    if _postgres():
        return f"(CAST({later} AS date) - CAST({earlier} AS date))"
    return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"


def date_add(column: str, days: int) -> str:
    """``column`` (a date) plus a whole number of days."""
    if _postgres():
        return f"(CAST({column} AS date) + {int(days)})"
    return f"date({column}, '{int(days):+d} days')"


def _greatest(a: str, b: str) -> str:
    return f"GREATEST({a}, {b})" if _postgres() else f"MAX({a}, {b})"


def _least(a: str, b: str) -> str:
    return f"LEAST({a}, {b})" if _postgres() else f"MIN({a}, {b})"


def as_date(value: dt.date | str) -> dt.date:
    """A date read back through a raw cursor (SQLite returns ISO text)."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def sql_date(day: dt.date) -> dt.date | str:
    """Dates as the backend compares them (SQLite stores ISO 8601 text)."""
    return day if _postgres() else day.isoformat()


# --- the statement ------------------------------------------------------------------------------
#
# Orders are aggregated per (agent, enterprise, currency) straight from the table (in parallel on
# PostgreSQL), repayments per loan in one pass over loans and repayments in key order, loans per
# line; the lines then pick up their aggregates with two joins. Money is summed in double
# precision (the features are floats; NUMERIC arithmetic is several times slower), and a loan
# counts as settled when the principal repaid is within half a cent of its principal.

NOT_CANCELLED = "o.status <> 'cancelled'"


def _float(expression: str) -> str:
    return f"CAST({expression} AS double precision)" if _postgres() else expression


def _order_aggregates() -> list[str]:
    """Per agent, enterprise and currency: counts and amounts per window, 12 monthly volumes,
    all and cancelled orders of the last 365 days, the first order."""
    amount = _float("o.amount")
    parts = []
    for n in WINDOWS:
        recent = f"o.order_date > %(d{n})s AND {NOT_CANCELLED}"
        parts.append(f"COUNT(*) FILTER (WHERE {recent}) AS n{n}")
        parts.append(f"SUM({amount}) FILTER (WHERE {recent}) AS a{n}")
    for k in range(MONTHS):
        month = f"o.order_date > %(m{k + 1})s AND o.order_date <= %(m{k})s AND {NOT_CANCELLED}"
        parts.append(f"COALESCE(SUM({amount}) FILTER (WHERE {month}), 0) AS m{k}")
    parts.append("COUNT(*) FILTER (WHERE o.order_date > %(d365)s) AS all365")
    parts.append(
        "COUNT(*) FILTER (WHERE o.order_date > %(d365)s AND o.status = 'cancelled') AS cancelled365"
    )
    parts.append("MIN(o.order_date) AS first_order")
    return parts


def _loan_aggregates() -> list[str]:
    due = "due_date < %(d)s AND due_date > %(d365)s"
    owed_past_due = "settled_on IS NULL AND due_date < %(d)s"
    recent = "value_date > %(d365)s"
    return [
        f"COUNT(*) FILTER (WHERE {due}) AS matured",
        f"COUNT(*) FILTER (WHERE {due} AND dpd = 0) AS on_time",
        f"MAX(dpd) FILTER (WHERE {due}) AS max_dpd",
        f"AVG(dpd * 1.0) FILTER (WHERE {due}) AS avg_dpd",
        f"MAX(dpd) FILTER (WHERE {owed_past_due}) AS current_dpd",
        f"SUM(owed) FILTER (WHERE {owed_past_due}) AS overdue_principal",
        "SUM(owed) FILTER (WHERE settled_on IS NULL) AS owed",
        f"SUM(order_amount) FILTER (WHERE {recent}) AS financed_amount",
        f"COUNT(*) FILTER (WHERE {recent}) AS financed_count",
        f"COUNT(*) FILTER (WHERE {recent} AND returned = 1) AS returned_count",
    ]


def _loan_ctes(scope: _Scope) -> str:
    """Disbursed loans with what was repaid by D, their settlement date and their DPD."""
    statuses = ", ".join(f"'{s.value}'" for s in DISBURSED)
    principal = _float("l.principal")
    dpd_end = "COALESCE(settled_on, %(d)s)"
    return f"""
cancelled AS (
  SELECT o.id FROM orders_salesorder o WHERE o.status = 'cancelled' AND {scope.orders}
),
paid AS (
  SELECT l.id, l.credit_line_id AS line_id, l.order_id, l.value_date, l.due_date,
    {principal} AS principal, {_float("l.order_amount")} AS order_amount,
    COALESCE(SUM({_float("r.to_principal")}), 0) AS paid, MAX(r.value_date) AS last_paid
  FROM lending_loan l
  LEFT JOIN lending_repayment r
    ON r.loan_id = l.id AND r.value_date <= %(d)s AND r.to_principal > 0
  WHERE l.value_date <= %(d)s AND l.status IN ({statuses}) AND {scope.loans}
  GROUP BY l.id
),
loan AS (
  SELECT pd.line_id, pd.order_amount, pd.value_date, pd.due_date,
    CASE WHEN c.id IS NULL THEN 0 ELSE 1 END AS returned,
    CASE WHEN pd.paid >= pd.principal - 0.005 THEN pd.last_paid END AS settled_on,
    pd.principal - pd.paid AS owed
  FROM paid pd
  LEFT JOIN cancelled c ON c.id = pd.order_id
),
loan_dpd AS (
  SELECT loan.*, {_greatest(_days(dpd_end, "due_date"), "0")} AS dpd FROM loan
),
lagg AS (
  SELECT line_id, {", ".join(_loan_aggregates())} FROM loan_dpd GROUP BY line_id
)"""  # noqa: S608 - every name and fragment comes from this module


def _volume_cv() -> str:
    """Coefficient of variation of the monthly volumes over the months since the first order."""
    months = "o.months"
    total = " + ".join(f"o.m{k}" for k in range(MONTHS))
    squares = " + ".join(f"o.m{k} * o.m{k}" for k in range(MONTHS))
    mean = f"(({total}) * 1.0 / {months})"
    variance = f"(({squares}) * 1.0 / {months} - {mean} * {mean})"
    return (
        f"CASE WHEN {months} >= {MIN_MONTHS_FOR_CV} AND ({total}) > 0 "
        f"THEN SQRT({_greatest(variance, '0')}) / {mean} END"
    )


def _feature_columns() -> list[str]:
    ratio = "CASE WHEN {den} > 0 THEN {num} * 1.0 / {den} END"
    return [
        *(f"COALESCE(o.n{n}, 0)" for n in WINDOWS),
        *(f"COALESCE(o.a{n}, 0)" for n in WINDOWS),
        _volume_cv(),
        f"CASE WHEN o.first_order IS NULL THEN 0 ELSE {_days('%(d)s', 'o.first_order')} END",
        ratio.format(num="o.cancelled365", den="COALESCE(o.all365, 0)"),
        ratio.format(num="la.returned_count", den="COALESCE(la.financed_count, 0)"),
        # Inside the CASE: PostgreSQL's LEAST ignores a NULL, SQLite's MIN returns it.
        "CASE WHEN COALESCE(o.a365, 0) > 0 THEN "
        + _least("COALESCE(la.financed_amount, 0) * 1.0 / o.a365", "1")
        + " END",
        ratio.format(num="la.on_time", den="COALESCE(la.matured, 0)"),
        "la.max_dpd",
        "la.avg_dpd",
        "COALESCE(la.current_dpd, 0)",
        "COALESCE(la.overdue_principal, 0)",
        ratio.format(num="COALESCE(la.owed, 0)", den=_float('cl."limit"')),
    ]


def _statement(scope: _Scope) -> str:
    months = _least(f"{_days('%(d)s', 'first_order')} / {MONTH_DAYS} + 1", str(MONTHS))
    return f"""
WITH ord AS (
  SELECT o.agent_id, o.enterprise_id, o.currency, {", ".join(_order_aggregates())}
  FROM orders_salesorder o
  WHERE o.order_date <= %(d)s AND {scope.orders}
  GROUP BY o.agent_id, o.enterprise_id, o.currency
),
ordm AS (SELECT ord.*, {months} AS months FROM ord),
{_loan_ctes(scope)}
SELECT cl.id, cl.agent_id, cl.program_id, {", ".join(_feature_columns())}
FROM lending_creditline cl
JOIN lending_program p ON p.id = cl.program_id
LEFT JOIN ordm o
  ON o.agent_id = cl.agent_id AND o.enterprise_id = p.enterprise_id AND o.currency = p.currency
LEFT JOIN lagg la ON la.line_id = cl.id
WHERE {scope.lines}
ORDER BY cl.id"""  # noqa: S608 - every name and fragment comes from this module


def _params(as_of: dt.date) -> dict[str, Any]:
    params: dict[str, Any] = {"d": sql_date(as_of)}
    for n in WINDOWS:
        params[f"d{n}"] = sql_date(as_of - dt.timedelta(days=n))
    for k in range(MONTHS + 1):
        params[f"m{k}"] = sql_date(as_of - dt.timedelta(days=MONTH_DAYS * k))
    return params


@dataclass(frozen=True)
class _Scope:
    """Conditions restricting the lines (``cl``), orders (``o``) and loans (``l``) read."""

    lines: str
    orders: str
    loans: str
    params: dict[str, Any]


def _scope(program_id: int | None, line_ids: list[int] | None) -> _Scope:
    lines, orders, loans = ["1 = 1"], ["1 = 1"], ["1 = 1"]
    params: dict[str, Any] = {}
    if program_id is not None:
        enterprise_id, currency = Program.objects.filter(pk=program_id).values_list(
            "enterprise_id", "currency"
        ).first() or (None, None)
        params.update(program_id=program_id, enterprise_id=enterprise_id, currency=currency)
        lines.append("cl.program_id = %(program_id)s")
        orders.append("o.enterprise_id = %(enterprise_id)s AND o.currency = %(currency)s")
        loans.append("l.program_id = %(program_id)s")
    if line_ids is not None:
        marks = ", ".join([f"%(line{i})s" for i in range(len(line_ids))] or ["NULL"])
        params.update({f"line{i}": pk for i, pk in enumerate(line_ids)})
        lines.append(f"cl.id IN ({marks})")
        agents = f"SELECT agent_id FROM lending_creditline WHERE id IN ({marks})"  # noqa: S608
        orders.append(f"o.agent_id IN ({agents})")
        loans.append(f"l.credit_line_id IN ({marks})")
    return _Scope(" AND ".join(lines), " AND ".join(orders), " AND ".join(loans), params)


def feature_rows(
    as_of: dt.date, *, program_id: int | None = None, line_ids: list[int] | None = None
) -> list[tuple[Any, ...]]:
    """The statement's rows as of ``as_of``: ids, then feature values (``None`` when missing)."""
    scope = _scope(program_id, line_ids)
    with transaction.atomic(), connection.cursor() as cursor:
        if _postgres():
            # A batch statement over every line: hashes and sorts in memory; no JIT, whose
            # compilation of this many expressions costs more than it saves.
            cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
            cursor.execute("SET LOCAL jit = off")
        cursor.execute(_statement(scope), {**_params(as_of), **scope.params})
        return list(cursor.fetchall())
