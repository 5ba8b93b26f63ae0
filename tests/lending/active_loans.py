"""Active loans for the accrual, COB and repayment tests, paid out by the disbursement service.

A loan is decided (``approved``, its principal reserved on its line and program), then paid out
by ``disbursement_request`` and ``disbursement_settle`` (``loan_makers.settle``): ``active``
with its value date set, ``outstanding_principal = principal``, the ledger entry
``disburse:<loan>`` posted, and the principal counted as outstanding on its line and program.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.core.management import call_command

from lending.models import CreditLine, Loan, LoanStatus
from lending.services.credit import line_reserve, program_reserve
from lending.services.terms import due_date_for
from tests.lending.factories import CreditLineFactory, ProgramFactory
from tests.lending.loan_makers import settle
from tests.orders.factories import OrderFactory

BIG_LIMIT = Decimal("100000000.00")


def money_line(agent: Any, enterprise: Any, **program_terms: Any) -> CreditLine:
    """A credit line in a fresh program with room for large loans; ``program_terms`` override."""
    program = ProgramFactory(
        enterprise=enterprise,
        limit=BIG_LIMIT,
        max_principal=BIG_LIMIT,
        **program_terms,
    )
    return CreditLineFactory(agent=agent, program=program, limit=BIG_LIMIT)


def active_loan(
    line: CreditLine,
    *,
    principal: str,
    value_date: dt.date,
    due_date: dt.date | None = None,
    **terms: Any,
) -> Loan:
    """A loan disbursed on ``value_date``; ``terms`` override the program's (annual_rate...)."""
    program = line.program
    amount = Decimal(principal)
    order = OrderFactory(agent=line.agent, enterprise=program.enterprise, amount=amount)
    tenor = terms.pop("tenor_days", program.tenor_days)
    now = dt.datetime.combine(value_date, dt.time(1), tzinfo=dt.UTC)
    loan = Loan.objects.create(
        program=program,
        credit_line=line,
        agent=line.agent,
        order=order,
        status=LoanStatus.APPROVED,
        currency=program.currency,
        order_amount=amount,
        principal=amount,
        advance_rate=Decimal("1.0000"),
        annual_rate=terms.pop("annual_rate", program.annual_rate),
        penalty_rate=terms.pop("penalty_rate", program.penalty_rate),
        day_count=terms.pop("day_count", program.day_count),
        tenor_days=tenor,
        grace_days=terms.pop("grace_days", program.grace_days),
        reserved_amount=amount,
        due_date=due_date_for(value_date, tenor, program.holiday_country),
        reference=f"SCF{order.pk:09d}",
        requested_at=now,
        decided_at=now,
        approved_at=now,
        **terms,
    )
    line_reserve(line_id=line.pk, amount=amount)
    program_reserve(program_id=program.pk, amount=amount)
    return settle(loan, value_date=value_date, due_date=due_date)


def books_balance() -> None:
    """``ledger_check`` passes (it raises CommandError, failing the test, on any difference)."""
    call_command("ledger_check", stdout=_Sink())


class _Sink:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        return None
