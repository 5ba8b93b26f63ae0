"""The finance click's margin work in two round trips on PostgreSQL.

A click under a tripartite program reads its terms, the agent's margin account (locked) and
whether its agreement is active in one query (``margin_facts_read``), and writes the margin's
commit in one ``WITH`` statement (``margin_commit_write``): the account's free -> committed, the
order's ``GoodsHold``, the ledger entry Dr margin_free / Cr margin_committed with its two lines,
and the ``commit`` movement. The rows are those ``margin_finance.margin_commit`` writes through
the ORM (SQLite, and a loan without an id yet); a test compares both.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.db import connection

from scf import clock
from scf.sql import (
    Member,
    build,
    execute_prepared,
    insert_select,
    model_from_row,
    select_list,
    with_statement,
)

from ..models import (
    AccountCode,
    Agreement,
    AgreementStatus,
    EntryKind,
    GoodsHold,
    JournalEntry,
    JournalLine,
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
        f"WHERE t.program_id = %s AND t.enabled FOR UPDATE OF m"
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
def _fixed_sql(vendor: str) -> tuple[str, str, str, str]:
    qn = connection.ops.quote_name
    account = (
        f"UPDATE {qn(MarginAccount._meta.db_table)} SET free = free - %s, "  # noqa: S608
        f"committed = committed + %s, updated_at = %s WHERE id = %s RETURNING id"
    )
    lines = (
        f"INSERT INTO {qn(JournalLine._meta.db_table)} "  # noqa: S608
        f"(entry_id, account, loan_id, currency, debit, credit) "
        f"SELECT entry.id, v.account, NULL, %s, v.debit, v.credit FROM entry CROSS JOIN "
        f"(VALUES (%s, %s::numeric, 0::numeric), (%s, 0::numeric, %s::numeric)) "
        f"AS v(account, debit, credit) RETURNING id"
    )
    move = (
        f"INSERT INTO {qn(MarginMovement._meta.db_table)} "  # noqa: S608
        f"(account_id, kind, amount, loan_id, value_date, reference, source, journal_entry_id, "
        f"created_at) SELECT %s, %s, %s::numeric, %s, %s::date, '', %s, entry.id, "
        f"%s::timestamptz FROM entry RETURNING id"
    )
    final = "SELECT (SELECT id FROM hold), (SELECT count(*) FROM lines), (SELECT id FROM move)"
    return account, lines, move, final


def margin_commit_write(
    *,
    loan: Loan,
    account_id: int,
    order_value: Decimal,
    margin: Decimal,
    security: Decimal,
    business_date: Any,
) -> GoodsHold:
    """Write the margin's commit for a loan whose id is known (the loan row may follow later in
    the transaction: its foreign keys are checked at commit)."""
    now = clock.now()
    amount = margin + security
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
    entry = build(
        JournalEntry,
        kind=EntryKind.MARGIN_COMMIT,
        idempotency_key=f"margin-commit:{loan.pk}",
        business_date=business_date,
        currency=loan.currency,
        loan_id=loan.pk,
        program_id=loan.program_id,
        description="",
    )
    update, lines, move, final = _fixed_sql(connection.vendor)
    members = [Member("acct", update, (amount, amount, now, account_id))]
    members.append(Member("hold", *insert_select(hold, source="acct")))
    if amount > 0:
        members.append(Member("entry", *insert_select(entry, source="acct")))
        line_params = (
            loan.currency,
            AccountCode.MARGIN_FREE.value,
            amount,
            AccountCode.MARGIN_COMMITTED.value,
            amount,
        )
        members.append(Member("lines", lines, line_params))
        move_params = (
            account_id,
            MarginMovementKind.COMMIT.value,
            amount,
            loan.pk,
            business_date,
            MarginSource.SYSTEM.value,
            now,
        )
        members.append(Member("move", move, move_params))
    else:
        final = "SELECT (SELECT id FROM hold), 2, NULL"
    statement, params = with_statement(members, final)
    with connection.cursor() as cursor:
        execute_prepared(cursor, statement, params)
        hold_id, line_count, _ = cursor.fetchone()
    if hold_id is None or line_count != 2:
        raise RuntimeError(f"loan {loan.pk}: the margin's commit did not apply")
    hold.pk = hold_id
    hold._state.adding = False
    return hold
