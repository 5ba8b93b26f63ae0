"""Loans at a given point of their life, with credit and ledger exactly as the services leave them.

``pending_loan`` reserves its principal on the line and program (``in_review`` also gets its
open referral case; ``disbursing`` its payment requested by ``disbursement_request``). ``disbursed_loan`` is a pending loan paid out by the disbursement service
(``settle``: ``disbursement_request`` then ``disbursement_settle``): ``active``, value date set,
the ledger entry ``disburse:<loan>`` posted and the reservation consumed, so ``book_check`` finds
nothing to report.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction

from lending.models import CreditLine, Disbursement, Loan, LoanStatus, Review, ReviewKind
from lending.services.credit import line_reserve, program_reserve
from lending.services.disbursement import disbursement_request, disbursement_settle
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
    paying = status == LoanStatus.DISBURSING  # decided, then its payment requested
    loan = Loan.objects.create(
        program=program,
        credit_line=line,
        agent=line.agent,
        order=order,
        status=LoanStatus.APPROVED if paying else status,
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
    if paying:
        disbursement_request(loan=loan)
    return loan


def settle(loan: Loan, *, value_date: dt.date, due_date: dt.date | None = None) -> Loan:
    """Pay out an ``approved`` (or ``disbursing``) loan through the disbursement service, settled
    on ``value_date``
    (10:00 in the program's zone): active, ledger posted, credit consumed. ``due_date`` replaces
    the one the service computes from the value date."""
    zone = ZoneInfo(loan.program.time_zone)
    # One transaction: the payment task queued on commit finds the disbursement settled already.
    with transaction.atomic():
        if loan.status == LoanStatus.APPROVED:
            disbursement = disbursement_request(loan=loan)
        else:  # already paying out
            disbursement = Disbursement.objects.get(loan=loan)
        disbursement_settle(
            disbursement_id=disbursement.pk,
            bank_reference=f"TEST-{loan.pk}",
            settled_at=dt.datetime.combine(value_date, dt.time(10), tzinfo=zone),
        )
        if due_date is not None:
            Loan.objects.filter(pk=loan.pk).update(due_date=due_date)
    loan.refresh_from_db()
    return loan


def pay_out(loan: Loan, *, value_date: dt.date, due_date: dt.date) -> Loan:
    """The disbursement of ``loan`` settled on ``value_date``: active, ledger, credit consumed."""
    return settle(loan, value_date=value_date, due_date=due_date)


def disbursed_loan(
    line: CreditLine, *, value_date: dt.date, due_date: dt.date, **fields: Any
) -> Loan:
    """An ``active`` loan paid out on ``value_date``; ``fields`` set more columns afterwards."""
    loan = pay_out(pending_loan(line), value_date=value_date, due_date=due_date)
    if fields:
        Loan.objects.filter(pk=loan.pk).update(**fields)
        loan.refresh_from_db()
    return loan
