"""Quote and finance an order: the agent's "Finance this order" click.

``loan_finance`` is one transaction:
1. lock the sales order (one decision per order at a time) and refuse a second loan (409);
2. lock the agent's credit line, read the program, gather the decision inputs;
3. run the engine; if it approves or refers, reserve the principal on the line and then, with a
   conditional UPDATE, on the program (the shared row is locked last and briefly). If the program
   ran out in the meantime, that savepoint is rolled back and the request is decided again, now
   declined with ``insufficient_program_limit``;
4. write the loan, its decision, its review case (when referred) and an audit row;
5. an approved loan goes on to ``disbursing``: its ``Disbursement`` row is the durable record,
   and the payment task is dispatched after commit.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import Max

from orders.models import AgentRelationship, SalesOrder, User
from scf import clock
from scf.errors import ApplicationError, Conflict, NotFound

from .. import engine
from ..models import (
    HOLDS_ORDER,
    OPEN,
    CreditLine,
    Decision,
    Loan,
    LoanStatus,
    Program,
    ProgramStatus,
    Review,
    ReviewKind,
)
from .audit import audit_record
from .credit import ProgramExhausted, line_reserve, program_reserve
from .disbursement import disbursement_request
from .terms import Terms, terms_for


class NotConfigured(ApplicationError):
    status_code = 422


@dataclass(frozen=True)
class Quote:
    order: SalesOrder
    program: Program
    terms: Terms
    decision: engine.DecisionResult


def _order_for_agent(user: User, order_id: int, *, lock: bool) -> SalesOrder:
    orders = SalesOrder.objects.filter(pk=order_id, agent_id=user.agent_id)
    if lock:
        orders = orders.select_for_update(of=("self",))
    order = orders.select_related("agent").first()
    if order is None:
        raise NotFound("No such order.")
    return order


def program_for_order(order: SalesOrder) -> Program:
    """The enterprise's program in the order's currency (or, failing that, any of its programs)."""
    programs = list(Program.objects.filter(enterprise_id=order.enterprise_id).order_by("id"))
    for program in programs:
        if program.currency == order.currency and program.status == ProgramStatus.ACTIVE:
            return program
    if programs:
        return programs[0]
    raise NotConfigured("No financing program covers this order.", code="no_program")


def _line_for(order: SalesOrder, program: Program, *, lock: bool) -> CreditLine:
    lines = CreditLine.objects.filter(agent_id=order.agent_id, program=program)
    if lock:
        lines = lines.select_for_update()
    line = lines.first()
    if line is None:
        raise NotConfigured("The agent has no credit line in this program.", code="no_credit_line")
    return line


def _inputs(
    order: SalesOrder,
    program: Program,
    line: CreditLine,
    principal: Decimal,
    *,
    program_available: Decimal | None = None,
) -> engine.DecisionInputs:
    relationship_active = AgentRelationship.objects.filter(
        agent_id=order.agent_id, enterprise_id=order.enterprise_id, active=True
    ).exists()
    max_dpd = Loan.objects.filter(agent_id=order.agent_id, status__in=OPEN).aggregate(
        m=Max("days_past_due")
    )["m"]
    return engine.DecisionInputs(
        order_id=order.pk,
        order_status=order.status,
        order_amount=order.amount,
        order_currency=order.currency,
        order_date=order.order_date,
        business_date=clock.business_date(program.time_zone),
        already_financed=Loan.objects.filter(order=order, status__in=HOLDS_ORDER).exists(),
        agent_status=order.agent.status,
        relationship_active=relationship_active,
        agent_max_dpd=max_dpd or 0,
        line_limit=line.limit,
        line_available=line.available,
        line_frozen=line.frozen,
        risk_grade=line.risk_grade,
        program_status=program.status,
        program_currency=program.currency,
        program_available=program.available if program_available is None else program_available,
        min_principal=program.min_principal,
        max_principal=program.max_principal,
        auto_approve_limit=program.auto_approve_limit,
        auto_approve_grade=program.auto_approve_grade,
        max_order_age_days=program.max_order_age_days,
        max_dpd_tolerated=program.max_dpd_tolerated,
        principal=principal,
        refer_rules=tuple(program.refer_rules or ()),
    )


def loan_quote(*, user: User, order_id: int) -> Quote:
    """What financing this order would give, and whether it would be approved now. Writes nothing."""
    order = _order_for_agent(user, order_id, lock=False)
    program = program_for_order(order)
    line = _line_for(order, program, lock=False)
    terms = terms_for(program, order.amount, clock.business_date(program.time_zone))
    decision = engine.decide(_inputs(order, program, line, terms.principal))
    return Quote(order, program, terms, decision)


@transaction.atomic
def loan_finance(*, user: User, order_id: int) -> Loan:
    """Decide a finance request and, when approved or referred, reserve its credit.

    Raises ``NotFound`` (not the caller's order), ``Conflict`` ``order_already_financed``, or
    ``NotConfigured`` (no program or line). A declined request is a loan with status
    ``declined`` and its reasons, not an error.
    """
    order = _order_for_agent(user, order_id, lock=True)
    if Loan.objects.filter(order=order, status__in=HOLDS_ORDER).exists():
        raise Conflict("This order has already been financed.", code="order_already_financed")
    program = program_for_order(order)
    line = _line_for(order, program, lock=True)
    terms = terms_for(program, order.amount, clock.business_date(program.time_zone))
    decision = engine.decide(_inputs(order, program, line, terms.principal))
    if decision.reserves_credit:
        try:
            with transaction.atomic():
                return _record(user, order, program, line, terms, decision)
        except ProgramExhausted:
            program.refresh_from_db(fields=["outstanding_principal", "reserved", "limit"])
            decision = engine.decide(
                _inputs(order, program, line, terms.principal, program_available=program.available)
            )
    return _record(user, order, program, line, terms, decision)


def _record(
    user: User,
    order: SalesOrder,
    program: Program,
    line: CreditLine,
    terms: Terms,
    decision: engine.DecisionResult,
) -> Loan:
    now = clock.now()
    reserved = terms.principal if decision.reserves_credit else Decimal("0.00")
    loan = Loan.objects.create(
        program=program,
        credit_line=line,
        agent_id=order.agent_id,
        order=order,
        status=decision.outcome,
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
        approved_at=now if decision.outcome == LoanStatus.APPROVED else None,
    )
    if reserved:
        line_reserve(line_id=line.pk, amount=reserved)
    Decision.objects.create(
        loan=loan,
        outcome=decision.outcome,
        reasons=decision.reasons,
        rules=decision.rules_json(),
        inputs=decision.inputs.as_json(),
        engine_version=engine.ENGINE_VERSION,
        decided_at=now,
    )
    if decision.outcome == LoanStatus.IN_REVIEW:
        Review.objects.create(
            loan=loan,
            kind=ReviewKind.REFERRAL,
            requires_second_approval=terms.principal > program.maker_checker_threshold,
            created_at=now,
            expires_at=now + dt.timedelta(hours=program.review_hold_hours),
        )
    audit_record(
        actor=user,
        action=f"loan.{decision.outcome}",
        obj=loan,
        after={"principal": str(loan.principal), "reasons": decision.reasons},
    )
    if decision.outcome == LoanStatus.APPROVED:
        # Inside the savepoint: a program-limit rollback also drops the queued payment.
        disbursement_request(loan=loan, actor=user)
    if reserved:
        # Last: the program row is shared by every agent, so its lock is held only from here
        # to the commit. If it no longer fits, the caller rolls this savepoint back.
        program_reserve(program_id=program.pk, amount=reserved)
    return loan
