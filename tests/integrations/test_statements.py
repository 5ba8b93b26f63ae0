"""Bank statement import: incoming credits matched to loans by reference, applied once."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from integrations.bank import bank_adapter
from integrations.tasks_events import import_bank_statement
from lending.models import Repayment
from scf import clock
from tests.lending.active_loans import active_loan, books_balance, money_line

pytestmark = pytest.mark.django_db


@pytest.fixture
def loan(agent: Any, enterprise: Any) -> Any:
    today = clock.business_date("Asia/Shanghai")
    line = money_line(agent, enterprise)
    return active_loan(line, principal="8000.00", value_date=today - dt.timedelta(days=10))


def pay_in(reference: str, amount: str, bank_reference: str) -> None:
    bank_adapter().credit_incoming(
        amount=Decimal(amount),
        currency="CNY",
        debtor_name="Agent",
        remittance_info=reference,
        bank_reference=bank_reference,
        value_date=clock.business_date("Asia/Shanghai"),
    )


def test_credit_naming_a_loan_becomes_a_repayment_once(loan):
    pay_in(loan.reference, "3000.00", "BANK-REF-1")
    assert import_bank_statement.delay().get() == {
        "credits": 1,
        "applied": 1,
        "duplicates": 0,
        "unmatched": 0,
        "refused": 0,
    }
    repayment = Repayment.objects.get(reference="BANK-REF-1")
    assert repayment.loan_id == loan.pk and repayment.amount == Decimal("3000.00")
    assert repayment.source == "bank_statement"
    # Waterfall: interest first. 10 days at 5.4% ACT/360 on 8,000.00 = 12.00; the rest principal.
    assert (repayment.to_interest, repayment.to_principal) == (Decimal("12.00"), Decimal("2988.00"))
    loan.refresh_from_db()
    assert loan.outstanding_principal == Decimal("5012.00")
    # The next import sees nothing new; re-reading the same credit would not apply it again.
    assert import_bank_statement.delay().get()["credits"] == 0
    assert Repayment.objects.count() == 1
    books_balance()


def test_unmatched_and_refused_credits_are_skipped(loan):
    pay_in("NO-SUCH-LOAN", "10.00", "BANK-REF-2")
    pay_in(loan.reference, "8000.00", "BANK-REF-3")
    result = import_bank_statement.delay().get()
    assert (result["unmatched"], result["applied"]) == (1, 1)
    assert not Repayment.objects.filter(reference="BANK-REF-2").exists()
    books_balance()
