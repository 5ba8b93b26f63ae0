"""Raising the night's guarantee claims on PostgreSQL: set-based, a fixed number of statements.

The rules are ``lending.services.claims``' (its module docstring), and so are the figures to the
cent; SQLite (the demo) keeps the Python loop there. Here:

1. the candidates are sized in one ``CREATE TEMP TABLE ... AS SELECT`` (owed, the security
   deposit, the unreleased goods, what is wanted). The scan is bounded by the partial index on
   (program, due date) of open loans: ``days_past_due`` is always some date no later than the
   program's today minus the due date, so a loan at the trigger is due on or before
   ``today - trigger_dpd``;
2. the caps, greedily in loan order, with window sums: within an agent each claim takes
   ``min(wanted, max(agent cap left - what the agent's earlier claims wanted, 0))``, then within
   the program ``min(that, max(program cap left - what the earlier claims took, 0))``. Filling a
   single cap greedily takes ``min(wanted so far, cap)``, and once the program's cap binds every
   later claim gets nothing, so the two steps are the loop's ``min(wanted, agent left, program
   left)`` exactly;
3. the waterfall (penalty, interest, principal) of the security deposit and then of the claim;
4. the writes, one statement each: agreements' and the program's caps by conditional UPDATE
   (``CapOverrun`` unless every one applied), the claims, the loans, their lines and the program,
   the margin accounts and their movements, the review cases, and the ledger: one entry per loan
   and kind (``security-applied:<loan>``, ``claim:<loan>``), so that the deferred balance check of
   each entry adds up a handful of lines, not the whole night's (in one entry, that check
   would add up the night's lines once per line).

The caller holds the program's COB lock and the terms row; the agreements of the night's agents
are locked here, in agent order, as the loop does.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import F

from scf import clock

from ..locks import agreements_locked
from ..models import (
    OPEN,
    AgreementStatus,
    ClaimStatus,
    EntryKind,
    GuaranteeType,
    MarginMovementKind,
    MarginSource,
    Program,
    ReviewKind,
    ReviewStatus,
    TripartiteTerms,
)

NIGHT = "scf_claims_night"

_SIZE = """
CREATE TEMP TABLE {night} ON COMMIT DROP AS
SELECT l.id AS loan_id, l.agent_id, l.credit_line_id, l.currency, l.reference,
       l.outstanding_principal AS principal, l.accrued_interest AS interest,
       l.accrued_penalty AS penalty, h.margin_account_id, s.owed, s.security, s.unreleased,
       greatest(CASE WHEN %(buyback)s THEN least(s.owed - s.security, s.unreleased)
                     ELSE s.owed - s.security END, 0) AS wanted,
       NULL::bigint AS agreement_id, 0::numeric AS amount,
       0::numeric AS s_penalty, 0::numeric AS s_interest, 0::numeric AS s_principal,
       0::numeric AS c_penalty, 0::numeric AS c_interest, 0::numeric AS c_principal
FROM lending_loan l
LEFT JOIN lending_goodshold h ON h.loan_id = l.id
CROSS JOIN LATERAL (
    SELECT l.outstanding_principal + l.accrued_interest + l.accrued_penalty AS owed) o
CROSS JOIN LATERAL (
    SELECT o.owed, least(coalesce(h.security, 0), o.owed) AS security,
           coalesce(h.order_value - h.released_value, 0) AS unreleased) s
WHERE l.program_id = %(program)s AND l.status IN %(open)s
  AND l.due_date <= %(due_by)s AND l.days_past_due >= %(trigger)s
  AND NOT EXISTS (SELECT 1 FROM lending_guaranteeclaim c WHERE c.loan_id = l.id)
"""

# Step 2 and 3 of the module docstring, written back into the night's table.
_AMOUNTS = """
WITH agent AS (
    SELECT n.loan_id, g.id AS agreement_id,
           least(n.wanted, greatest(coalesce(g.agent_cap - g.agent_cap_used, 0)
               - coalesce(sum(n.wanted) OVER (PARTITION BY n.agent_id ORDER BY n.loan_id
                          ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0), 0)) AS taken
    FROM {night} n
    LEFT JOIN lending_agreement g
      ON g.program_id = %(program)s AND g.agent_id = n.agent_id AND g.status = %(active)s
),
capped AS (
    SELECT loan_id, agreement_id,
           least(taken, greatest(%(program_left)s - coalesce(sum(taken) OVER (ORDER BY loan_id
                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0), 0)) AS amount
    FROM agent
),
secured AS (
    SELECT n.loan_id, c.agreement_id, c.amount, w.s_penalty, w.s_interest,
           least(n.security - w.s_penalty - w.s_interest, n.principal) AS s_principal
    FROM {night} n JOIN capped c USING (loan_id)
    CROSS JOIN LATERAL (SELECT least(n.security, n.penalty) AS s_penalty) p
    CROSS JOIN LATERAL (
        SELECT p.s_penalty, least(n.security - p.s_penalty, n.interest) AS s_interest) w
),
claimed AS (
    SELECT s.*, w.c_penalty, w.c_interest,
           least(s.amount - w.c_penalty - w.c_interest,
                 n.principal - s.s_principal) AS c_principal
    FROM secured s JOIN {night} n USING (loan_id)
    CROSS JOIN LATERAL (SELECT least(s.amount, n.penalty - s.s_penalty) AS c_penalty) p
    CROSS JOIN LATERAL (
        SELECT p.c_penalty,
               least(s.amount - p.c_penalty, n.interest - s.s_interest) AS c_interest) w
)
UPDATE {night} n SET agreement_id = c.agreement_id, amount = c.amount,
    s_penalty = c.s_penalty, s_interest = c.s_interest, s_principal = c.s_principal,
    c_penalty = c.c_penalty, c_interest = c.c_interest, c_principal = c.c_principal
FROM claimed c WHERE n.loan_id = c.loan_id
"""

_AGENT_CAPS = """
UPDATE lending_agreement g SET agent_cap_used = g.agent_cap_used + t.total
FROM (SELECT agreement_id, sum(amount) AS total FROM {night}
      WHERE amount > 0 GROUP BY agreement_id) t
WHERE g.id = t.agreement_id AND g.agent_cap >= g.agent_cap_used + t.total
"""

_CLAIMS = """
INSERT INTO lending_guaranteeclaim (loan_id, program_id, agent_id, enterprise_id, agreement_id,
    guarantee_type, currency, owed, security_applied, unreleased_value, amount, paid, status,
    reference, raised_on, window_ends_on, dispute_reason, created_at, updated_at)
SELECT loan_id, %(program)s, agent_id, %(enterprise)s, agreement_id, %(guarantee_type)s,
       currency, owed, security, unreleased, amount, 0,
       CASE WHEN amount > 0 THEN %(raised)s ELSE %(cap_exhausted)s END,
       left('GC-' || reference, 32), %(day)s, %(window_ends)s, '', %(now)s, %(now)s
FROM {night} ORDER BY loan_id
"""

# One entry per loan and kind; each line only when it moves money.
_ENTRIES = """
WITH e AS (
    INSERT INTO lending_journalentry (kind, idempotency_key, business_date, currency, loan_id,
                                      program_id, description, posted_at)
    SELECT %(kind)s, %(key)s || loan_id, %(day)s, currency, loan_id, %(program)s,
           %(description)s, %(now)s
    FROM {night} WHERE {total} > 0 ORDER BY loan_id
    RETURNING id, loan_id
)
INSERT INTO lending_journalline (entry_id, account, loan_id, currency, debit, credit)
SELECT e.id, x.account, e.loan_id, n.currency, x.debit, x.credit
FROM e JOIN {night} n USING (loan_id)
CROSS JOIN LATERAL (VALUES (%(debit_account)s, {total}, 0::numeric),
                           ('penalty_receivable', 0, n.{p}_penalty),
                           ('interest_receivable', 0, n.{p}_interest),
                           ('principal_receivable', 0, n.{p}_principal)
                   ) x(account, debit, credit)
WHERE x.debit > 0 OR x.credit > 0
"""

_LOANS = """
WITH changed AS (
    UPDATE lending_loan l SET
        outstanding_principal = n.principal - n.s_principal - n.c_principal,
        accrued_interest = n.interest - n.s_interest - n.c_interest,
        accrued_penalty = n.penalty - n.s_penalty - n.c_penalty
    FROM {night} n
    WHERE l.id = n.loan_id AND (n.amount > 0 OR n.security > 0)
    RETURNING n.credit_line_id, n.s_principal + n.c_principal AS principal
),
lines AS (
    UPDATE lending_creditline cl SET outstanding_principal = cl.outstanding_principal - t.total
    FROM (SELECT credit_line_id, sum(principal) AS total FROM changed
          GROUP BY credit_line_id HAVING sum(principal) > 0) t
    WHERE cl.id = t.credit_line_id
    RETURNING t.total
)
SELECT coalesce(sum(total), 0) FROM lines
"""

_MARGIN = """
WITH accounts AS (
    UPDATE lending_marginaccount m SET security = m.security - t.total
    FROM (SELECT margin_account_id, sum(security) AS total FROM {night}
          WHERE security > 0 GROUP BY margin_account_id) t
    WHERE m.id = t.margin_account_id
    RETURNING m.id
)
INSERT INTO lending_marginmovement (account_id, kind, amount, loan_id, value_date, reference,
                                    source, created_at)
SELECT margin_account_id, %(kind)s, security, loan_id, %(day)s, '', %(source)s, %(now)s
FROM {night} WHERE security > 0 ORDER BY loan_id
"""

_REVIEWS = """
INSERT INTO lending_review (loan_id, kind, status, requires_second_approval, decline_reason,
                            notes, created_at)
SELECT loan_id, %(kind)s, %(status)s, false, '', '[]'::jsonb, %(now)s
FROM {night} WHERE amount < wanted ORDER BY loan_id
ON CONFLICT DO NOTHING
"""

_RESULT = """
SELECT count(*) FILTER (WHERE amount > 0), count(*) FILTER (WHERE amount = 0),
       coalesce(sum(amount), 0)
FROM {night}
"""


class CapOverrun(RuntimeError):
    """A cap's conditional update found less room than the claims were sized for: a bug."""


def _run(cursor: Any, sql: str, params: dict[str, Any], **names: str) -> Any:
    """Execute ``sql`` with the night's table (and the column ``names``) put in."""
    cursor.execute(sql.format(night=NIGHT, **names), params)
    return cursor


def claims_raise_sql(
    *, program: Program, terms: TripartiteTerms, business_date: dt.date, today: dt.date
) -> tuple[int, int, Decimal]:
    """Raise the night's claims (see the module docstring): (raised, cap_exhausted, amount)."""
    now = clock.now()
    params: dict[str, Any] = {
        "program": program.pk,
        "enterprise": program.enterprise_id,
        "open": tuple(str(status) for status in OPEN),
        "trigger": terms.trigger_dpd,
        "due_by": today - dt.timedelta(days=terms.trigger_dpd),
        "buyback": terms.guarantee_type == GuaranteeType.BUYBACK,
        "active": AgreementStatus.ACTIVE.value,
        "program_left": terms.program_cap - terms.program_cap_used,
        "guarantee_type": terms.guarantee_type,
        "raised": ClaimStatus.RAISED.value,
        "cap_exhausted": ClaimStatus.CAP_EXHAUSTED.value,
        "day": business_date,
        "window_ends": business_date + dt.timedelta(days=terms.claim_window_days),
        "now": now,
    }
    with connection.cursor() as cursor:
        # Each journal line's deferred balance check first asks pgtrigger whether to skip it;
        # with the setting absent that question raises and catches an error (a subtransaction
        # per line). scf.postgresql sets it for a direct session; this covers a pooled one
        # (no startup options) on the night's thousands of lines. An empty list skips nothing.
        cursor.execute("SET LOCAL pgtrigger.ignore = '{}'")
        _run(cursor, _SIZE, params)
        if not _run(cursor, "SELECT count(*) FROM {night}", {}).fetchone()[0]:
            _run(cursor, "DROP TABLE {night}", {})
            return 0, 0, Decimal("0.00")
        agents = [row[0] for row in _run(cursor, "SELECT DISTINCT agent_id FROM {night}", {})]
        # Locked before they are read for the caps, in agent order (as every path locks them).
        list(
            agreements_locked()
            .filter(program=program, agent_id__in=agents, status=AgreementStatus.ACTIVE)
            .order_by("agent_id")
            .values_list("pk", flat=True)
        )
        _run(cursor, _AMOUNTS, params)
        raised, exhausted, total = _run(cursor, _RESULT, {}).fetchone()
        _take_caps(cursor, terms, Decimal(total))
        _run(cursor, _CLAIMS, params)
        _post(cursor, params, program, business_date)
        principal = _run(cursor, _LOANS, params).fetchone()[0]
        if principal > 0:
            Program.objects.filter(pk=program.pk).update(
                outstanding_principal=F("outstanding_principal") - principal
            )
        margin = {"kind": MarginMovementKind.SECURITY_APPLY.value, "source": MarginSource.SYSTEM}
        _run(cursor, _MARGIN, {**params, **margin})
        review = {"kind": ReviewKind.CAP_EXHAUSTED.value, "status": ReviewStatus.OPEN.value}
        _run(cursor, _REVIEWS, {**params, **review})
        _run(cursor, "DROP TABLE {night}", {})
    return int(raised), int(exhausted), Decimal(total)


def _take_caps(cursor: Any, terms: TripartiteTerms, total: Decimal) -> None:
    expected = _run(
        cursor,
        "SELECT count(DISTINCT agreement_id) FROM {night} WHERE amount > 0",
        {},
    ).fetchone()[0]
    if _run(cursor, _AGENT_CAPS, {}).rowcount != expected:
        raise CapOverrun(f"program {terms.program_id}: claims do not fit their agents' caps")
    if total > 0 and not TripartiteTerms.objects.filter(
        pk=terms.pk, program_cap__gte=F("program_cap_used") + total
    ).update(program_cap_used=F("program_cap_used") + total):
        raise CapOverrun(f"program {terms.program_id}: claims of {total} overrun its cap")


def _post(cursor: Any, params: dict[str, Any], program: Program, day: dt.date) -> None:
    """The security deposits applied, then the claims: Dr security_deposits (guarantee
    receivable) / Cr the loan's penalty, interest and principal receivable, one entry per loan."""
    for kind, key, debit, total, part, what in (
        (
            EntryKind.SECURITY_APPLIED,
            "security-applied:",
            "security_deposits",
            "security",
            "s",
            "security deposit applied",
        ),
        (EntryKind.GUARANTEE_CLAIM, "claim:", "guarantee_receivable", "amount", "c", "claim"),
    ):
        entry = {
            "kind": kind.value,
            "key": key,
            "debit_account": debit,
            "description": f"COB {day}: guarantee {what}, program {program.code}"[:200],
        }
        _run(cursor, _ENTRIES, {**params, **entry}, total=total, p=part)
