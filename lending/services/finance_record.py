"""Writing a finance decision: every row of one click in a single statement on PostgreSQL.

A decision writes the loan, its ``Decision``, an audit row and, by outcome, a referral ``Review``
or (approved) the ``Disbursement`` outbox row with the loan already ``disbursing`` and a second
audit row; when credit is reserved, the line and the program move too. Row by row through the
ORM that is 8 to 10 statements per click and most of the click's CPU: Django builds each
statement in Python. Here the rows are built as model instances (``scf.sql.build``: the
instances ``Model.__init__`` would make, for a fraction of its cost; defaults, ``auto_now_add``
and value preparation are Django's own), then sent as one ``WITH`` statement:

* ``prog``: the program's conditional reservation, ``UPDATE ... WHERE limit >= outstanding +
  reserved + amount RETURNING id``. It is the only place the shared program row is locked, and
  from here to the commit is one round trip and the idempotency reply.
* ``line``: the line's reservation (the row is already locked by the caller, which decided on its
  exact figures), and every ``INSERT`` read ``FROM prog``: when the program has no room left,
  ``prog`` returns no row and the statement writes nothing at all. The caller then decides again,
  now declined with ``insufficient_program_limit``: no savepoint to roll back.
* The loan's id is reserved from its sequence beforehand (with the decision inputs), so every
  row, the end-to-end id and the reply are known before the statement is sent.
* ``reply``: for a click with an ``Idempotency-Key``, the ``UPDATE`` that stores the reply on the
  record claimed earlier in the same transaction, applied only when the loan was written.

``finance_rows_write_orm`` writes the same instances one by one (SQLite, the demo): the rows are
the same by construction, and a test compares both paths on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.db.models import Model

from orders.models import SalesOrder, User
from scf.sql import Member, build, execute_prepared, insert_select, with_statement

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
from .audit import actor_label
from .credit import line_reserve, program_reserve
from .disbursement import creditor_of, disbursement_queue, end_to_end_id_for
from .idempotency import StoredReply, idempotency_store_sql
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


def _audit(user: User, action: str, loan: Loan, before: dict, after: dict) -> AuditLog:  # type: ignore[type-arg]
    return build(
        AuditLog,
        actor=user,
        actor_label=actor_label(user),
        action=action,
        object_type=Loan._meta.label_lower,
        object_id=str(loan.pk),
        before=before,
        after=after,
        note="",
    )


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
            _audit(
                user,
                f"loan.{outcome}",
                loan,
                {},
                {"principal": str(loan.principal), "reasons": decision.reasons},
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
        name, account, bank = creditor_of(program.enterprise)
        rows.disbursement = build(
            Disbursement,
            loan=loan,
            end_to_end_id=end_to_end_id_for(loan.pk) if loan.pk else "",
            amount=loan.principal,
            currency=loan.currency,
            creditor_name=name,
            creditor_account=account,
            creditor_bank=bank,
            created_at=now,
        )
        rows.audits.append(
            _audit(
                user,
                "loan.disbursing",
                loan,
                {"status": LoanStatus.APPROVED},
                {"status": LoanStatus.DISBURSING, "end_to_end_id": rows.disbursement.end_to_end_id},
            )
        )
    return rows


def _reserve_members(rows: FinanceRows) -> list[Member]:
    """The program's conditional reservation, then the (locked) line's, behind it."""
    qn = connection.ops.quote_name
    amount = rows.reserved
    fits = f"{qn('limit')} >= ROUND({qn('outstanding_principal')} + {qn('reserved')} + %s, 2)"
    add = f"{qn('reserved')} = ROUND({qn('reserved')} + %s, 2)"
    # Under a tripartite program the margin's conditional commit goes first and gates the rest.
    gate = [rows.margin.gate] if rows.margin is not None else []
    margin_applied = " AND EXISTS (SELECT 1 FROM marg)" if gate else ""
    return [
        *gate,
        Member(
            "prog",
            f"UPDATE {qn(Program._meta.db_table)} SET {add} "  # noqa: S608 - names from code
            f"WHERE {qn('id')} = %s AND {fits}{margin_applied} RETURNING {qn('id')}",
            (amount, rows.loan.program_id, amount),
        ),
        Member(
            "line",
            f"UPDATE {qn(CreditLine._meta.db_table)} SET {add} "  # noqa: S608
            f"WHERE {qn('id')} = %s AND {fits} AND EXISTS (SELECT 1 FROM prog) "
            f"RETURNING {qn('id')}",
            (amount, rows.loan.credit_line_id, amount),
        ),
    ]


def _saved_objects(rows: FinanceRows) -> list[tuple[str, Model]]:
    """Every row to insert after the loan, each with its member name."""
    named: list[tuple[str, Model]] = [("decision", rows.decision)]
    if rows.review is not None:
        named.append(("review", rows.review))
    if rows.disbursement is not None:
        named.append(("disbursement", rows.disbursement))
    named += [(f"audit{number}", audit) for number, audit in enumerate(rows.audits)]
    return named


def finance_rows_write(rows: FinanceRows) -> bool:
    """Write the rows in one statement (PostgreSQL). False, with nothing written, when the
    program has no room left for the reservation."""
    members = _reserve_members(rows) if rows.reserved else []
    sql, params = insert_select(rows.loan, source="prog" if rows.reserved else None)
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
    final = f"SELECT (SELECT count(*) FROM loan), {line}, {reply}, {ids}"  # noqa: S608
    sql, params = with_statement(members, final)
    with connection.cursor() as cursor:
        execute_prepared(cursor, sql, params)
        written, line_moved, replied, *pks = cursor.fetchone()
    if not written:
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
