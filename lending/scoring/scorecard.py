"""The scorecard: binned features, weights of evidence, logistic regression, grades, reasons.

Pure arithmetic on NumPy arrays (no database), deterministic for given inputs: quantiles use
``method="lower"``, ties are broken by position, the regression is scikit-learn's L-BFGS (no
randomness; ``random_state`` fixed anyway), and rows arrive in a fixed order.

Binning (per feature, fitted on the training rows only)
    1. candidate cut points: the quantiles 1/5 ... 4/5 of the present values (distinct ones);
       bin *i* holds ``edges[i-1] < x <= edges[i]``; missing values (NaN) get a bin of their own;
    2. a bin with fewer than 5 % of the present rows is merged into its smaller neighbour;
    3. bad rates are made monotone in *x* (the direction of the first bin to the last): the first
       adjacent pair that breaks the trend is merged until none does.

Weight of evidence of a bin, with 0.5 added to every count so that an empty class stays finite::

    WoE = ln( ((good + 0.5) / (G + 0.5 k)) / ((bad + 0.5) / (B + 0.5 k)) )

where G, B are all goods and bads and k the number of bins (positive WoE = safer than average).
Information value ``IV = sum((good/G - bad/B) * WoE)``; features under 0.02 are dropped. A missing
bin never seen in training has WoE 0 (neutral).

Model: ``log-odds(bad) = intercept + sum(coef_j * WoE_j(x_j))`` by logistic regression (L2,
C = 1). Since a higher WoE means safer, every coefficient must be negative; while one is not
(collinear features), the wrong-signed feature with the lowest IV is dropped and the model refit.

Probability ``p = 1 / (1 + exp(-log-odds))`` of a loan going 30+ days past due. Grades by
probability band: A < 2 %, B < 5 %, C < 10 %, D < 20 %, E otherwise. Points (for people, not for
decisions): ``600 + 20 / ln 2 * ln(((1 - p) / p) / 50)``: 600 at odds of 50 good to 1 bad, 20
points more for each doubling of the odds.

Reason codes: feature j adds ``coef_j * WoE_j(x_j)`` to the log-odds; its best possible bin adds
``min_b(coef_j * WoE_j(b))``. The difference is what the feature costs the agent; the (at most)
three costliest features are the reasons, largest first (ties in feature order).

Metrics: AUC (``roc_auc_score``), KS (the largest ``TPR - FPR`` on the ROC curve) and, per grade,
the count, the mean predicted probability and the observed bad rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, roc_curve

MAX_BINS = 5
MIN_BIN_SHARE = 0.05
SMOOTHING = 0.5
MIN_IV = 0.02
REGULARISATION_C = 1.0
RANDOM_STATE = 0
TOP_REASONS = 3
GRADE_BANDS: tuple[tuple[str, float], ...] = (
    ("A", 0.02),
    ("B", 0.05),
    ("C", 0.10),
    ("D", 0.20),
    ("E", 1.0),
)
GRADES = tuple(grade for grade, _ in GRADE_BANDS)
BASE_POINTS, BASE_ODDS, POINTS_TO_DOUBLE = 600, 50.0, 20.0
EPSILON = 1e-6


@dataclass(frozen=True)
class Bins:
    """A feature's bins: cut points, WoE per bin (and for missing), IV, (good, bad) counts."""

    edges: tuple[float, ...]
    woe: tuple[float, ...]
    missing_woe: float
    iv: float
    counts: tuple[tuple[int, int], ...]

    def assign(self, x: np.ndarray) -> np.ndarray:
        """Bin index per value; -1 for missing."""
        index = np.searchsorted(np.asarray(self.edges, dtype=np.float64), x, side="left")
        return np.where(np.isnan(x), -1, index)

    def transform(self, x: np.ndarray) -> np.ndarray:
        index = self.assign(x)
        table = np.asarray(self.woe, dtype=np.float64)
        return np.where(index < 0, self.missing_woe, table[np.clip(index, 0, len(table) - 1)])

    def as_json(self) -> dict[str, Any]:
        return {
            "edges": list(self.edges),
            "woe": list(self.woe),
            "missing_woe": self.missing_woe,
            "iv": self.iv,
            "counts": [list(c) for c in self.counts],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Bins:
        return cls(
            edges=tuple(float(e) for e in data["edges"]),
            woe=tuple(float(w) for w in data["woe"]),
            missing_woe=float(data["missing_woe"]),
            iv=float(data["iv"]),
            counts=tuple((int(g), int(b)) for g, b in data["counts"]),
        )


# --- binning ------------------------------------------------------------------------------------


def _bin_counts(x: np.ndarray, edges: list[float]) -> np.ndarray:
    return np.bincount(np.searchsorted(edges, x, side="left"), minlength=len(edges) + 1)


def _quantile_edges(x: np.ndarray) -> list[float]:
    if x.size == 0:
        return []
    levels = np.linspace(0, 1, MAX_BINS + 1)[1:-1]
    cuts = np.unique(np.quantile(x, levels, method="lower"))
    return [float(c) for c in cuts if c < x.max()]


def _merge_small(x: np.ndarray, edges: list[float]) -> list[float]:
    """Merge bins under ``MIN_BIN_SHARE`` of the rows into their smaller neighbour."""
    edges = list(edges)
    floor = MIN_BIN_SHARE * x.size
    while edges:
        counts = _bin_counts(x, edges)
        small = int(np.argmin(counts))
        if counts[small] >= floor:
            break
        if small == 0:
            edges.pop(0)
        elif small == len(counts) - 1:
            edges.pop()
        else:
            left_smaller = counts[small - 1] <= counts[small + 1]
            edges.pop(small - 1 if left_smaller else small)
    return edges


def _bad_rates(x: np.ndarray, y: np.ndarray, edges: list[float]) -> np.ndarray:
    index = np.searchsorted(edges, x, side="left")
    bads = np.bincount(index, weights=y, minlength=len(edges) + 1)
    counts = np.bincount(index, minlength=len(edges) + 1)
    return bads / np.maximum(counts, 1)


def _monotone(x: np.ndarray, y: np.ndarray, edges: list[float]) -> list[float]:
    """Merge adjacent bins until bad rates run one way, first to last bin."""
    edges = list(edges)
    while edges:
        rates = _bad_rates(x, y, edges)
        direction = 1.0 if rates[-1] >= rates[0] else -1.0
        steps = np.diff(rates) * direction
        broken = np.flatnonzero(steps < 0)
        if broken.size == 0:
            break
        edges.pop(int(broken[0]))
    return edges


def _woe(good: np.ndarray, bad: np.ndarray, total_good: int, total_bad: int) -> np.ndarray:
    k = good.size
    good_share = (good + SMOOTHING) / (total_good + SMOOTHING * k)
    bad_share = (bad + SMOOTHING) / (total_bad + SMOOTHING * k)
    return np.log(good_share / bad_share)


def fit_bins(x: np.ndarray, y: np.ndarray) -> Bins:
    """Bin one feature (NaN = missing) against the 0/1 target ``y`` (1 = bad)."""
    present = ~np.isnan(x)
    xs, ys = x[present], y[present]
    edges = _monotone(xs, ys, _merge_small(xs, _quantile_edges(xs)))
    index = np.searchsorted(edges, xs, side="left")
    bad = np.bincount(index, weights=ys, minlength=len(edges) + 1)
    good = np.bincount(index, minlength=len(edges) + 1) - bad
    missing_bad = float(y[~present].sum())
    missing_good = float((~present).sum()) - missing_bad
    has_missing = missing_good + missing_bad > 0
    all_good = np.append(good, missing_good) if has_missing else good
    all_bad = np.append(bad, missing_bad) if has_missing else bad
    total_good, total_bad = int(all_good.sum()), int(all_bad.sum())
    woe = _woe(all_good, all_bad, total_good, total_bad)
    iv = float(np.sum((all_good / max(total_good, 1) - all_bad / max(total_bad, 1)) * woe))
    return Bins(
        edges=tuple(edges),
        woe=tuple(float(w) for w in woe[: len(edges) + 1]),
        missing_woe=float(woe[-1]) if has_missing else 0.0,
        iv=iv,
        counts=tuple((int(g), int(b)) for g, b in zip(all_good, all_bad, strict=True)),
    )


# --- the model ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scorecard:
    """Bins and coefficients of the features a model uses, in a fixed order."""

    features: tuple[str, ...]
    bins: dict[str, Bins]
    coefficients: tuple[float, ...]
    intercept: float

    def woe_matrix(self, matrix: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
        """WoE of each of this model's features, from a matrix whose columns are ``names``."""
        columns = [self.bins[f].transform(matrix[:, names.index(f)]) for f in self.features]
        return np.column_stack(columns) if columns else np.zeros((matrix.shape[0], 0))

    def log_odds(self, matrix: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
        woe = self.woe_matrix(matrix, names)
        return self.intercept + woe @ np.asarray(self.coefficients, dtype=np.float64)

    def probability(self, matrix: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.log_odds(matrix, names)))

    def reasons(
        self, matrix: np.ndarray, names: tuple[str, ...], top: int = TOP_REASONS
    ) -> list[list[str]]:
        """Per row, the features that cost the most against their best bin, costliest first."""
        if not self.features:
            return [[] for _ in range(matrix.shape[0])]
        coefficients = np.asarray(self.coefficients, dtype=np.float64)
        contribution = self.woe_matrix(matrix, names) * coefficients
        best = np.array(
            [
                min(c * w for w in self.bins[f].woe)
                for f, c in zip(self.features, coefficients, strict=True)
            ]
        )
        cost = contribution - best
        order = np.argsort(-cost, axis=1, kind="stable")[:, :top]
        return [
            [self.features[j] for j in row if cost[i, j] > EPSILON] for i, row in enumerate(order)
        ]

    def as_json(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "bins": {f: self.bins[f].as_json() for f in self.features},
            "coefficients": dict(zip(self.features, self.coefficients, strict=True)),
            "intercept": self.intercept,
        }

    @classmethod
    def from_json(
        cls,
        *,
        features: list[str],
        bins: dict[str, Any],
        coefficients: dict[str, float],
        intercept: float,
    ) -> Scorecard:
        return cls(
            features=tuple(features),
            bins={f: Bins.from_json(bins[f]) for f in features},
            coefficients=tuple(float(coefficients[f]) for f in features),
            intercept=float(intercept),
        )


def _regression(woe: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    model = LogisticRegression(
        C=REGULARISATION_C, solver="lbfgs", max_iter=1000, random_state=RANDOM_STATE
    )
    model.fit(woe, y)
    return model.coef_[0].copy(), float(model.intercept_[0])


def fit_scorecard(matrix: np.ndarray, names: tuple[str, ...], y: np.ndarray) -> Scorecard:
    """Bin every feature, keep those with IV >= ``MIN_IV``, fit, drop wrong signs, refit."""
    all_bins = {name: fit_bins(matrix[:, j], y) for j, name in enumerate(names)}
    kept = [name for name in names if all_bins[name].iv >= MIN_IV]
    while True:
        probe = Scorecard(tuple(kept), all_bins, tuple(0.0 for _ in kept), 0.0)
        woe = probe.woe_matrix(matrix, names)
        if not kept:
            rate = float(np.clip(y.mean(), EPSILON, 1 - EPSILON))
            return Scorecard((), {}, (), math.log(rate / (1 - rate)))
        coefficients, intercept = _regression(woe, y)
        wrong = [f for f, c in zip(kept, coefficients, strict=True) if c >= 0]
        if not wrong:
            bins = {f: all_bins[f] for f in kept}
            return Scorecard(tuple(kept), bins, tuple(float(c) for c in coefficients), intercept)
        kept.remove(min(wrong, key=lambda f: (all_bins[f].iv, kept.index(f))))


# --- grades, points, metrics --------------------------------------------------------------------


def grades_of(probability: np.ndarray) -> list[str]:
    bounds = np.asarray([upper for _, upper in GRADE_BANDS[:-1]], dtype=np.float64)
    index = np.searchsorted(bounds, probability, side="right")
    return [GRADES[i] for i in index]


def points_of(probability: np.ndarray) -> np.ndarray:
    p = np.clip(probability, EPSILON, 1 - EPSILON)
    factor = POINTS_TO_DOUBLE / math.log(2)
    return np.rint(BASE_POINTS + factor * np.log(((1 - p) / p) / BASE_ODDS)).astype(np.int64)


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` (higher = riskier); 0.5 with one class only."""
    if y.min() == y.max():
        return 0.5
    return float(roc_auc_score(y, score))


def ks(y: np.ndarray, score: np.ndarray) -> float:
    if y.min() == y.max():
        return 0.0
    fpr, tpr, _ = roc_curve(y, score)
    return float(np.max(tpr - fpr))


def calibration(y: np.ndarray, probability: np.ndarray) -> list[dict[str, Any]]:
    """Per grade: rows, bads, mean predicted probability and observed bad rate."""
    grades = np.asarray(grades_of(probability))
    table = []
    for grade in GRADES:
        mask = grades == grade
        count = int(mask.sum())
        table.append(
            {
                "grade": grade,
                "count": count,
                "bads": int(y[mask].sum()),
                "predicted": round(float(probability[mask].mean()), 6) if count else None,
                "observed": round(float(y[mask].mean()), 6) if count else None,
            }
        )
    return table
