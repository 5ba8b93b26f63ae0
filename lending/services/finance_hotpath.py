"""The finance click's hand-written SQL: why it exists and what it keeps equal to the ORM.

"Finance this order" is the platform's hottest write, and through the ORM it is a dozen statements,
most of the click's CPU spent building them in Python. This module does the same work in three
statements, each built once per process and sent as a prepared statement
(``scf.hotpath.execute_prepared``), with the model instances read and written through
``scf.hotpath`` (``model_from_row``, ``insert_select``); ``lending.services.finance`` keeps the
business flow (quote -> decide -> write -> reply) and calls the three functions here:

* ``order_read``: the sales order and its agent, locked (lock step 2 of ``lending.locks``);
* ``line_read``: the agent's credit line (locked, step 6) in the program the click picks, that
  program and its enterprise, and the decision's ``Facts`` in the same query: is the order
  already financed, is the agent's relationship active, its worst days past due, and the new
  loan's id from its sequence. The query starts after the order lock is held, so its snapshot
  sees every loan an earlier holder of that lock committed;
* ``rows_write``: every row of the decision (``lending.services.finance_record``) in one ``WITH``
  statement:

  - under a program with tripartite terms, ``marg`` behind ``prog``: the margin's conditional
    commit (``margin_hotpath``), which the line's reservation and every insert wait on; when it
    did not apply, the program's reservation alone was written and is given back. The line read
    brings the terms, the agent's free margin and agreement (left joins): no more round trips;

  - ``prog``: the program's conditional reservation (the rule is ``lending.services.credit``'s
    ``reservation_sql``, the one the ORM path uses), ``RETURNING id``. It is the only place the
    shared program row is locked (step 7), and from here to the commit is one round trip;
  - ``line``: the line's reservation, and every ``INSERT`` reads ``FROM prog``: when the program
    has no room left, ``prog`` returns no row and the statement writes nothing at all; the caller
    then decides again (declined, ``insufficient_program_limit``), with no savepoint to undo;
  - ``reply``: for a click with an ``Idempotency-Key``, the reply stored on the record claimed
    earlier in the transaction, applied only when the loan was written.

Anywhere but PostgreSQL (SQLite, the demo) the reads are plain ``execute`` and the rows go through
the ORM (``finance_rows_write_orm``); a test compares both write paths on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.db import connection
from django.db.models import Model

from orders.models import Agent, AgentRelationship, CoreEnterprise, SalesOrder
from scf.hotpath import (
    Member,
    execute_prepared,
    insert_select,
    model_from_row,
    select_list,
    with_statement,
)

from ..locks import for_update_of
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
from .credit import reservation_sql
from .disbursement import disbursement_queue
from .finance_record import FinanceRows
from .idempotency import idempotency_store_sql
from .margin_finance import MarginRead


@dataclass(frozen=True)
class Facts:
    """What the decision needs beyond the order, line and program, read in one query."""

    already_financed: bool
    relationship_active: bool
    agent_max_dpd: int
    loan_id: int | None  # reserved from the loan id sequence (PostgreSQL), else None
    tripartite: MarginRead | None = None  # the program's tripartite terms (None: not read)


def _lock_clause(alias: str, lock: bool) -> str:
    return for_update_of(alias) if lock else ""


@lru_cache(maxsize=4)
def _order_sql(lock: bool, vendor: str) -> str:
    """The order-and-agent read (built once per process and backend)."""
    qn = connection.ops.quote_name
    return (
        f"SELECT {select_list(SalesOrder, 'o')}, {select_list(Agent, 'a')} "  # noqa: S608 - names from code
        f"FROM {qn(SalesOrder._meta.db_table)} o JOIN {qn(Agent._meta.db_table)} a "
        f"ON a.id = o.agent_id WHERE o.id = %s AND o.agent_id = %s{_lock_clause('o', lock)}"
    )


def order_read(*, agent_id: int | None, order_id: int, lock: bool) -> SalesOrder | None:
    """The agent's order with its agent (locked when ``lock``); None for anyone else's."""
    with connection.cursor() as cursor:
        execute_prepared(cursor, _order_sql(lock, connection.vendor), [order_id, agent_id])
        row = cursor.fetchone()
    if row is None:
        return None
    order, end = model_from_row(SalesOrder, row)
    order.agent, _ = model_from_row(Agent, row, end)
    return order


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


def _facts_from(values: Sequence[Any]) -> Facts:
    financed, related, max_dpd, loan_id = values
    return Facts(bool(financed), bool(related), int(max_dpd or 0), loan_id)


def facts_read(order: SalesOrder, *, reserve_loan_id: bool = False) -> Facts:
    """The decision's ``Facts`` on their own (when ``line_read`` found no line to read them with)."""
    sql = _facts_sql_text(reserve_loan_id, connection.vendor)
    params = _facts_params(order, reserve_loan_id=reserve_loan_id)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {sql}", params)
        return _facts_from(cursor.fetchone())


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
        # Under tripartite terms: has the agent an open release breach (release_breach_open).
        f"CASE WHEN t.id IS NOT NULL THEN EXISTS (SELECT 1 FROM {breaches} b "
        f"WHERE b.agent_id = l.agent_id AND b.status = '{BreachStatus.OPEN.value}') END "
        f"FROM {qn(CreditLine._meta.db_table)} l JOIN {programs} p ON p.id = l.program_id "
        f"JOIN {qn(CoreEnterprise._meta.db_table)} e ON e.id = p.enterprise_id "
        # The tripartite terms, if enabled, and the agent's margin account (read, not locked:
        # the margin's commit is conditional on it, in ``rows_write``).
        f"LEFT JOIN {qn(TripartiteTerms._meta.db_table)} t ON t.program_id = p.id AND t.enabled "
        f"LEFT JOIN {qn(MarginAccount._meta.db_table)} m ON t.id IS NOT NULL "
        f"AND m.program_id = p.id AND m.agent_id = l.agent_id "
        f"WHERE l.agent_id = %s AND l.program_id = (SELECT id FROM {programs} "
        f"WHERE enterprise_id = %s AND currency = %s AND status = %s ORDER BY id LIMIT 1)"
        f"{_lock_clause('l', lock)}"
    )


def line_read(order: SalesOrder, *, lock: bool) -> tuple[Program, CreditLine, Facts] | None:
    """The agent's line (locked when ``lock``) in the enterprise's first active program in the
    order's currency, with that program, its enterprise and the ``Facts`` (a loan id reserved
    when ``lock``); None when there is no such line (the caller says why)."""
    params = [*_facts_params(order, reserve_loan_id=lock), order.agent_id, order.enterprise_id]
    params += [order.currency, ProgramStatus.ACTIVE.value]
    with connection.cursor() as cursor:
        execute_prepared(cursor, _line_sql(lock, connection.vendor), params)
        row = cursor.fetchone()
    if row is None:
        return None
    line, end = model_from_row(CreditLine, row)
    program, end = model_from_row(Program, row, end)
    program.enterprise, end = model_from_row(CoreEnterprise, row, end)
    line.program = program
    facts = _facts_from(row[end : end + 4])
    return program, line, replace(facts, tripartite=MarginRead.of(tuple(row[end + 4 :])))


def reserve_members(
    *, program_id: int, line_id: int, amount: Decimal, gate: Member | None = None
) -> list[Member]:
    """The program's conditional reservation (``prog``), then the (locked) line's (``line``),
    behind it: members of a ``WITH`` statement. With a ``gate`` (the tripartite margin's
    conditional commit, ``marg``, itself behind ``prog``) between them, the line's waits on it
    too, and so does everything written after (``rows_write`` reads the loan ``FROM`` it)."""
    qn = connection.ops.quote_name
    fits, reserved = reservation_sql()
    add = f"{qn('reserved')} = {reserved}"
    behind = gate.name if gate is not None else "prog"
    return [
        Member(
            "prog",
            f"UPDATE {qn(Program._meta.db_table)} SET {add} "  # noqa: S608 - names from code
            f"WHERE {qn('id')} = %s AND {fits} RETURNING {qn('id')}",
            (amount, program_id, amount),
        ),
        *([gate] if gate is not None else []),
        Member(
            "line",
            f"UPDATE {qn(CreditLine._meta.db_table)} SET {add} "  # noqa: S608
            f"WHERE {qn('id')} = %s AND {fits} AND EXISTS (SELECT 1 FROM {behind}) "
            f"RETURNING {qn('id')}",
            (amount, line_id, amount),
        ),
    ]


def _release_program(program_id: int, amount: Decimal) -> None:
    """Give back a reservation the statement made on the program (locked by it) when the
    margin's commit behind it did not apply (a withdrawal took the free margin meanwhile)."""
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        execute_prepared(
            cursor,
            f"UPDATE {qn(Program._meta.db_table)} SET {qn('reserved')} = "  # noqa: S608
            f"ROUND({qn('reserved')} - %s, 2) WHERE {qn('id')} = %s",
            [amount, program_id],
        )


def _saved_objects(rows: FinanceRows) -> list[tuple[str, Model]]:
    """Every row to insert after the loan, each with its member name."""
    named: list[tuple[str, Model]] = [("decision", rows.decision)]
    if rows.review is not None:
        named.append(("review", rows.review))
    if rows.disbursement is not None:
        named.append(("disbursement", rows.disbursement))
    named += [(f"audit{number}", audit) for number, audit in enumerate(rows.audits)]
    return named


def rows_write(rows: FinanceRows) -> bool:
    """Write the rows in one statement (PostgreSQL, the loan's id reserved). False, with
    nothing written, when the program has no room left for the reservation."""
    members = []
    if rows.reserved:
        members = reserve_members(
            program_id=rows.loan.program_id,
            line_id=rows.loan.credit_line_id,
            amount=rows.reserved,
            gate=rows.margin.gate if rows.margin is not None else None,
        )
    gate = "marg" if rows.margin is not None else "prog"
    sql, params = insert_select(rows.loan, source=gate if rows.reserved else None)
    members.append(Member("loan", sql, params))
    named = _saved_objects(rows)
    previous = "loan"
    for name, obj in named:
        # Audit rows are chained, so that they get their ids in the order they were built.
        source = previous if name.startswith("audit") else "loan"
        sql, params = insert_select(obj, source=source)
        members.append(Member(name, sql, params))
        previous = name if name.startswith("audit") else previous
    if rows.margin is not None:
        members += rows.margin.after
    if rows.reply_record is not None:
        if rows.reply is None:
            raise ValueError("an idempotent decision needs its reply before it is written")
        sql, params = idempotency_store_sql(
            record_id=rows.reply_record, reply=rows.reply, after="loan"
        )
        members.append(Member("reply", sql, params))
    line = "(SELECT count(*) FROM line)" if rows.reserved else "1"
    # Member names come from this module, never from input.
    ids = ", ".join(f"(SELECT id FROM {name})" for name, _ in named)  # noqa: S608
    reply = "(SELECT count(*) FROM reply)" if rows.reply_record is not None else "1"
    prog = "(SELECT count(*) FROM prog)" if rows.margin is not None else "0"
    final = f"SELECT (SELECT count(*) FROM loan), {line}, {reply}, {prog}, {ids}"  # noqa: S608
    sql, params = with_statement(members, final)
    with connection.cursor() as cursor:
        execute_prepared(cursor, sql, params)
        written, line_moved, replied, reserved, *pks = cursor.fetchone()
    if not written:
        if reserved:  # the program's reservation applied, the margin's behind it did not
            _release_program(rows.loan.program_id, rows.reserved)
        return False
    if line_moved != 1:  # the caller decided on the locked line's figures: cannot happen
        raise RuntimeError(f"loan {rows.loan.pk}: the line's reservation did not apply")
    if replied != 1:  # the record was claimed in this transaction: cannot happen
        raise RuntimeError(f"loan {rows.loan.pk}: the idempotent reply was not stored")
    for (_, obj), pk in zip(named, pks, strict=True):
        obj.pk = pk
    for obj in (rows.loan, *(obj for _, obj in named)):
        obj._state.adding = False
        obj._state.db = connection.alias
    if rows.disbursement is not None:
        disbursement_queue(rows.disbursement.pk)
    return True
