"""The database's money CHECKs hold to the cent on every backend.

On SQLite (the demo's database) money columns are doubles: ``0.10 + 0.20`` is not ``0.30``, so
a CHECK written as a plain sum refused a repayment whose parts add up exactly, and a line used
to its very last cent. The CHECKs compare amounts rounded to the cent (``in_cents``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from lending.models import CreditLine, Loan, Repayment
from tests.lending.active_loans import active_loan, money_line


@pytest.fixture
def loan(agent: Any, enterprise: Any) -> Loan:
    line = money_line(agent, enterprise)
    return active_loan(line, principal="1000.00", value_date=dt.date(2026, 11, 2))


def repayment(loan: Loan, amount: str, **parts: str) -> Repayment:
    return Repayment.objects.create(
        loan=loan,
        reference=f"R-{amount}-{len(parts)}",
        amount=D(amount),
        currency=loan.currency,
        value_date=dt.date(2026, 11, 3),
        source="api",
        recorded_by="test",
        received_at=timezone.now(),
        **{name: D(value) for name, value in parts.items()},
    )


@pytest.mark.django_db
def test_a_repayment_whose_parts_add_up_to_the_cent_is_stored(loan: Loan) -> None:
    stored = repayment(loan, "0.30", to_interest="0.10", to_principal="0.20")
    assert Repayment.objects.get(pk=stored.pk).amount == D("0.30")


@pytest.mark.django_db
def test_a_repayment_whose_parts_miss_by_a_cent_is_refused(loan: Loan) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        repayment(loan, "0.31", to_interest="0.10", to_principal="0.20")
    assert not Repayment.objects.exists()


@pytest.mark.django_db
def test_a_line_used_to_its_last_cent_is_within_its_limit_and_one_more_cent_is_not(
    loan: Loan,
) -> None:
    line = CreditLine.objects.get(pk=loan.credit_line_id)
    CreditLine.objects.filter(pk=line.pk).update(
        limit=D("0.30"), outstanding_principal=D("0.10"), reserved=D("0.20")
    )
    assert CreditLine.objects.get(pk=line.pk).available == D("0.00")
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditLine.objects.filter(pk=line.pk).update(reserved=D("0.21"))
    assert CreditLine.objects.get(pk=line.pk).reserved == D("0.20")
