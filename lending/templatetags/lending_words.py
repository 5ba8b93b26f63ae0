"""Template filters that put the lending codes into words (see ``lending.views.words``)."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from django import template

from ..views.words import audit, decisions, reviews, statuses, word

register = template.Library()


@register.filter
def loan_status(code: Any) -> str:
    return word(statuses.LOAN_STATUS, str(code))


@register.filter
def review_status(code: Any) -> str:
    return word(statuses.REVIEW_STATUS, str(code))


@register.filter
def review_kind(code: Any) -> str:
    return word(statuses.REVIEW_KIND, str(code))


@register.filter
def claim_status(code: Any) -> str:
    return word(statuses.CLAIM_STATUS, str(code))


@register.filter
def hold_status(code: Any) -> str:
    return word(statuses.HOLD_STATUS, str(code))


@register.filter
def release_status(code: Any) -> str:
    return word(statuses.RELEASE_STATUS, str(code))


@register.filter
def breach_status(code: Any) -> str:
    return word(statuses.BREACH_STATUS, str(code))


@register.filter
def disbursement_status(code: Any) -> str:
    return word(statuses.DISBURSEMENT_STATUS, str(code))


@register.filter
def account(code: Any) -> str:
    return word(statuses.ACCOUNT, str(code))


@register.filter
def entry_kind(code: Any) -> str:
    return word(statuses.ENTRY_KIND, str(code))


@register.filter
def reason(code: Any, fallback: str = "") -> str:
    return word(decisions.REASONS, str(code), fallback)


@register.filter
def decline_reason(code: Any) -> str:
    return word(reviews.DECLINE_REASONS, str(code))


@register.filter
def audit_action(code: Any) -> str:
    return audit.audit_action(str(code))


@register.filter
def note_action(code: Any) -> str:
    return word(reviews.NOTE_ACTIONS, str(code))


@register.filter
def rule_outcome(code: Any) -> str:
    return word(decisions.RULE_OUTCOME, str(code))


@register.filter
def percent_of(part: Any, whole: Any) -> str:
    """``part`` as a percentage of ``whole`` for a CSS width (``"37.5"``), clamped to 0-100."""
    try:
        total, share = Decimal(str(whole)), Decimal(str(part))
    except InvalidOperation:
        return "0"
    if not total.is_finite() or not share.is_finite() or total <= 0:
        return "0"
    ratio = min(max(share * 100 / total, Decimal(0)), Decimal(100))
    return str(ratio.quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN))


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    """``mapping[key]`` or ``None`` (for dicts a view computed per row, such as offers)."""
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.filter
def iso_datetime(value: Any) -> dt.datetime | None:
    """An ISO 8601 timestamp stored as text (review notes) as a datetime, for ``|date``."""
    try:
        return dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
