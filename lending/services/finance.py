"""Quote and finance an order: the agent's "Finance this order" click.

``loan_finance`` is one transaction of three statements on PostgreSQL:
1. lock the sales order, reading its agent (one decision per order at a time);
2. lock the agent's credit line, reading in the same query its program and enterprise and the
   decision's facts: is the order already financed (409), the agent's relationship and worst
   days past due, and the new loan's id from its sequence. The statement starts after the order
   lock is held, so its snapshot sees every loan an earlier holder of that lock committed;
3. run the engine (Python, no I/O), then write everything the decision needs in one statement
   (``lending.services.finance_record``): the program's conditional reservation, the line's, the
   loan, its decision, its review case (referred) or its ``Disbursement`` outbox row with the loan
   already ``disbursing`` (approved), and the audit rows. The shared program row is locked only
   by that last statement, so it is held for one round trip and the commit. If the program ran
   out in the meantime, the statement writes nothing and the request is decided again, now
   declined with ``insufficient_program_limit``.
The payment is handed to the process's relay after commit (``disbursement_queue``). Locks are
always taken in the order sales order -> credit line -> program.

``loan_finance_once`` is the click with an ``Idempotency-Key`` (the API and the portal): after
the user's rate limit (``scf.throttling``, one count for every door), the key's claim comes first
in the same transaction, and the reply is written by the statement of
step 3: four statements in one transaction (after the token lookup, five in all).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from orders.models import Agent, AgentRelationship, CoreEnterprise, SalesOrder, User
from scf import clock
from scf.errors import ApplicationError, Conflict, NotFound
from scf.sql import execute_prepared, model_from_row, select_list
from scf.throttling import rate_limit

from .. import engine
from ..models import (
    HOLDS_ORDER,
    OPEN,
    Agreement,
    AgreementStatus,
    BreachStatus,
    CreditLine,
    Loan,
    MarginAccount,
    Program,
    ProgramStatus,
    ReleaseBreach,
    TripartiteTerms,
)
from ..replies import finance_reply_body
from .credit import ProgramExhausted
from .finance_record import (
    FinanceRows,
    finance_rows_build,
    finance_rows_write,
    finance_rows_write_orm,
)
from .idempotency import (
    StoredReply,
    canonical,
    idempotency_claim,
    idempotency_store,
    request_fingerprint,
)
from .margin_finance import MarginRead, TripartiteFacts, margin_commit, tripartite_facts
from .margin_hotpath import margin_members
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

    @property
    def agent_reasons(self) -> list[dict[str, str]]:
        """The reasons as the agent who asked may read them (no bank thresholds)."""
        return engine.reasons_for_agent(self.decision.reasons)


def _for_update(of: str, lock: bool) -> str:
    return f" FOR UPDATE OF {of}" if lock and connection.features.has_select_for_update_of else ""


@lru_cache(maxsize=4)
def _order_sql(lock: bool, vendor: str) -> str:
    """The order-and-agent read (built once per process and backend)."""
    qn = connection.ops.quote_name
    return (
        f"SELECT {select_list(SalesOrder, 'o')}, {select_list(Agent, 'a')} "  # noqa: S608 - names from code
        f"FROM {qn(SalesOrder._meta.db_table)} o JOIN {qn(Agent._meta.db_table)} a "
        f"ON a.id = o.agent_id WHERE o.id = %s AND o.agent_id = %s{_for_update('o', lock)}"
    )


def _order_for_agent(user: User, order_id: int, *, lock: bool) -> SalesOrder:
    """The caller's order with its agent (locked when ``lock``); ``NotFound`` for anyone else's."""
    if not 0 < order_id <= BIGINT_MAX:  # no order has it, and PostgreSQL refuses the parameter
        raise NotFound("No such order.")
    with connection.cursor() as cursor:
        execute_prepared(cursor, _order_sql(lock, connection.vendor), [order_id, user.agent_id])
        row = cursor.fetchone()
    if row is None:
        raise NotFound("No such order.")
    order, end = model_from_row(SalesOrder, row)
    order.agent, _ = model_from_row(Agent, row, end)
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
    """The enterprise's program in the order's currency (or, failing that, any of its programs)."""
    return pick_program(
        list(Program.objects.filter(enterprise_id=order.enterprise_id).order_by("id")), order
    )


NO_CREDIT_LINE = "The agent has no credit line in this program."


def _line_for(order: SalesOrder, program: Program, *, lock: bool) -> CreditLine:
    lines = CreditLine.objects.filter(agent_id=order.agent_id, program=program)
    if lock:
        lines = lines.select_for_update()
    line = lines.first()
    if line is None:
        raise NotConfigured(NO_CREDIT_LINE, code="no_credit_line")
    return line


@lru_cache(maxsize=4)
def _line_sql(lock: bool, vendor: str) -> str:
    """The line-program-enterprise-facts read (built once per process and backend)."""
    qn = connection.ops.quote_name
    programs = qn(Program._meta.db_table)
    agreements = qn(Agreement._meta.db_table)
    breaches = qn(ReleaseBreach._meta.db_table)
    return (
        f"SELECT {select_list(CreditLine, 'l')}, {select_list(Program, 'p')}, "  # noqa: S608 - names from code
        f"{select_list(CoreEnterprise, 'e')}, {_facts_sql_text(lock, vendor)}, "
        f"t.id, t.margin_ratio, t.security_ratio, m.id, m.free, CASE WHEN t.id IS NOT NULL THEN "
        f"EXISTS (SELECT 1 FROM {agreements} a WHERE a.program_id = p.id "
        f"AND a.agent_id = l.agent_id AND a.status = '{AgreementStatus.ACTIVE.value}') END, "
        f"CASE WHEN t.id IS NOT NULL THEN EXISTS (SELECT 1 FROM {breaches} b "
        f"WHERE b.agent_id = l.agent_id AND b.status = '{BreachStatus.OPEN.value}') END "
        f"FROM {qn(CreditLine._meta.db_table)} l JOIN {programs} p ON p.id = l.program_id "
        f"JOIN {qn(CoreEnterprise._meta.db_table)} e ON e.id = p.enterprise_id "
        # The tripartite terms, if enabled, and the agent's margin account (read, not locked:
        # the margin's commit is conditional on it, in the decision's statement).
        f"LEFT JOIN {qn(TripartiteTerms._meta.db_table)} t ON t.program_id = p.id AND t.enabled "
        f"LEFT JOIN {qn(MarginAccount._meta.db_table)} m ON t.id IS NOT NULL "
        f"AND m.program_id = p.id AND m.agent_id = l.agent_id "
        f"WHERE l.agent_id = %s AND l.program_id = (SELECT id FROM {programs} "
        f"WHERE enterprise_id = %s AND currency = %s AND status = %s ORDER BY id LIMIT 1)"
        f"{_for_update('l', lock)}"
    )


def _program_and_line(order: SalesOrder, *, lock: bool) -> tuple[Program, CreditLine, Facts]:
    """The agent's line (locked when ``lock``) in the program ``program_for_order`` picks, its
    program and enterprise, and the decision's ``Facts``, in one query; the rare misconfigured
    cases fall back to ``program_for_order`` and ``_line_for`` for their errors."""
    params = [*_facts_params(order, reserve_loan_id=lock), order.agent_id, order.enterprise_id]
    params += [order.currency, ProgramStatus.ACTIVE.value]
    with connection.cursor() as cursor:
        execute_prepared(cursor, _line_sql(lock, connection.vendor), params)
        row = cursor.fetchone()
    if row is None:
        facts = _facts(order, reserve_loan_id=lock)
        if facts.already_financed and lock:
            raise OrderAlreadyFinanced("This order has already been financed.")
        program = program_for_order(order)
        return program, _line_for(order, program, lock=lock), facts
    line, end = model_from_row(CreditLine, row)
    program, end = model_from_row(Program, row, end)
    program.enterprise, end = model_from_row(CoreEnterprise, row, end)
    line.program = program
    facts, margin = row[end : end + 4], row[end + 4 :]
    return program, line, _facts_from(facts, tripartite=MarginRead.of(tuple(margin)))


@dataclass(frozen=True)
class Facts:
    """What the decision needs beyond the order, line and program, read in one query."""

    already_financed: bool
    relationship_active: bool
    agent_max_dpd: int
    loan_id: int | None  # reserved from the loan id sequence (PostgreSQL), else None
    tripartite: MarginRead | None = None  # the program's tripartite terms (None: not read)


@lru_cache(maxsize=1)
def _loan_sequence() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [Loan._meta.db_table])
        return str(cursor.fetchone()[0])


@lru_cache(maxsize=4)
def _facts_sql_text(reserve_loan_id: bool, vendor: str) -> str:
    """The select-list items of ``Facts``: is the order already financed, is the agent's
    relationship active, its worst days past due, and (to write a loan) the new loan's id."""
    qn = connection.ops.quote_name
    loans, relationships = qn(Loan._meta.db_table), qn(AgentRelationship._meta.db_table)
    holds = ", ".join(["%s"] * len(HOLDS_ORDER))
    open_ = ", ".join(["%s"] * len(OPEN))
    reserve = reserve_loan_id and vendor == "postgresql"
    return (
        f"EXISTS (SELECT 1 FROM {loans} WHERE order_id = %s AND status IN ({holds})), "  # noqa: S608 - names from code
        f"EXISTS (SELECT 1 FROM {relationships} WHERE agent_id = %s AND enterprise_id = %s "
        f"AND active), "
        f"(SELECT MAX(days_past_due) FROM {loans} WHERE agent_id = %s AND status IN ({open_})), "
        + ("nextval(%s)" if reserve else "NULL")
    )


def _facts_params(order: SalesOrder, *, reserve_loan_id: bool) -> list[Any]:
    params: list[Any] = [order.pk, *HOLDS_ORDER, order.agent_id, order.enterprise_id]
    params += [order.agent_id, *OPEN]
    if reserve_loan_id and connection.vendor == "postgresql":
        params.append(_loan_sequence())
    return params


def _facts_from(values: Sequence[Any], *, tripartite: MarginRead | None = None) -> Facts:
    financed, related, max_dpd, loan_id = values
    return Facts(bool(financed), bool(related), int(max_dpd or 0), loan_id, tripartite)


def _facts(order: SalesOrder, *, reserve_loan_id: bool = False) -> Facts:
    sql = _facts_sql_text(reserve_loan_id, connection.vendor)
    params = _facts_params(order, reserve_loan_id=reserve_loan_id)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {sql}", params)
        return _facts_from(cursor.fetchone())


def decision_inputs(
    order: SalesOrder,
    program: Program,
    line: CreditLine,
    principal: Decimal,
    facts: Facts,
    *,
    program_available: Decimal | None = None,
    tripartite: TripartiteFacts | None = None,
) -> engine.DecisionInputs:
    return engine.DecisionInputs(
        order_id=order.pk,
        order_status=order.status,
        order_amount=order.amount,
        order_currency=order.currency,
        order_date=order.order_date,
        business_date=clock.business_date(program.time_zone),
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
    terms = terms_for(program, order.amount, clock.business_date(program.time_zone))
    tri = _tripartite(order, program, terms, facts, lock=False)
    inputs = decision_inputs(order, program, line, terms.principal, facts, tripartite=tri)
    return Quote(order, program, terms, engine.decide(inputs), tri)


class OrderAlreadyFinanced(Conflict):
    code = "order_already_financed"


@transaction.atomic
def loan_finance(*, user: User, order_id: int) -> Loan:
    """Decide a finance request and, when approved or referred, reserve its credit.

    Raises ``NotFound`` (not the caller's order), ``Conflict`` ``order_already_financed``, or
    ``NotConfigured`` (no program or line). A declined request is a loan with status
    ``declined`` and its reasons, not an error.
    """
    return _decide_and_write(user, order_id, reply_to=None).loan


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
            rows = _decide_and_write(user, order_id, reply_to=record_id)
        except ApplicationError as exc:
            reply = StoredReply(
                exc.status_code,
                canonical({"code": exc.code, "detail": exc.detail, "fields": exc.fields}),
            )
            idempotency_store(record_id=record_id, reply=reply)
            return reply
    assert rows.reply is not None
    return rows.reply


def finance_reply(loan: Loan) -> StoredReply:
    """The 201 reply to a decided click, keys in the stored (canonical) order."""
    return StoredReply(201, canonical(finance_reply_body(loan)))


def _decide_and_write(user: User, order_id: int, *, reply_to: int | None) -> FinanceRows:
    """The decision and its rows, written; inside the caller's transaction. ``reply_to``: the
    claimed idempotency record to store the reply on, in the same write."""
    order = _order_for_agent(user, order_id, lock=True)
    program, line, facts = _program_and_line(order, lock=True)
    if facts.already_financed:
        raise OrderAlreadyFinanced("This order has already been financed.")
    terms = terms_for(program, order.amount, clock.business_date(program.time_zone))
    tri = _tripartite(order, program, terms, facts, lock=True)
    inputs = decision_inputs(order, program, line, terms.principal, facts, tripartite=tri)
    rows = _rows(user, order, program, line, terms, engine.decide(inputs), facts, reply_to, tri)
    if _write_with_margin(rows, tri):
        return rows
    # The program ran out between the line lock and the reservation: decide again on its
    # current figures (declined, insufficient_program_limit); nothing was written.
    program.refresh_from_db(fields=["outstanding_principal", "reserved", "limit"])
    if tri is not None:  # or the free margin (a withdrawal meanwhile): read it again, locked
        tri = _tripartite(order, program, terms, replace(facts, tripartite=None), lock=True)
    inputs = decision_inputs(
        order,
        program,
        line,
        terms.principal,
        facts,
        program_available=program.available,
        tripartite=tri,
    )
    rows = _rows(user, order, program, line, terms, engine.decide(inputs), facts, reply_to, tri)
    if not _write_with_margin(rows, tri):
        raise RuntimeError(f"order {order.pk}: a decision without a reservation was refused")
    return rows


def _write_with_margin(rows: FinanceRows, tri: TripartiteFacts | None) -> bool:
    """``_write``, and under a tripartite program, for a decision that reserves credit, the
    margin's commit: on PostgreSQL inside the decision's own statement, conditional on the free
    margin the decision saw (``margin_hotpath.margin_members``: nothing is written when a
    withdrawal took it meanwhile, and the request is decided again); otherwise (SQLite, or no
    margin account yet because nothing is required) after the rows, through the ORM."""
    if tri is None or not rows.reserved:
        return _write(rows)
    single = connection.vendor == "postgresql" and SINGLE_STATEMENT and rows.loan.pk is not None
    if single and tri.account_id is not None:
        rows.margin = margin_members(
            loan=rows.loan,
            account_id=tri.account_id,
            order_value=tri.order_value,
            margin=tri.margin,
            security=tri.security,
            business_date=clock.business_date(rows.loan.program.time_zone),
        )
        return _write(rows)
    written = _write(rows)
    if written:
        margin_commit(loan=rows.loan, facts=tri)
    return written


def _rows(
    user: User,
    order: SalesOrder,
    program: Program,
    line: CreditLine,
    terms: Terms,
    decision: engine.DecisionResult,
    facts: Facts,
    reply_to: int | None,
    tri: TripartiteFacts | None = None,
) -> FinanceRows:
    rows = finance_rows_build(
        user=user,
        order=order,
        program=program,
        line=line,
        terms=terms,
        decision=decision,
        loan_id=facts.loan_id,
        now=clock.now(),
    )
    rows.reply_record = reply_to
    if tri is not None and rows.disbursement is not None:  # the enterprise is paid loan + margin
        rows.disbursement.amount = terms.principal + tri.margin
    return rows


# One statement per decision on PostgreSQL; tests switch it off to compare with the ORM path.
SINGLE_STATEMENT = True


def _write(rows: FinanceRows) -> bool:
    """Write a decision's rows (and its reply); False (nothing written) when the program has no
    room left."""
    if connection.vendor == "postgresql" and SINGLE_STATEMENT and rows.loan.pk is not None:
        if rows.reply_record is not None:  # the loan id is known: the reply goes with the rows
            rows.reply = finance_reply(rows.loan)
        return finance_rows_write(rows)
    try:
        with transaction.atomic():
            finance_rows_write_orm(rows)
    except ProgramExhausted:
        return False
    if rows.reply_record is not None:
        rows.reply = finance_reply(rows.loan)
        idempotency_store(record_id=rows.reply_record, reply=rows.reply)
    return True
