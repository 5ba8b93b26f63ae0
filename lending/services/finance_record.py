"""The rows of a finance decision, built once for both ways of writing them.

A decision writes the loan, its ``Decision``, an audit row and, by outcome, a referral ``Review``
or (approved) the ``Disbursement`` outbox row with the loan already ``disbursing`` and a second
audit row (``disbursement_build``, the same builder ``disbursement_request`` uses); when credit
is reserved, the line and the program move too. ``finance_rows_build`` makes those rows as
unsaved instances; on PostgreSQL they go out in one statement
(``lending.services.finance_hotpath.rows_write``), elsewhere ``finance_rows_write_orm`` saves
them one by one. The rows are the same by construction, and a test compares both paths.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal

from orders.models import SalesOrder, User
from scf.hotpath import build

from .. import engine
from ..models import (
    AuditLog,
    CreditLine,
    Decision,
    Disbursement,
    Loan,
    LoanStatus,
    Program,
    Review,
    ReviewKind,
)
from .audit import audit_build
from .credit import line_reserve, program_reserve
from .disbursement import disbursement_build, disbursement_queue, end_to_end_id_for
from .idempotency import StoredReply
from .margin_hotpath import MarginMembers
from .terms import Terms

ZERO = Decimal("0.00")


@dataclass
class FinanceRows:
    """The rows one decision writes, built but not saved."""

    loan: Loan
    decision: Decision
    review: Review | None
    disbursement: Disbursement | None
    audits: list[AuditLog]
    reserved: Decimal
    # The claimed Idempotency-Key record and the reply to store on it with these rows.
    reply_record: int | None = None
    reply: StoredReply | None = None
    # Under a tripartite program: the margin's commit, written in the same statement.
    margin: MarginMembers | None = None


def finance_rows_build(
    *,
    user: User,
    order: SalesOrder,
    program: Program,
    line: CreditLine,
    terms: Terms,
    decision: engine.DecisionResult,
    loan_id: int | None,
    now: dt.datetime,
) -> FinanceRows:
    """The rows of a decision. An approved loan is written straight as ``disbursing`` with its
    payment recorded (the ``approved -> disbursing`` step of ``disbursement_request``, in the
    same transaction), so ``loan_id`` must be known then (reserved from the sequence)."""
    outcome = decision.outcome
    approved = outcome == LoanStatus.APPROVED
    reserved = terms.principal if decision.reserves_credit else ZERO
    loan = build(
        Loan,
        id=loan_id,
        program=program,
        credit_line=line,
        agent=order.agent,
        order=order,
        status=LoanStatus.DISBURSING if approved else outcome,
        currency=program.currency,
        order_amount=order.amount,
        principal=terms.principal,
        advance_rate=terms.advance_rate,
        annual_rate=terms.annual_rate,
        penalty_rate=program.penalty_rate,
        day_count=terms.day_count,
        tenor_days=terms.tenor_days,
        grace_days=program.grace_days,
        reserved_amount=reserved,
        due_date=terms.due_date,
        reference=f"SCF{uuid.uuid4().hex[:12].upper()}",
        requested_by=user,
        requested_at=now,
        decided_at=now,
        approved_at=now if approved else None,
    )
    rows = FinanceRows(
        loan=loan,
        decision=build(
            Decision,
            loan=loan,
            outcome=outcome,
            reasons=decision.reasons,
            rules=decision.rules_json(),
            inputs=decision.inputs.as_json(),
            engine_version=engine.ENGINE_VERSION,
            decided_at=now,
        ),
        review=None,
        disbursement=None,
        audits=[
            audit_build(
                actor=user,
                action=f"loan.{outcome}",
                obj=loan,
                after={"principal": str(loan.principal), "reasons": decision.reasons},
            )
        ],
        reserved=reserved,
    )
    if outcome == LoanStatus.IN_REVIEW:
        rows.review = build(
            Review,
            loan=loan,
            kind=ReviewKind.REFERRAL,
            requires_second_approval=terms.principal > program.maker_checker_threshold,
            created_at=now,
            expires_at=now + dt.timedelta(hours=program.review_hold_hours),
        )
    if approved:
        rows.disbursement, audit = disbursement_build(
            loan=loan, enterprise=program.enterprise, actor=user, now=now
        )
        rows.audits.append(audit)
    return rows


def finance_rows_write_orm(rows: FinanceRows) -> None:
    """The same rows through the ORM, one statement each (SQLite, and the reference the single
    statement is tested against). Raises ``ProgramExhausted`` after writing when the program has
    no room left: run it inside a savepoint and roll that back."""
    loan = rows.loan
    loan.save(force_insert=True)
    if rows.reserved:
        line_reserve(line_id=loan.credit_line_id, amount=rows.reserved)
    rows.decision.save(force_insert=True)
    if rows.review is not None:
        rows.review.save(force_insert=True)
    if rows.disbursement is not None:
        rows.disbursement.end_to_end_id = end_to_end_id_for(loan.pk)
        rows.disbursement.save(force_insert=True)
        rows.audits[-1].after["end_to_end_id"] = rows.disbursement.end_to_end_id
    for audit in rows.audits:
        audit.object_id = str(loan.pk)
        audit.save(force_insert=True)
    if rows.reserved:
        program_reserve(program_id=loan.program_id, amount=rows.reserved)
    if rows.disbursement is not None:
        disbursement_queue(rows.disbursement.pk)
