"""Writing a decided click: the decision's rows built (``finance_record``) and written, on
PostgreSQL in the one statement of ``finance_hotpath`` (with the tripartite margin's conditional
commit, ``margin_hotpath``), elsewhere through the ORM; and the stored 201 reply.

Kept apart from ``finance`` so that module reads as the click's business flow.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection, transaction

from orders.models import SalesOrder, User
from scf import clock

from .. import engine
from ..models import CreditLine, Loan, Program
from ..replies import finance_reply_body
from . import finance_hotpath as hotpath
from .credit import ProgramExhausted
from .finance_hotpath import Facts
from .finance_record import FinanceRows, finance_rows_build, finance_rows_write_orm
from .idempotency import StoredReply, canonical, idempotency_store
from .margin_finance import TripartiteFacts, margin_commit
from .margin_hotpath import margin_members
from .terms import Terms


def finance_reply(loan: Loan) -> StoredReply:
    """The 201 reply to a decided click, keys in the stored (canonical) order."""
    return StoredReply(201, canonical(finance_reply_body(loan)))


def rows_for(
    user: User,
    order: SalesOrder,
    program: Program,
    line: CreditLine,
    terms: Terms,
    decision: engine.DecisionResult,
    facts: Facts,
    reply_to: int | None,
    tri: TripartiteFacts | None = None,
    *,
    now: dt.datetime | None = None,
) -> FinanceRows:
    rows = finance_rows_build(
        user=user,
        order=order,
        program=program,
        line=line,
        terms=terms,
        decision=decision,
        loan_id=facts.loan_id,
        now=now or clock.now(),
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
        return hotpath.rows_write(rows)
    try:
        with transaction.atomic():
            finance_rows_write_orm(rows)
    except ProgramExhausted:
        return False
    if rows.reply_record is not None:
        rows.reply = finance_reply(rows.loan)
        idempotency_store(record_id=rows.reply_record, reply=rows.reply)
    return True


def decision_write(
    rows: FinanceRows, tri: TripartiteFacts | None, *, now: dt.datetime | None = None
) -> bool:
    """``_write``, and under a tripartite program, for a decision that reserves credit, the
    margin's commit: on PostgreSQL inside the decision's own statement, conditional on the free
    margin the decision saw (``margin_hotpath.margin_members``: nothing is written when a
    withdrawal took it meanwhile, and the request is decided again); otherwise (SQLite, or no
    margin account yet because nothing is required) after the rows, through the ORM. ``now``: the decision's moment (default now)."""
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
            business_date=clock.business_date(rows.loan.program.time_zone, now),
            now=now,
        )
        return _write(rows)
    written = _write(rows)
    if written:
        margin_commit(loan=rows.loan, facts=tri, at=now)
    return written
