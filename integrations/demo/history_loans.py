"""A planned loan's rows: the loan, its repayment, decision, disbursement and ledger entry."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from lending.models import AccountCode, EntryKind
from lending.services.terms import interest_for

from .history_context import Context, from_cents
from .history_plan import PlannedLoan


def loan_row(
    ctx: Context, loan: PlannedLoan, keys: tuple[int, int, int, int], order_cents: int
) -> Decimal:
    """Write one loan (and what hangs off it); returns the principal still open."""
    loan_id, line_id, agent_id, order_id = keys
    program, principal = ctx.program, from_cents(loan.principal)
    repaid = loan.repaid_on <= ctx.today
    dpd = 0 if repaid else max(0, (ctx.today - loan.due_date).days)
    requested = ctx.at(loan.value_date - dt.timedelta(days=1), 9)
    ctx.tables["loan"].add(
        id=loan_id,
        program_id=program.pk,
        credit_line_id=line_id,
        agent_id=agent_id,
        order_id=order_id,
        status="repaid" if repaid else ("overdue" if dpd > 0 else "active"),
        currency=program.currency,
        order_amount=from_cents(order_cents),
        principal=principal,
        advance_rate=program.advance_rate,
        annual_rate=program.annual_rate,
        penalty_rate=program.penalty_rate,
        day_count=program.day_count,
        tenor_days=program.tenor_days,
        grace_days=program.grace_days,
        outstanding_principal=Decimal("0.00") if repaid else principal,
        days_past_due=dpd,
        value_date=loan.value_date,
        due_date=loan.due_date,
        reference=f"{ctx.prefix}L{loan_id}",
        requested_at=requested,
        decided_at=requested,
        approved_at=requested,
        disbursed_at=ctx.at(loan.value_date, 10),
        closed_at=ctx.at(loan.repaid_on, 16) if repaid else None,
    )
    return Decimal("0.00") if repaid else principal


def repayment_row(ctx: Context, loan: PlannedLoan, loan_id: int, ids: dict[str, Any]) -> None:
    """Principal, interest for the days lent and penalty for the days past grace, in one payment."""
    program, principal = ctx.program, from_cents(loan.principal)
    late = max(0, (loan.repaid_on - loan.due_date).days - program.grace_days)
    days = (loan.repaid_on - loan.value_date).days
    interest = interest_for(principal, program.annual_rate, days, program.day_count)
    penalty = interest_for(principal, program.penalty_rate, late, program.day_count)
    ctx.tables["repayment"].add(
        id=next(ids["repayment"]),
        loan_id=loan_id,
        reference=f"{ctx.prefix}-R{loan_id}",
        amount=principal + interest + penalty,
        currency=program.currency,
        value_date=loan.repaid_on,
        source="bank_statement",
        to_penalty=penalty,
        to_interest=interest,
        to_principal=principal,
        to_overpayment=Decimal("0.00"),
        backdated=False,
        recorded_by="synthetic-history",
        received_at=ctx.at(loan.repaid_on, 11),
    )


def detail_rows(ctx: Context, loan: PlannedLoan, loan_id: int, ids: dict[str, Any]) -> None:
    """The loan's decision and settled disbursement; an open loan's disbursement entry."""
    program, principal = ctx.program, from_cents(loan.principal)
    decided = ctx.at(loan.value_date - dt.timedelta(days=1), 9)
    settled = ctx.at(loan.value_date, 10)
    ctx.tables["decision"].add(
        id=next(ids["decision"]),
        loan_id=loan_id,
        outcome="approved",
        inputs={"source": "synthetic history"},
        engine_version="synthetic-history",
        decided_at=decided,
    )
    enterprise = program.enterprise
    ctx.tables["disbursement"].add(
        id=next(ids["disbursement"]),
        loan_id=loan_id,
        end_to_end_id=f"{ctx.prefix}E{loan_id}",
        amount=principal,
        currency=program.currency,
        creditor_name=enterprise.settlement_account_name or enterprise.name,
        creditor_account=enterprise.settlement_account_no or "0",
        creditor_bank=enterprise.settlement_bank,
        status="settled",
        attempts=1,
        created_at=decided,
        sent_at=settled,
        settled_at=settled,
    )
    if loan.repaid_on > ctx.today:
        _disbursement_entry(ctx, loan, loan_id, ids)


def _disbursement_entry(ctx: Context, loan: PlannedLoan, loan_id: int, ids: dict[str, Any]) -> None:
    """Dr principal receivable (the loan) / Cr settlement: an open loan's balance in the ledger."""
    program, principal, entry_id = ctx.program, from_cents(loan.principal), next(ids["entry"])
    ctx.tables["entry"].add(
        id=entry_id,
        kind=EntryKind.DISBURSEMENT.value,
        idempotency_key=f"{ctx.prefix}:disburse:{loan_id}",
        business_date=loan.value_date,
        currency=program.currency,
        loan_id=loan_id,
        program_id=program.pk,
        description="Synthetic history: disbursement settled",
        posted_at=ctx.at(loan.value_date, 10),
    )
    for account, debit, credit, line_loan in (
        (AccountCode.PRINCIPAL_RECEIVABLE, principal, Decimal("0.00"), loan_id),
        (AccountCode.SETTLEMENT, Decimal("0.00"), principal, None),
    ):
        ctx.tables["entry_line"].add(
            id=next(ids["entry_line"]),
            entry_id=entry_id,
            account=account.value,
            loan_id=line_loan,
            currency=program.currency,
            debit=debit,
            credit=credit,
        )
