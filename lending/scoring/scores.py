"""Scoring a feature frame with a scorecard: probabilities, grades, points, reason codes.

The nightly job and the API use the same function, so a score is the same wherever it is
computed: deterministic for a given model version and feature values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import scorecard as sc
from .features import BY_NAME, FeatureFrame


@dataclass(frozen=True)
class Scores:
    """A frame's scores, row for row."""

    probability: np.ndarray
    grades: list[str]
    points: np.ndarray
    reasons: list[list[str]]


def score_frame(frame: FeatureFrame, card: sc.Scorecard) -> Scores:
    probability = card.probability(frame.matrix, frame.names)
    return Scores(
        probability=probability,
        grades=sc.grades_of(probability),
        points=sc.points_of(probability),
        reasons=card.reasons(frame.matrix, frame.names),
    )


def reason_entries(features: list[str], values: dict[str, str | None]) -> list[dict[str, Any]]:
    """Stored reason codes: code, feature, the agent's value and the explanation."""
    return [
        {
            "code": BY_NAME[name].reason_code,
            "feature": name,
            "value": values.get(name),
            "detail": BY_NAME[name].reason,
        }
        for name in features
    ]
