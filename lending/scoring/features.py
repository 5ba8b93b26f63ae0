"""Credit features of every credit line (agent x program) as of a business date, computed in SQL.

One definition, used by training (as of past snapshot dates) and by nightly scoring (as of the
last closed day): ``features_as_of`` runs one SQL statement (PostgreSQL and SQLite alike) over the
platform's own tables and returns a ``FeatureFrame``, one row per line. Nothing after ``as_of``
(D) is read: orders dated after D, loans disbursed after D and repayments value-dated after D are
ignored, so a past snapshot sees what the platform knew then. (Two approximations: an order's
status is its status today, and utilisation divides by today's limit.)

Orders are the agent's orders from the program's enterprise in the program's currency; loans are
the line's loans that were disbursed (``value_date`` set; active, overdue, repaid, written off).
Windows "last N days" are the N days ending on D: ``D - N < date <= D``.

=====================  ==========================================================================
feature                definition
=====================  ==========================================================================
order_count_N          orders not cancelled in the last N days, N = 30, 90, 365
order_amount_N         their total amount
volume_cv              month-to-month volume stability: coefficient of variation (population
                       standard deviation / mean) of the amounts of the 12 thirty-day months
                       ending on D, over the months since the first order (at most 12). Missing
                       below 3 months or with no volume. Lower is steadier.
tenure_days            D - date of the first order ever (0 without orders)
cancel_rate            cancelled orders / all orders, last 365 days (missing without orders)
return_rate            financed orders later cancelled (the goods went back, the loan stands) /
                       loans disbursed in the last 365 days. The feed has no separate return
                       status: a cancellation after financing is the return.
financed_share         order amount of loans disbursed in the last 365 days / order_amount_365,
                       at most 1 (missing without volume)
on_time_ratio          loans due in the last 365 days (due date < D) settled by their due date /
                       those loans (missing if none came due)
max_dpd, avg_dpd       largest and average days past due of those loans, where a loan's DPD is
                       (settlement date, or D if still owed) - due date, at least 0
current_dpd            largest DPD of loans still owed and past due on D (0 if none)
overdue_principal      principal still owed on loans past due on D
utilisation            principal still owed on D / the line's limit (missing for a zero limit)
=====================  ==========================================================================

A loan is *settled* on the value date of the repayment that brought the principal repaid (value
date <= D) up to its principal. Missing values stay missing (NaN): the scorecard gives them a bin
of their own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import connection, transaction

from ..models import LoanStatus, Program

WINDOWS = (30, 90, 365)
MONTHS = 12
MONTH_DAYS = 30
MIN_MONTHS_FOR_CV = 3
WORK_MEM = "128MB"
DISBURSED = (LoanStatus.ACTIVE, LoanStatus.OVERDUE, LoanStatus.REPAID, LoanStatus.WRITTEN_OFF)


@dataclass(frozen=True)
class Feature:
    """A feature, the reason code it gives when it hurts a score, and what would improve it."""

    name: str
    kind: str  # count | amount | ratio | days
    reason_code: str
    reason: str
    hint: str


FEATURES: tuple[Feature, ...] = (
    Feature(
        "order_count_30", "count", "few_recent_orders", "Few orders in the last 30 days.",
        "Keep ordering every month."
    ),
    Feature(
        "order_count_90", "count", "few_orders_90d", "Few orders in the last 90 days.",
        "Order more often."
    ),
    Feature(
        "order_count_365", "count", "few_orders_365d", "Few orders in the last year.",
        "Order more often."
    ),
    Feature(
        "order_amount_30", "amount", "low_recent_volume", "Low order volume in the last 30 days.",
        "Grow your monthly order volume."
    ),
    Feature(
        "order_amount_90", "amount", "low_volume_90d", "Low order volume in the last 90 days.",
        "Grow your order volume."
    ),
    Feature(
        "order_amount_365", "amount", "low_volume_365d", "Low order volume over the last year.",
        "Grow your order volume."
    ),
    Feature(
        "volume_cv", "ratio", "irregular_volume", "Order volume swings from month to month.",
        "Order steadily, month after month."
    ),
    Feature(
        "tenure_days", "days", "short_history", "A short ordering history.",
        "A longer track record raises the grade over time."
    ),
    Feature(
        "cancel_rate", "ratio", "order_cancellations", "Many orders were cancelled.",
        "Cancel fewer orders."
    ),
    Feature(
        "return_rate", "ratio", "financed_orders_returned",
        "Financed orders were later cancelled.", "Finance only orders you will keep."
    ),
    Feature(
        "financed_share", "ratio", "financed_share", "The share of orders financed.",
        "Finance a share of your orders in line with your business."
    ),
    Feature(
        "on_time_ratio", "ratio", "late_repayments", "Loans were not repaid by their due date.",
        "Repay every loan by its due date."
    ),
    Feature(
        "max_dpd", "days", "past_days_past_due", "A loan went far past its due date.",
        "Repay every loan by its due date."
    ),
    Feature(
        "avg_dpd", "ratio", "average_days_past_due", "Loans are repaid late on average.",
        "Repay every loan by its due date."
    ),
    Feature(
        "current_dpd", "days", "currently_overdue", "A loan is overdue now.",
        "Repay the overdue loan."
    ),
    Feature(
        "overdue_principal", "amount", "overdue_principal", "Principal is overdue now.",
        "Repay the overdue principal."
    ),
    Feature(
        "utilisation", "ratio", "high_utilisation", "Much of the line is in use.",
        "Repay loans to free up the line."
    ),
)  # fmt: skip
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}
CONTEXT = ("line_id", "agent_id", "program_id")
PLACES = {"count": 0, "amount": 2, "ratio": 4, "days": 0}


@dataclass
class FeatureFrame:
    """Feature values (``matrix``, NaN for missing) and which line each row is (``context``:
    line, agent and program ids), one row per line in id order."""

    as_of: dt.date
    names: tuple[str, ...]
    matrix: np.ndarray
    context: dict[str, list[Any]]

    def __len__(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def line_ids(self) -> list[int]:
        return [int(v) for v in self.context["line_id"]]

    def column(self, name: str) -> np.ndarray:
        return self.matrix[:, self.names.index(name)]

    def stored(self, rows: Sequence[int]) -> list[dict[str, str | None]]:
        """The rows' values as strings rounded for their kind, ``None`` when missing."""
        columns = []
        for j, name in enumerate(self.names):
            template = f"{{:.{PLACES[BY_NAME[name].kind]}f}}"
            values = self.matrix[list(rows), j].tolist()
            columns.append([None if v != v else template.format(v) for v in values])  # NaN != NaN
        return [dict(zip(self.names, row, strict=True)) for row in zip(*columns, strict=True)]


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


def features_as_of(
    as_of: dt.date, *, program_id: int | None = None, line_ids: list[int] | None = None
) -> FeatureFrame:
    """Every line's features as of ``as_of`` (all lines, a program's, or the given ones)."""
    scope = _scope(program_id, line_ids)
    with transaction.atomic(), connection.cursor() as cursor:
        if _postgres():
            # A batch statement over every line: hashes and sorts in memory; no JIT, whose
            # compilation of this many expressions costs more than it saves.
            cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
            cursor.execute("SET LOCAL jit = off")
        cursor.execute(_statement(scope), {**_params(as_of), **scope.params})
        rows = cursor.fetchall()
    width = len(CONTEXT)
    context: dict[str, list[Any]] = {
        name: [row[i] for row in rows] for i, name in enumerate(CONTEXT)
    }
    # NumPy turns NULL (None) into NaN and Decimal into float.
    matrix = np.array([row[width:] for row in rows], dtype=np.float64).reshape(
        len(rows), len(FEATURE_NAMES)
    )
    return FeatureFrame(as_of=as_of, names=FEATURE_NAMES, matrix=matrix, context=context)
