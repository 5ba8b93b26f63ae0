"""Quote and finance an order: the agent's "Finance this order" click.

The business flow, in order: read the order and the agent's line (locked: sales order -> credit
line, ``lending.locks``) with the decision's facts; quote the terms (``terms_for``); decide
(``engine.decide``, Python, no I/O); write the decision's rows (``finance_write``) with the
program's conditional reservation; reply. If the program ran out between the line lock and the
reservation, nothing was written and the request is decided again, now declined with
``insufficient_program_limit``. An approved loan's payment is handed to the process's relay
after commit (``disbursement_queue``).

The reads and the write are the click's hand-written SQL (``finance_hotpath``): three statements
in one transaction, the shared program row locked only by the last, for one round trip and the
commit.

Under a program with tripartite terms enabled, the line read also brings the terms, the agent's
free margin and its agreement, the engine runs the tripartite rules, and the write statement
commits the margin first, conditionally (``lending.services.margin_finance``): no more round
trips than any other click.

Several banks may run programs with one enterprise, and an agent may hold lines in more than one:
the quote then carries one offer per program (``Quote.offers``) and the click may name its
program (``{"program": id}``, read on the business path, ``program_choice.chosen_line``); without
one, the first offer's program (the lowest id) decides, as with a single program.

``loan_finance_once`` is the click with an ``Idempotency-Key`` (the API and the portal): after
the user's rate limit (``scf.throttling``, one count for every door), the key's claim comes first
in the same transaction, and the reply is written by the same statement as the rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction

from orders.models import SalesOrder, User
from scf import clock
from scf.errors import ApplicationError, Conflict, NotFound
from scf.throttling import rate_limit

from .. import engine
from ..locks import lines_locked
from ..models import CreditLine, Loan, Program, ProgramStatus
from ..selectors.programs import offer_lines
from . import finance_hotpath as hotpath
from .finance_hotpath import Facts
from .finance_record import FinanceRows
from .finance_write import decision_write, rows_for
from .idempotency import (
    StoredReply,
    canonical,
    idempotency_claim,
    idempotency_store,
    request_fingerprint,
)
from .margin_finance import TripartiteFacts, tripartite_facts
from .program_choice import chosen_line, program_param
from .terms import Terms, terms_for

BIGINT_MAX = 2**63 - 1


class NotConfigured(ApplicationError):
    status_code = 422


@dataclass(frozen=True)
class Quote:
    order: SalesOrder
    program: Program
    terms: Terms
    decision: engine.DecisionResult
    tripartite: TripartiteFacts | None = None

    @property
    def margin_required(self) -> Decimal | None:
        return self.tripartite.required if self.tripartite is not None else None

    @property
    def margin_free(self) -> Decimal | None:
        return self.tripartite.free if self.tripartite is not None else None

    # With several programs able to finance the order: one quote per program, the first being
    # this one (the default choice); empty with one.
    offers: tuple[Quote, ...] = ()

    @property
    def agent_reasons(self) -> list[dict[str, str]]:
        """The reasons as the agent who asked may read them (no bank thresholds)."""
        return engine.reasons_for_agent(self.decision.reasons)


def _order_for_agent(user: User, order_id: int, *, lock: bool) -> SalesOrder:
    """The caller's order with its agent (locked when ``lock``); ``NotFound`` for anyone else's."""
    if not 0 < order_id <= BIGINT_MAX:  # no order has it, and PostgreSQL refuses the parameter
        raise NotFound("No such order.")
    order = hotpath.order_read(agent_id=user.agent_id, order_id=order_id, lock=lock)
    if order is None:
        raise NotFound("No such order.")
    return order


def pick_program(programs: Sequence[Program], order: SalesOrder) -> Program:
    """Among the order's enterprise's ``programs`` (by id), the one that decides the order: the
    first active one in its currency, else the first (the engine then says why not)."""
    for program in programs:
        if program.currency == order.currency and program.status == ProgramStatus.ACTIVE:
            return program
    if programs:
        return programs[0]
    raise NotConfigured("No financing program covers this order.", code="no_program")


def program_for_order(order: SalesOrder) -> Program:
    """The first program the agent has a line in among the enterprise's active programs in the
    order's currency (the first offer); failing that, ``pick_program``'s choice."""
    lines = offer_lines(order)
    if lines:
        return lines[0].program
    return pick_program(
        list(Program.objects.filter(enterprise_id=order.enterprise_id).order_by("id")), order
    )


NO_CREDIT_LINE = "The agent has no credit line in this program."


def _line_for(order: SalesOrder, program: Program, *, lock: bool) -> CreditLine:
    lines = CreditLine.objects.filter(agent_id=order.agent_id, program=program)
    line = (lines_locked(lines) if lock else lines).first()
    if line is None:
        raise NotConfigured(NO_CREDIT_LINE, code="no_credit_line")
    return line


def _chosen_program_and_line(
    order: SalesOrder, program_id: int, *, lock: bool
) -> tuple[Program, CreditLine, Facts]:
    """``_program_and_line`` for a request that names its program: the agent's line in it
    (``program_choice.chosen_line``: 404 for a program not offered) and the ``Facts``."""
    facts = hotpath.facts_read(order, reserve_loan_id=lock)
    if facts.already_financed and lock:
        raise OrderAlreadyFinanced("This order has already been financed.")
    line = chosen_line(order, program_id, lock=lock)
    return line.program, line, facts


def _program_and_line(order: SalesOrder, *, lock: bool) -> tuple[Program, CreditLine, Facts]:
    """The agent's line (locked when ``lock``) in the program ``program_for_order`` picks, its
    program and enterprise, and the decision's ``Facts``, in one query
    (``finance_hotpath.line_read``); the rare misconfigured cases fall back to
    ``program_for_order`` and ``_line_for`` for their errors."""
    found = hotpath.line_read(order, lock=lock)
    if found is not None:
        return found
    facts = hotpath.facts_read(order, reserve_loan_id=lock)
    if facts.already_financed and lock:
        raise OrderAlreadyFinanced("This order has already been financed.")
    program = program_for_order(order)
    return program, _line_for(order, program, lock=lock), facts


def decision_inputs(
    order: SalesOrder,
    program: Program,
    line: CreditLine,
    principal: Decimal,
    facts: Facts,
    *,
    program_available: Decimal | None = None,
    tripartite: TripartiteFacts | None = None,
    business_date: dt.date | None = None,
) -> engine.DecisionInputs:
    return engine.DecisionInputs(
        order_id=order.pk,
        order_status=order.status,
        order_amount=order.amount,
        order_currency=order.currency,
        order_date=order.order_date,
        business_date=business_date or clock.business_date(program.time_zone),
        already_financed=facts.already_financed,
        agent_status=order.agent.status,
        relationship_active=facts.relationship_active,
        agent_max_dpd=facts.agent_max_dpd,
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
        max_order_future_days=settings.ORDER_DATE_MAX_FUTURE_DAYS,
        max_dpd_tolerated=program.max_dpd_tolerated,
        principal=principal,
        refer_rules=tuple(program.refer_rules or ()),
        tripartite=tripartite.inputs() if tripartite is not None else None,
    )


def _tripartite(
    order: SalesOrder, program: Program, terms: Terms, facts: Facts, *, lock: bool
) -> TripartiteFacts | None:
    """The tripartite facts when the program's terms are enabled (read with the line; the
    fallback read of ``_program_and_line`` does not say, so ask then)."""
    read = facts.tripartite
    if read is not None:
        return (
            TripartiteFacts.from_read(read, order.amount, terms.principal) if read.enabled else None
        )
    return tripartite_facts(
        program=program,
        agent_id=order.agent_id,
        order_amount=order.amount,
        principal=terms.principal,
        lock=lock,
    )


def loan_quote(*, user: User, order_id: int) -> Quote:
    """What financing this order would give, and whether it would be approved now. Writes
    nothing; counts against the user's ``quote`` rate limit (``RateLimited`` over it)."""
    rate_limit(user_id=user.pk, scope="quote")
    order = _order_for_agent(user, order_id, lock=False)
    program, line, facts = _program_and_line(order, lock=False)
    quote = _quote_in(order, program, line, facts)
    lines = offer_lines(order)
    if len(lines) < 2:
        return quote
    # The tripartite read that came with the line is that program's: others read their own.
    unread = replace(facts, tripartite=None)
    offers = [
        _quote_in(order, other.program, other, facts if other.program_id == program.pk else unread)
        for other in lines
    ]
    return replace(quote, offers=tuple(offers))


def _quote_in(order: SalesOrder, program: Program, line: CreditLine, facts: Facts) -> Quote:
    """What the program would lend on the order and what the engine would decide now."""
    terms = terms_for(program, order.amount, clock.business_date(program.time_zone))
    tri = _tripartite(order, program, terms, facts, lock=False)
    inputs = decision_inputs(order, program, line, terms.principal, facts, tripartite=tri)
    return Quote(order, program, terms, engine.decide(inputs), tri)


class OrderAlreadyFinanced(Conflict):
    code = "order_already_financed"


@transaction.atomic
def loan_finance(
    *, user: User, order_id: int, program_id: int | None = None, at: dt.datetime | None = None
) -> Loan:
    """Decide a finance request and, when approved or referred, reserve its credit; in
    ``program_id`` when named (``program_choice.chosen_line``).

    Raises ``NotFound`` (not the caller's order, or a program it is not offered), ``Conflict``
    ``order_already_financed``, or ``NotConfigured`` (no program or line). A declined request is
    a loan with status ``declined`` and its reasons, not an error. ``at``: the moment it is
    decided (default now), for a request recorded as of an earlier day (the demo's seed).
    """
    return _decide_and_write(user, order_id, reply_to=None, program_id=program_id, at=at).loan


def loan_finance_once(
    *, user: User, order_id: int, key: str, body: Mapping[str, Any]
) -> StoredReply:
    """``loan_finance`` at most once per (user, ``Idempotency-Key``): the API's and the portal's
    click. One transaction: claim the key (``idempotency_claim``; a concurrent click with the
    same key waits on it, then replays), decide, and write the decision's rows together with the
    reply (one statement on PostgreSQL). A domain error (404, 409, 422) is a reply too, stored
    on the claim: it is raised before anything else is written, so no savepoint is needed. Any
    other failure rolls the claim back with the rest, and the same key can be tried again.

    The user's ``finance`` rate limit is counted first, whichever door the click came through:
    over it, ``RateLimited`` is raised before the key is claimed, so nothing is written and the
    same key can be sent again after the wait."""
    rate_limit(user_id=user.pk, scope="finance")
    scope = f"finance:{order_id}"
    fingerprint = request_fingerprint(scope, dict(body))
    with transaction.atomic():
        record_id, replay = idempotency_claim(
            user_id=user.pk, key=key, scope=scope, fingerprint=fingerprint
        )
        if replay is not None:
            return replay
        assert record_id is not None
        try:
            program_id = program_param(body)
            rows = _decide_and_write(user, order_id, reply_to=record_id, program_id=program_id)
        except ApplicationError as exc:
            reply = StoredReply(
                exc.status_code,
                canonical({"code": exc.code, "detail": exc.detail, "fields": exc.fields}),
            )
            idempotency_store(record_id=record_id, reply=reply)
            return reply
    assert rows.reply is not None
    return rows.reply


def _decide_and_write(
    user: User,
    order_id: int,
    *,
    reply_to: int | None,
    program_id: int | None = None,
    at: dt.datetime | None = None,
) -> FinanceRows:
    """The decision and its rows, written; inside the caller's transaction. ``reply_to``: the
    claimed idempotency record to store the reply on, in the same write."""
    order = _order_for_agent(user, order_id, lock=True)
    if program_id is None:
        program, line, facts = _program_and_line(order, lock=True)
    else:
        program, line, facts = _chosen_program_and_line(order, program_id, lock=True)
    if facts.already_financed:
        raise OrderAlreadyFinanced("This order has already been financed.")
    now = at or clock.now()
    today = clock.business_date(program.time_zone, now)
    terms = terms_for(program, order.amount, today)
    tri = _tripartite(order, program, terms, facts, lock=True)
    inputs = decision_inputs(
        order, program, line, terms.principal, facts, tripartite=tri, business_date=today
    )
    decision = engine.decide(inputs)
    rows = rows_for(user, order, program, line, terms, decision, facts, reply_to, tri, now=now)
    if decision_write(rows, tri, now=now):
        return rows
    # The program ran out between the line lock and the reservation (or, under tripartite terms,
    # a withdrawal took the free margin): decide again on current figures (declined,
    # insufficient_program_limit or insufficient_margin); nothing was written.
    program.refresh_from_db(fields=["outstanding_principal", "reserved", "limit"])
    if tri is not None:  # the margin account read again, locked this time
        tri = _tripartite(order, program, terms, replace(facts, tripartite=None), lock=True)
    inputs = decision_inputs(
        order,
        program,
        line,
        terms.principal,
        facts,
        program_available=program.available,
        tripartite=tri,
        business_date=today,
    )
    decision = engine.decide(inputs)
    rows = rows_for(user, order, program, line, terms, decision, facts, reply_to, tri, now=now)
    if not decision_write(rows, tri, now=now):
        raise RuntimeError(f"order {order.pk}: a decision without a reservation was refused")
    return rows
