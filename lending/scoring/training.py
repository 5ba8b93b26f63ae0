"""Training a scorecard from the platform's history and evaluating it; writes nothing (storing
and promoting the model is the service ``lending.services.credit_models.credit_model_train``).

Training rows
    One row per loan whose outcome is known on the cut-off date D: disbursed, and due at least
    30 days before D. The target is 1 (bad) when the loan reached 30 days past due: its principal
    was not fully repaid by a repayment value-dated on or before ``due_date + 29``. The features
    are the line's features (``lending.scoring.features``) as of the day before the first day of
    the month the loan was disbursed (its *snapshot*), so a row sees only what the platform knew
    when the loan was made, and one features query per month serves every loan of that month.

Time-based hold-out
    Snapshots are ordered in time; the latest ones holding at least 30 % of the rows are the
    hold-out, the rest the training set. Bins and coefficients are fitted on the training set only;
    AUC, KS and calibration by grade are measured on the hold-out, next to a naive baseline (rank
    by the worst past days past due, ``max_dpd``). The stored model is the one evaluated (it is
    not refit on the hold-out), so its metrics describe exactly what scores.

Promotion
    The new model is stored with a new version either way. It is promoted (and the current one
    retired) only when its hold-out AUC is at least ``MIN_AUC`` and at least the AUC of the current
    promoted model *on the same hold-out rows*; otherwise it is kept unpromoted with the reason.
    At most one model is promoted (a partial unique index). Training refuses to run
    (``not_enough_history``) without enough bad and good loans on both sides of the split.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection

from scf import clock
from scf.errors import ValidationFailed

from ..models import CreditModel
from . import scorecard as sc
from .feature_sql import DISBURSED, as_date, date_add, sql_date
from .features import FEATURE_NAMES, features_as_of

BAD_DPD = 30
HOLDOUT_SHARE = 0.3
MIN_BADS = 20
MIN_HOLDOUT_BADS = 10
MIN_AUC = 0.6
BASELINE_FEATURE = "max_dpd"


class NotEnoughHistory(ValidationFailed):
    code = "not_enough_history"


@dataclass
class TrainingSet:
    names: tuple[str, ...]
    matrix: np.ndarray
    y: np.ndarray
    snapshots: list[dt.date]
    loan_ids: list[int]


def _labelled_loans(as_of: dt.date, program_id: int | None) -> list[tuple[int, int, dt.date, int]]:
    """(loan, line, value date, bad) for every loan whose 30-DPD outcome is known on ``as_of``."""
    statuses = ", ".join(f"'{s.value}'" for s in DISBURSED)
    program = "AND l.program_id = %(program_id)s" if program_id is not None else ""
    sql = f"""
SELECT l.id, l.credit_line_id, l.value_date,
  CASE WHEN ROUND(COALESCE(SUM(r.to_principal), 0), 2) >= ROUND(l.principal, 2) THEN 0 ELSE 1 END
FROM lending_loan l
LEFT JOIN lending_repayment r
  ON r.loan_id = l.id AND r.value_date <= {date_add("l.due_date", BAD_DPD - 1)}
WHERE l.value_date IS NOT NULL AND l.status IN ({statuses})
  AND {date_add("l.due_date", BAD_DPD)} <= %(d)s {program}
GROUP BY l.id, l.credit_line_id, l.value_date, l.principal
ORDER BY l.value_date, l.id"""  # noqa: S608 - fragments from code, values as parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, {"d": sql_date(as_of), "program_id": program_id})
        return [(int(a), int(b), as_date(c), int(d)) for a, b, c, d in cursor.fetchall()]


def snapshot_of(value_date: dt.date) -> dt.date:
    """The first day of the loan's month: features are taken as of the day before it."""
    return value_date.replace(day=1)


def training_set(as_of: dt.date, *, program_id: int | None = None) -> TrainingSet:
    """Rows in time order (snapshot, loan id), features as of each loan's snapshot."""
    by_snapshot: dict[dt.date, list[tuple[int, int, int]]] = defaultdict(list)
    for loan_id, line_id, value_date, bad in _labelled_loans(as_of, program_id):
        by_snapshot[snapshot_of(value_date)].append((loan_id, line_id, bad))
    rows: list[np.ndarray] = []
    y: list[int] = []
    snapshots: list[dt.date] = []
    loan_ids: list[int] = []
    for snapshot in sorted(by_snapshot):
        frame = features_as_of(snapshot - dt.timedelta(days=1), program_id=program_id)
        position = {line_id: i for i, line_id in enumerate(frame.line_ids)}
        for loan_id, line_id, bad in by_snapshot[snapshot]:
            rows.append(frame.matrix[position[line_id]])
            y.append(bad)
            snapshots.append(snapshot)
            loan_ids.append(loan_id)
    width = len(FEATURE_NAMES)
    matrix = np.vstack(rows) if rows else np.zeros((0, width))
    return TrainingSet(FEATURE_NAMES, matrix, np.asarray(y, dtype=np.int64), snapshots, loan_ids)


def time_split(data: TrainingSet) -> tuple[np.ndarray, dt.date]:
    """Mask of hold-out rows (the latest snapshots with >= ``HOLDOUT_SHARE`` of the rows)."""
    months = sorted(set(data.snapshots))
    if len(months) < 2:
        raise NotEnoughHistory("Training needs loans from at least two months.")
    counts: dict[dt.date, int] = defaultdict(int)
    for snapshot in data.snapshots:
        counts[snapshot] += 1
    taken, first = 0, months[-1]
    for month in reversed(months[1:]):
        taken, first = taken + counts[month], month
        if taken >= HOLDOUT_SHARE * len(data.snapshots):
            break
    holdout = np.asarray([s >= first for s in data.snapshots])
    return holdout, first


def _check_sample(y_train: np.ndarray, y_holdout: np.ndarray) -> None:
    bads, holdout_bads = int(y_train.sum()), int(y_holdout.sum())
    if bads < MIN_BADS or holdout_bads < MIN_HOLDOUT_BADS:
        raise NotEnoughHistory(
            f"Not enough loans that went {BAD_DPD}+ days past due: {bads} to train on "
            f"(at least {MIN_BADS}), {holdout_bads} in the hold-out (at least {MIN_HOLDOUT_BADS})."
        )
    if len(y_train) - bads < MIN_BADS or len(y_holdout) - holdout_bads < MIN_HOLDOUT_BADS:
        raise NotEnoughHistory("Not enough loans repaid in time to train and evaluate a model.")


# --- evaluation ---------------------------------------------------------------------------------


def scorecard_of(model: CreditModel) -> sc.Scorecard:
    return sc.Scorecard.from_json(
        features=model.features,
        bins=model.bins,
        coefficients=model.coefficients,
        intercept=model.intercept,
    )


def _evaluation(y: np.ndarray, probability: np.ndarray) -> dict[str, Any]:
    return {
        "rows": len(y),
        "bads": int(y.sum()),
        "bad_rate": round(float(y.mean()), 6),
        "auc": round(sc.auc(y, probability), 6),
        "ks": round(sc.ks(y, probability), 6),
    }


def _metrics(
    card: sc.Scorecard, data: TrainingSet, holdout: np.ndarray, first: dt.date
) -> dict[str, Any]:
    train_p = card.probability(data.matrix[~holdout], data.names)
    holdout_x, holdout_y = data.matrix[holdout], data.y[holdout]
    holdout_p = card.probability(holdout_x, data.names)
    baseline = np.nan_to_num(holdout_x[:, data.names.index(BASELINE_FEATURE)], nan=0.0)
    return {
        "target": f"loan reached {BAD_DPD} days past due",
        "train": {**_evaluation(data.y[~holdout], train_p), "snapshots_before": first.isoformat()},
        "holdout": {
            **_evaluation(holdout_y, holdout_p),
            "snapshots_from": first.isoformat(),
            "calibration": sc.calibration(holdout_y, holdout_p),
            "baseline": {
                "rule": f"rank by {BASELINE_FEATURE}",
                "auc": round(sc.auc(holdout_y, baseline), 6),
            },
        },
    }


def _candidates(data: TrainingSet, holdout: np.ndarray, names: tuple[str, ...]) -> dict[str, Any]:
    """IV of every candidate feature on the training rows (kept or not), for the record."""
    train_x, train_y = data.matrix[~holdout], data.y[~holdout]
    return {
        name: round(sc.fit_bins(train_x[:, data.names.index(name)], train_y).iv, 6)
        for name in names
    }


def default_as_of() -> dt.date:
    """Yesterday, the last closed business day, in the platform's time zone."""
    return clock.business_date(settings.TIME_ZONE) - dt.timedelta(days=1)


def _feature_names(features: Sequence[str] | None) -> tuple[str, ...]:
    if not features:
        return FEATURE_NAMES
    unknown = sorted(set(features) - set(FEATURE_NAMES))
    if unknown:
        message = f"Unknown features: {', '.join(unknown)}."
        raise ValidationFailed(message, fields={"features": [message]})
    return tuple(f for f in FEATURE_NAMES if f in set(features))


@dataclass
class Fitted:
    """A scorecard fitted on the training rows, with its metrics and the rows it was judged on."""

    card: sc.Scorecard
    metrics: dict[str, Any]
    data: TrainingSet
    holdout: np.ndarray


def scorecard_fit(
    *, as_of: dt.date, features: Sequence[str] | None = None, program_id: int | None = None
) -> Fitted:
    """Fit a scorecard on the history known on ``as_of`` and measure it on the hold-out; writes
    nothing. ``features`` restricts the candidates (default: all); ``program_id`` takes one
    program's loans. Raises ``NotEnoughHistory`` (422)."""
    names = _feature_names(features)
    data = training_set(as_of, program_id=program_id)
    holdout, first = time_split(data)
    _check_sample(data.y[~holdout], data.y[holdout])
    columns = [data.names.index(n) for n in names]
    card = sc.fit_scorecard(data.matrix[~holdout][:, columns], names, data.y[~holdout])
    metrics = _metrics(card, data, holdout, first)
    metrics["candidates_iv"] = _candidates(data, holdout, names)
    return Fitted(card, metrics, data, holdout)


def promotion(fitted: Fitted, current: CreditModel | None) -> tuple[bool, str, dict[str, Any]]:
    """(promote?, refusal reason, comparison) of a fitted model against the promoted one."""
    new_auc, data, holdout = fitted.metrics["holdout"]["auc"], fitted.data, fitted.holdout
    if new_auc < MIN_AUC:
        return False, f"Hold-out AUC {new_auc:.4f} is below the floor {MIN_AUC}.", {}
    if current is None:
        return True, "", {}
    current_p = scorecard_of(current).probability(data.matrix[holdout], data.names)
    current_auc = sc.auc(data.y[holdout], current_p)
    comparison = {
        "current_version": current.version,
        "current_auc_same_holdout": round(current_auc, 6),
    }
    if new_auc < current_auc:
        reason = (
            f"Worse than the promoted model v{current.version} on the same hold-out "
            f"(AUC {new_auc:.4f} < {current_auc:.4f})."
        )
        return False, reason, comparison
    return True, "", comparison


def promoted_model() -> CreditModel | None:
    return CreditModel.objects.filter(promoted=True).first()
