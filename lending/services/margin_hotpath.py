"""The finance click's margin work in SQL, on PostgreSQL.

The click reads the terms, the agent's margin account and its agreement with its credit line
(``lending.services.finance``), and writes the margin's commit inside its own ``WITH`` statement
(``margin_members``): the account's free -> committed, conditional on the free margin the
decision saw and gating the program's reservation; the order's ``GoodsHold``; the ``commit``
movement. No ledger entry: the ledger's free -> committed reclassification is posted with the
disbursement's entry when the payment settles (``margin_ledger``). The rows are
those ``margin_finance.margin_commit`` writes through the ORM (SQLite); a test compares both.
When the statement wrote nothing, the request is decided again on the account read under its
row lock in one query (``margin_facts_read``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.db import connection

from scf import clock
from scf.hotpath import (
    Member,
    build,
    execute_prepared,
    insert_select,
    model_from_row,
    select_list,
)

from ..locks import for_update_of
from ..models import (
    Agreement,
    AgreementStatus,
    GoodsHold,
    Loan,
    MarginAccount,
    MarginMovement,
    MarginMovementKind,
    MarginSource,
    TripartiteTerms,
)


@lru_cache(maxsize=2)
def _facts_sql(vendor: str) -> str:
    qn = connection.ops.quote_name
    return (
        f"SELECT {select_list(TripartiteTerms, 't')}, {select_list(MarginAccount, 'm')}, "  # noqa: S608 - names from code
        f"EXISTS (SELECT 1 FROM {qn(Agreement._meta.db_table)} a WHERE a.program_id = t.program_id "
        f"AND a.agent_id = m.agent_id AND a.status = %s) "
        f"FROM {qn(TripartiteTerms._meta.db_table)} t JOIN {qn(MarginAccount._meta.db_table)} m "
        f"ON m.program_id = t.program_id AND m.agent_id = %s "
        f"WHERE t.program_id = %s AND t.enabled{for_update_of('m')}"
    )


def margin_facts_read(
    *, program_id: int, agent_id: int
) -> tuple[TripartiteTerms, MarginAccount, bool] | None:
    """The enabled terms, the agent's margin account (locked) and whether its agreement is
    active; None when the terms are not enabled or the agent has no margin account yet."""
    with connection.cursor() as cursor:
        params = [AgreementStatus.ACTIVE.value, agent_id, program_id]
        execute_prepared(cursor, _facts_sql(connection.vendor), params)
        row = cursor.fetchone()
    if row is None:
        return None
    terms, end = model_from_row(TripartiteTerms, row)
    account, end = model_from_row(MarginAccount, row, end)
    return terms, account, bool(row[end])


@lru_cache(maxsize=2)
def _movement_sql(vendor: str) -> str:
    qn = connection.ops.quote_name
    return (
        f"INSERT INTO {qn(MarginMovement._meta.db_table)} "  # noqa: S608
        f"(account_id, kind, amount, loan_id, value_date, reference, source, journal_entry_id, "
        f"created_at) SELECT %s, %s, %s::numeric, %s, %s::date, '', %s, NULL, "
        f"%s::timestamptz FROM loan RETURNING id"
    )


@dataclass(frozen=True)
class MarginMembers:
    """The margin's commit as members of the finance click's own ``WITH`` statement: ``marg``
    (the account's conditional free -> committed, behind the program's reservation; the line's
    reservation and the loan wait on it, so when the free margin no longer suffices nothing but
    the program's reservation is written, and ``rows_write`` gives that back) and the rows
    written after the loan (``FROM loan``)."""

    gate: Member
    after: list[Member]


@lru_cache(maxsize=2)
def _gate_sql(vendor: str) -> str:
    qn = connection.ops.quote_name
    return (
        f"UPDATE {qn(MarginAccount._meta.db_table)} SET free = free - %s, "  # noqa: S608
        f"committed = committed + %s, updated_at = %s WHERE id = %s AND free >= %s "
        f"AND EXISTS (SELECT 1 FROM prog) RETURNING id"
    )


def margin_members(
    *,
    loan: Loan,
    account_id: int,
    order_value: Decimal,
    margin: Decimal,
    security: Decimal,
    business_date: Any,
    now: dt.datetime | None = None,
) -> MarginMembers:
    now = now or clock.now()
    amount = margin + security
    gate = Member("marg", _gate_sql(connection.vendor), (amount, amount, now, account_id, amount))
    hold = build(
        GoodsHold,
        loan=loan,
        program_id=loan.program_id,
        agent_id=loan.agent_id,
        margin_account_id=account_id,
        currency=loan.currency,
        order_value=order_value,
        margin=margin,
        security=security,
        created_at=now,
        updated_at=now,
    )
    after = [Member("mhold", *insert_select(hold, source="loan"))]
    if amount > 0:
        after.append(
            Member(
                "move",
                _movement_sql(connection.vendor),
                (
                    account_id,
                    MarginMovementKind.COMMIT.value,
                    amount,
                    loan.pk,
                    business_date,
                    MarginSource.SYSTEM.value,
                    now,
                ),
            )
        )
    return MarginMembers(gate, after)
