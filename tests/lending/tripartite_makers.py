"""TEST FIXTURES: financed tripartite loans with their goods held, written row by row.

They leave the rows as the finance path does (terms, agreement, margin account, loan, goods hold
and the ledger of the margin's round trip: deposit, commit, paid out to the enterprise with the
loan), so the release, breach and claim services can be tested on their own. ``tripartite_loan``
is the one entry point; it does not go through the engine.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import ROUND_DOWN, Decimal
from typing import Any

from django.db.models import F

from lending.models import (
    AccountCode,
    Agreement,
    CreditLine,
    EntryKind,
    GoodsHold,
    GuaranteeType,
    Loan,
    LoanStatus,
    MarginAccount,
    MarginMovement,
    MarginMovementKind,
    Program,
    TripartiteTerms,
)
from lending.services.ledger import Posting, ledger_post
from lending.services.terms import due_date_for
from orders.models import SalesOrderLine
from tests.orders.factories import OrderFactory

CENT = Decimal("0.01")


def tripartite_terms(program: Program, **fields: Any) -> TripartiteTerms:
    """The program's terms (enabled, 30 % margin, buyback, caps 10 million) unless ``fields``."""
    defaults: dict[str, Any] = {
        "enabled": True,
        "margin_ratio": Decimal("0.3000"),
        "guarantee_type": GuaranteeType.BUYBACK,
        "trigger_dpd": 60,
        "claim_window_days": 30,
        "program_cap": Decimal("10000000.00"),
    }
    defaults.update(fields)
    terms, created = TripartiteTerms.objects.get_or_create(program=program, defaults=defaults)
    if not created and fields:
        TripartiteTerms.objects.filter(pk=terms.pk).update(**fields)
        terms.refresh_from_db()
    return terms


def agreement_for(line: CreditLine, *, agent_cap: Decimal = Decimal("10000000.00")) -> Agreement:
    found = Agreement.objects.filter(program=line.program, agent=line.agent, status="active")
    return found.first() or Agreement.objects.create(
        program=line.program, agent=line.agent, signed_on=dt.date(2026, 1, 5), agent_cap=agent_cap
    )


def margin_account_for(line: CreditLine) -> MarginAccount:
    account, _ = MarginAccount.objects.get_or_create(
        program=line.program,
        agent=line.agent,
        defaults={
            "currency": line.program.currency,
            "reference": f"MG-{line.program_id}-{line.agent_id}",
        },
    )
    return account


def tripartite_loan(
    line: CreditLine,
    *,
    order_value: str,
    value_date: dt.date,
    margin_ratio: Decimal | None = None,
    lines: list[tuple[str, str, str]] | None = None,
    due_date: dt.date | None = None,
) -> Loan:
    """An active tripartite loan of ``order_value`` financed on ``value_date``: principal
    (1 - m) x A lent and paid to the enterprise with the margin m x A; the goods held with the
    margin releasable. ``lines``: (sku, quantity, unit price) of the order, else one line."""
    program = line.program
    terms = tripartite_terms(program)
    m = terms.margin_ratio if margin_ratio is None else margin_ratio
    amount = Decimal(order_value)
    margin = (amount * m).quantize(CENT, ROUND_DOWN)
    principal = amount - margin
    order = OrderFactory(agent=line.agent, enterprise=program.enterprise, amount=amount)
    if lines:
        SalesOrderLine.objects.filter(order=order).delete()
        SalesOrderLine.objects.bulk_create(
            SalesOrderLine(
                order=order,
                line_no=n,
                sku=sku,
                quantity=Decimal(q),
                unit_price=Decimal(p),
                amount=Decimal(q) * Decimal(p),
            )
            for n, (sku, q, p) in enumerate(lines, start=1)
        )
    agreement_for(line)
    account = margin_account_for(line)
    loan = Loan.objects.create(
        program=program,
        credit_line=line,
        agent=line.agent,
        order=order,
        status=LoanStatus.ACTIVE,
        currency=program.currency,
        order_amount=amount,
        principal=principal,
        advance_rate=Decimal(1) - m,
        annual_rate=program.annual_rate,
        penalty_rate=program.penalty_rate,
        day_count=program.day_count,
        tenor_days=program.tenor_days,
        grace_days=program.grace_days,
        outstanding_principal=principal,
        value_date=value_date,
        due_date=due_date or due_date_for(value_date, program.tenor_days, program.holiday_country),
        reference=f"SCF{uuid.uuid4().hex[:12].upper()}",
        requested_at=dt.datetime.combine(value_date, dt.time(1), tzinfo=dt.UTC),
        disbursed_at=dt.datetime.combine(value_date, dt.time(2), tzinfo=dt.UTC),
    )
    _margin_round_trip(loan, account, margin, value_date)
    postings = [Posting.dr(AccountCode.PRINCIPAL_RECEIVABLE, principal, loan=loan)]
    if margin:
        postings.append(Posting.dr(AccountCode.MARGIN_COMMITTED, margin, loan=loan))
    postings.append(Posting.cr(AccountCode.SETTLEMENT, principal + margin, loan=loan))
    ledger_post(
        kind=EntryKind.DISBURSEMENT,
        idempotency_key=f"disburse:{loan.pk}",
        business_date=value_date,
        currency=loan.currency,
        postings=postings,
        loan=loan,
        program=program,
        description="disbursement settled (loan + margin to the enterprise)",
    )
    CreditLine.objects.filter(pk=line.pk).update(
        outstanding_principal=F("outstanding_principal") + principal
    )
    Program.objects.filter(pk=program.pk).update(
        outstanding_principal=F("outstanding_principal") + principal
    )
    now = dt.datetime.now(dt.UTC)
    GoodsHold.objects.create(
        loan=loan,
        program=program,
        agent=line.agent,
        margin_account=account,
        currency=loan.currency,
        order_value=amount,
        margin=margin,
        releasable_value=margin,
        created_at=now,
        updated_at=now,
    )
    return loan


def _margin_round_trip(
    loan: Loan, account: MarginAccount, margin: Decimal, value_date: dt.date
) -> None:
    """The agent's margin deposited and committed to the loan (paid out by the disbursement)."""
    if not margin:
        return
    now = dt.datetime.now(dt.UTC)
    for kind, entry, dr, cr in (
        (
            MarginMovementKind.DEPOSIT,
            EntryKind.MARGIN_DEPOSIT,
            AccountCode.SETTLEMENT,
            AccountCode.MARGIN_FREE,
        ),
        (
            MarginMovementKind.COMMIT,
            EntryKind.MARGIN_COMMIT,
            AccountCode.MARGIN_FREE,
            AccountCode.MARGIN_COMMITTED,
        ),
    ):
        posted = ledger_post(
            kind=entry,
            idempotency_key=f"test-{kind}:{loan.pk}",
            business_date=value_date,
            currency=loan.currency,
            postings=[Posting.dr(dr, margin, loan=loan), Posting.cr(cr, margin, loan=loan)],
            loan=loan,
            program=loan.program,
            description=f"test fixture: margin {kind}",
        )
        MarginMovement.objects.create(
            account=account,
            kind=kind,
            amount=margin,
            loan=loan,
            value_date=value_date,
            journal_entry=posted,
            created_at=now,
        )
    MarginMovement.objects.create(
        account=account,
        kind=MarginMovementKind.PAY_OUT,
        amount=margin,
        loan=loan,
        value_date=value_date,
        created_at=now,
    )


def one_night_before_trigger(loan: Loan, *, night: dt.date, trigger_dpd: int) -> Loan:
    """TEST FIXTURE: put ``loan`` where COB's night of ``night`` takes it to ``trigger_dpd`` days
    past due: due ``trigger_dpd`` days before, accrued through the day before (nothing accrued
    before: the fixture's program charges no interest unless told)."""
    Loan.objects.filter(pk=loan.pk).update(
        status=LoanStatus.OVERDUE,
        due_date=night - dt.timedelta(days=trigger_dpd),
        accrued_through=night - dt.timedelta(days=1),
        days_past_due=trigger_dpd - 1,
    )
    loan.refresh_from_db()
    return loan
