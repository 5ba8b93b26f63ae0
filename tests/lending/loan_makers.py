"""Loans at a given point of their life, with credit and ledger exactly as the services leave them.

``pending_loan`` reserves its principal on the line and program (``in_review`` also gets its
open referral case). ``disbursed_loan`` is a pending loan paid out: ``active``, value date set,
the ledger entry ``disburse:<loan>`` (Dr principal_receivable / Cr settlement) posted and the
reservation consumed (``credit_consume``), so ``book_check`` finds nothing to report.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from lending.models import (
    AccountCode,
    CreditLine,
    EntryKind,
    Loan,
    LoanStatus,
    Review,
    ReviewKind,
)
from lending.services.credit import credit_consume, line_reserve, program_reserve
from lending.services.ledger import Posting, ledger_post
from tests.orders.factories import OrderFactory

PRINCIPAL = Decimal("8000.00")


def pending_loan(
    line: CreditLine, *, status: str = LoanStatus.APPROVED, principal: Decimal = PRINCIPAL
) -> Loan:
    """A decided loan, not paid out, with its principal reserved."""
    program = line.program
    order = OrderFactory(
        agent=line.agent, enterprise=program.enterprise, amount=principal / program.advance_rate
    )
    now = dt.datetime.now(dt.UTC)
    loan = Loan.objects.create(
        program=program,
        credit_line=line,
        agent=line.agent,
        order=order,
        status=status,
        currency=program.currency,
        order_amount=order.amount,
        principal=principal,
        advance_rate=program.advance_rate,
        annual_rate=program.annual_rate,
        penalty_rate=program.penalty_rate,
        day_count=program.day_count,
        tenor_days=program.tenor_days,
        grace_days=program.grace_days,
        reserved_amount=principal,
        due_date=dt.date.today() + dt.timedelta(days=program.tenor_days),
        reference=f"SCF{uuid.uuid4().hex[:12].upper()}",
        requested_at=now,
        decided_at=now,
    )
    line_reserve(line_id=line.pk, amount=principal)
    program_reserve(program_id=program.pk, amount=principal)
    if status == LoanStatus.IN_REVIEW:
        Review.objects.create(loan=loan, kind=ReviewKind.REFERRAL, created_at=now)
    return loan


def pay_out(loan: Loan, *, value_date: dt.date, due_date: dt.date) -> Loan:
    """The disbursement of ``loan`` settled on ``value_date``: active, ledger, credit consumed."""
    loan.status = LoanStatus.ACTIVE
    loan.value_date, loan.due_date = value_date, due_date
    loan.outstanding_principal, loan.reserved_amount = loan.principal, Decimal("0.00")
    loan.disbursed_at = dt.datetime.combine(value_date, dt.time(2), tzinfo=dt.UTC)
    loan.save()
    ledger_post(
        kind=EntryKind.DISBURSEMENT,
        idempotency_key=f"disburse:{loan.pk}",
        business_date=value_date,
        currency=loan.currency,
        postings=[
            Posting.dr(AccountCode.PRINCIPAL_RECEIVABLE, loan.principal, loan=loan),
            Posting.cr(AccountCode.SETTLEMENT, loan.principal),
        ],
        loan=loan,
        program=loan.program,
        description="disbursement settled",
    )
    credit_consume(
        line_id=loan.credit_line_id,
        program_id=loan.program_id,
        reserved=loan.principal,
        principal=loan.principal,
    )
    return loan


def disbursed_loan(
    line: CreditLine, *, value_date: dt.date, due_date: dt.date, **fields: Any
) -> Loan:
    """An ``active`` loan paid out on ``value_date``; ``fields`` set more columns afterwards."""
    loan = pay_out(pending_loan(line), value_date=value_date, due_date=due_date)
    if fields:
        Loan.objects.filter(pk=loan.pk).update(**fields)
        loan.refresh_from_db()
    return loan
