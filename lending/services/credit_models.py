"""Training the credit model: fit a scorecard on the history, store it, promote it unless worse.

The statistics are ``lending.scoring.training`` (the training rows, the time-based hold-out, the
metrics and the promotion rule); this service stores the result and audits it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.db import transaction

from orders.models import User
from scf import clock

from ..locks import credit_models_locked
from ..models import CreditModel
from ..scoring import scorecard as sc
from ..scoring.training import default_as_of, promotion, scorecard_fit
from .audit import actor_label, audit_record


def credit_model_train(
    *,
    as_of: dt.date | None = None,
    actor: User | None = None,
    features: Sequence[str] | None = None,
    program_id: int | None = None,
) -> CreditModel:
    """Train on the history known on ``as_of`` (default yesterday), store, promote unless worse.

    ``features`` restricts the candidates (default: all); ``program_id`` trains on one program's
    loans. Raises ``NotEnoughHistory`` (422). The stored model's ``promoted`` and
    ``refusal_reason`` say what became of it. Locks the latest model row while it numbers and
    promotes, so concurrent trainings get distinct versions.
    """
    as_of = as_of or default_as_of()
    fitted = scorecard_fit(as_of=as_of, features=features, program_id=program_id)
    with transaction.atomic():
        current = credit_models_locked().filter(promoted=True).first()
        promote, reason, comparison = promotion(fitted, current)
        fitted.metrics["promotion"] = {"promoted": promote, "reason": reason, **comparison}
        model = _store(fitted.card, fitted.metrics, as_of, actor, reason)
        audit_record(
            actor=actor,
            action="credit_model.train",
            obj=model,
            after={"version": model.version, "auc": str(model.auc), "ks": str(model.ks)},
            note=reason,
        )
        if promote:
            _promote(model, current, actor)
    return model


def _store(
    card: sc.Scorecard, metrics: dict[str, Any], as_of: dt.date, actor: User | None, refusal: str
) -> CreditModel:
    latest = credit_models_locked().order_by("-version").first()
    return CreditModel.objects.create(
        version=(latest.version + 1) if latest else 1,
        trained_at=clock.now(),
        as_of=as_of,
        features=list(card.features),
        bins={f: card.bins[f].as_json() for f in card.features},
        coefficients=dict(zip(card.features, card.coefficients, strict=True)),
        intercept=card.intercept,
        grade_bands=[{"grade": g, "below": upper} for g, upper in sc.GRADE_BANDS],
        metrics=metrics,
        auc=round(metrics["holdout"]["auc"], 4),
        ks=round(metrics["holdout"]["ks"], 4),
        refusal_reason=refusal[:200],
        trained_by=actor_label(actor),
    )


def _promote(model: CreditModel, current: CreditModel | None, actor: User | None) -> None:
    now = clock.now()
    if current is not None:
        current.promoted, current.retired_at = False, now
        current.save(update_fields=["promoted", "retired_at"])
    model.promoted, model.promoted_at = True, now
    model.save(update_fields=["promoted", "promoted_at"])
    before = {"version": current.version} if current else {}
    audit_record(
        actor=actor,
        action="credit_model.promote",
        obj=model,
        before=before,
        after={"version": model.version},
    )
