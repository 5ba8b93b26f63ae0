"""The finance reply's loan, written out by hand (``lending.replies.loan_body``), is exactly
what ``LoanOutput`` gives, for a loan at every point of its life and in any time zone."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from lending.models import LoanStatus
from lending.replies import loan_body
from lending.serializers import LoanOutput
from tests.lending.factories import CreditLineFactory, ProgramFactory
from tests.lending.loan_makers import disbursed_loan, pending_loan
from tests.orders.factories import AgentFactory

pytestmark = pytest.mark.django_db


def plain(data: Any) -> Any:
    """Serializer output as JSON would carry it (no ReturnDict/OrderedDict types)."""
    return json.loads(json.dumps(data))


@pytest.fixture
def line(enterprise: Any) -> Any:
    program = ProgramFactory(enterprise=enterprise, annual_rate=Decimal("0.087500"))
    return CreditLineFactory(agent=AgentFactory(enterprises=[enterprise]), program=program)


def loans(line: Any) -> list[Any]:
    today = dt.date.today()
    made = [pending_loan(line, status=status) for status in (LoanStatus.APPROVED, "in_review")]
    declined = pending_loan(line)
    declined.status, declined.reserved_amount = LoanStatus.DECLINED, Decimal("0.00")
    made.append(declined)
    made.append(
        disbursed_loan(
            line,
            value_date=today - dt.timedelta(days=40),
            due_date=today - dt.timedelta(days=10),
            accrued_interest=Decimal("57.33"),
            accrued_penalty=Decimal("4.10"),
            days_past_due=10,
        )
    )
    repaid = disbursed_loan(
        line, value_date=today - dt.timedelta(days=5), due_date=today + dt.timedelta(days=85)
    )
    repaid.status, repaid.outstanding_principal = LoanStatus.REPAID, Decimal("0.00")
    repaid.closed_at = timezone.now()
    made.append(repaid)
    return made


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "UTC", "America/New_York"])
def test_loan_body_is_the_serializers_output(line: Any, zone: str) -> None:
    with timezone.override(zone):
        for loan in loans(line):
            assert loan_body(loan) == plain(LoanOutput(loan).data), loan.status


def test_unrounded_values_round_as_the_serializer_rounds(line: Any) -> None:
    loan = pending_loan(line)
    loan.principal = Decimal("100.005")  # half-even: 100.00, as DRF's default context rounds
    loan.accrued_interest = Decimal("0.015")
    loan.annual_rate = Decimal("0.0875005")
    loan.reference = ""
    body = loan_body(loan)
    assert body == plain(LoanOutput(loan).data)
    assert (body["principal"], body["accrued_interest"]) == ("100.00", "0.02")
