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

from .feature_sql import feature_rows


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


def features_as_of(
    as_of: dt.date, *, program_id: int | None = None, line_ids: list[int] | None = None
) -> FeatureFrame:
    """Every line's features as of ``as_of`` (all lines, a program's, or the given ones)."""
    rows = feature_rows(as_of, program_id=program_id, line_ids=line_ids)
    width = len(CONTEXT)
    context: dict[str, list[Any]] = {
        name: [row[i] for row in rows] for i, name in enumerate(CONTEXT)
    }
    # NumPy turns NULL (None) into NaN and Decimal into float.
    matrix = np.array([row[width:] for row in rows], dtype=np.float64).reshape(
        len(rows), len(FEATURE_NAMES)
    )
    return FeatureFrame(as_of=as_of, names=FEATURE_NAMES, matrix=matrix, context=context)
