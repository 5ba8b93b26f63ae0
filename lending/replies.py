"""The finance click's reply as plain data: the loan and its decision exactly as the API's
``LoanOutput`` and ``FinanceOutput`` describe them (``lending.serializers``), built without DRF.

The finance service stores this reply in the click's own transaction (the idempotent replay), so it
cannot import the serializers (services never import the API layer); the serializers build their
fields from the same lists and the same ``loan_schedule``. A test compares the two bodies for every
outcome (``tests/lending/test_loan_body.py``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.utils import timezone

from scf import clock

from .engine import reasons_for_agent
from .models import Loan
from .services.terms import interest_for, interest_still_to_post


def loan_schedule(loan: Loan) -> list[dict[str, Any]]:
    """The repayment schedule: one bullet instalment, principal plus interest to maturity.

    Before disbursement it is an estimate from today; after, accrued interest plus the interest
    still to accrue on the outstanding principal until the due date.
    """
    today = clock.business_date(loan.program.time_zone)
    if loan.value_date is None:
        principal = loan.principal
        days = max((loan.due_date - today).days, 0)
        interest = interest_for(principal, loan.annual_rate, days, loan.day_count)
    else:
        principal = loan.outstanding_principal
        days = max((loan.due_date - max(today, loan.value_date)).days, 0)
        # Rounded once over the whole life, as the accruals will be at maturity: the interest
        # posted so far and the rest rounded apart could be a cent off the exact total.
        interest = loan.accrued_interest + interest_still_to_post(
            numerator=loan.interest_numerator,
            posted=loan.interest_posted_cumulative,
            principal=principal,
            annual_rate=loan.annual_rate,
            nights=days,
            day_count=loan.day_count,
        )
    return [
        {
            "due_date": loan.due_date,
            "principal": principal,
            "interest": interest,
            "total": principal + interest,
        }
    ]


# The loan's amounts (two places) and moments, in the reply's order; shared by ``LoanOutput``
# and ``loan_body``.
MONEY_FIELDS = (
    "order_amount",
    "principal",
    "outstanding_principal",
    "accrued_interest",
    "accrued_penalty",
    "reserved_amount",
)
MOMENT_FIELDS = ("requested_at", "decided_at", "approved_at", "disbursed_at", "closed_at")


_CENT, _BASIS_POINT, _MICRO = Decimal("0.01"), Decimal("0.0001"), Decimal("0.000001")


def _fixed(value: Decimal | None, places: Decimal) -> str | None:
    """A ``DecimalField``'s text: rounded to its places as DRF rounds (the decimal context's
    rounding), fixed point."""
    return None if value is None else f"{value.quantize(places):f}"


def _date(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def _datetime(value: dt.datetime | None) -> str | None:
    """A ``DateTimeField``'s text: in the current time zone, ISO 8601, ``Z`` for UTC."""
    if value is None:
        return None
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def loan_body(loan: Loan) -> dict[str, Any]:
    """``LoanOutput(loan).data``, written out: the finance reply is built on every click, and
    DRF's generic field walk was most of its cost. A test compares the two for every outcome
    and a disbursed, repaid loan; a field added to ``LoanOutput`` fails it until added here."""
    body: dict[str, Any] = {
        "id": loan.pk,
        "order": loan.order_id,
        "order_external_id": str(loan.order.external_id),
        "agent": loan.agent_id,
        "agent_code": str(loan.agent.code),
        "program": loan.program_id,
        "status": str(loan.status),
        "currency": str(loan.currency),
    }
    for name in MONEY_FIELDS:
        body[name] = _fixed(getattr(loan, name), _CENT)
    body["advance_rate"] = _fixed(loan.advance_rate, _BASIS_POINT)
    body["annual_rate"] = _fixed(loan.annual_rate, _MICRO)
    body["penalty_rate"] = _fixed(loan.penalty_rate, _MICRO)
    body["day_count"] = str(loan.day_count)
    body["tenor_days"] = int(loan.tenor_days)
    body["grace_days"] = int(loan.grace_days)
    body["value_date"] = _date(loan.value_date)
    body["due_date"] = _date(loan.due_date)
    body["days_past_due"] = int(loan.days_past_due)
    body["reference"] = str(loan.reference)
    for name in MOMENT_FIELDS:
        body[name] = _datetime(getattr(loan, name))
    body["schedule"] = [
        {
            "due_date": _date(item["due_date"]),
            "principal": _fixed(item["principal"], _CENT),
            "interest": _fixed(item["interest"], _CENT),
            "total": _fixed(item["total"], _CENT),
        }
        for item in loan_schedule(loan)
    ]
    return body


def finance_reply_body(loan: Loan) -> dict[str, Any]:
    """The body ``FinanceOutput`` describes, built with the shared serializers. Only the agent
    who clicked reads it: the reasons are the agent's (``reasons_for_agent``)."""
    decision = loan.decision
    reasons = reasons_for_agent(decision.reasons)
    return {"loan": loan_body(loan), "decision": {"outcome": decision.outcome, "reasons": reasons}}
