"""The checks that a run left the books right: a fast bench that corrupts them measured nothing.

Each returns the problems it found (empty when all is well), except ``disbursement_books``, which
stops the bench on the first wrong round.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal
from typing import Any

# Statuses a loan reaches by giving its reservation back.
RELEASED = ("disbursement_failed", "expired", "repaid", "written_off")


def line_books(
    key: str, line_ids: list[int], clicks: int, seen: Counter[str], *, complete: bool
) -> list[str]:
    """After ``clicks`` finance clicks on the lines ``line_ids`` (one loan each when the phase
    was ``complete``): no line over its limit or negative, every line's ``reserved`` equal to
    its reserving loans', no decline for lack of headroom that would have fitted, and no more
    outcomes of a kind seen by the clients (``seen``) than decisions stored."""
    from django.db import connection

    from lending.models import RESERVES_CREDIT

    reserving = [str(status) for status in RESERVES_CREDIT]
    problems: list[str] = []
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT l.id, l."limit", l.reserved, l.outstanding_principal,
              COALESCE(SUM(n.reserved_amount) FILTER (WHERE n.status = ANY(%s)), 0),
              COALESCE(SUM(n.principal) FILTER (WHERE n.status = ANY(%s)), 0),
              MIN(n.principal) FILTER (
                WHERE n.status = 'declined'
                AND d.reasons @> '[{"code": "insufficient_credit_line"}]'),
              COUNT(n.id),
              COUNT(n.id) FILTER (WHERE n.status = ANY(%s))
            FROM lending_creditline l
            LEFT JOIN lending_loan n ON n.credit_line_id = l.id
            LEFT JOIN lending_decision d ON d.loan_id = n.id
            WHERE l.id = ANY(%s)
            GROUP BY l.id""",
            [reserving, reserving, list(RELEASED), line_ids],
        )
        loans = 0
        for row in cur:
            line_id, limit, reserved, outstanding, held, principal, declined, count = row[:8]
            loans += count
            if reserved < 0 or outstanding < 0 or outstanding + reserved > limit:
                problems.append(f"{key}: line {line_id} over limit or negative")
            if reserved != held:
                problems.append(f"{key}: line {line_id} reserved {reserved} != loans {held}")
            if principal > limit:
                problems.append(f"{key}: line {line_id} reserving loans exceed the limit")
            # Reservations only grow unless credit came back (failed payout, expiry...):
            # a decline for lack of headroom must still not fit at the end.
            if declined is not None and not row[8] and declined <= limit - outstanding - reserved:
                problems.append(f"{key}: line {line_id} declined {declined} that would fit")
        if loans != clicks and complete:
            problems.append(f"{key}: {loans} loans for {clicks} clicks")
        cur.execute(
            "SELECT d.outcome, COUNT(*) FROM lending_loan n JOIN lending_decision d "
            "ON d.loan_id = n.id WHERE n.credit_line_id = ANY(%s) GROUP BY d.outcome",
            [line_ids],
        )
        written = dict(cur.fetchall())
    if any(seen[k] > written.get(k, 0) for k in seen):
        problems.append(f"{key}: clients saw {dict(seen)}, database has {written}")
    return problems


def program_books(program_id: int) -> list[str]:
    """The program within its limit, not negative, and its ``reserved`` its loans'."""
    from django.db import connection

    from lending.models import RESERVES_CREDIT

    reserving = [str(status) for status in RESERVES_CREDIT]
    problems: list[str] = []
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT p."limit", p.reserved, p.outstanding_principal,
              COALESCE((SELECT SUM(reserved_amount) FROM lending_loan
                        WHERE program_id = p.id AND status = ANY(%s)), 0)
            FROM lending_program p WHERE p.id = %s""",
            [reserving, program_id],
        )
        limit, reserved, outstanding, held = cur.fetchone()
    if reserved < 0 or outstanding < 0 or reserved + outstanding > limit:
        problems.append("program over its limit or negative")
    if reserved != held:
        problems.append(f"program reserved {reserved} != its loans' {held}")
    return problems


def disbursement_books(ids: list[int]) -> str:
    """The disbursements ``ids`` paid exactly once (loan active, one transfer at the bank with
    one request, one ledger entry each) and a balanced ledger (``book_check`` clean); raises
    SystemExit on any difference, else says what it checked."""
    from django.db.models import Count, Max, Sum

    from integrations.models import SandboxTransfer
    from lending.models import Disbursement, JournalEntry, JournalLine
    from lending.services.book_check import book_check

    rows = Disbursement.objects.filter(pk__in=ids)
    loans = rows.values("loan_id")
    transfers = SandboxTransfer.objects.filter(end_to_end_id__in=rows.values("end_to_end_id"))
    facts = {
        "settled": rows.filter(status="settled", loan__status="active").count(),
        "transfers": transfers.count(),
        "max_requests": transfers.aggregate(m=Max("requests_received"))["m"],
        "entries": JournalEntry.objects.filter(kind="disbursement", loan_id__in=loans)
        .values("loan_id")
        .annotate(n=Count("id"))
        .filter(n=1)
        .count(),
    }
    totals = JournalLine.objects.aggregate(dr=Sum("debit"), cr=Sum("credit"))
    differences = book_check()
    expected = {"settled": len(ids), "transfers": len(ids), "max_requests": 1, "entries": len(ids)}
    if facts != expected or totals["dr"] != totals["cr"] or differences:
        raise SystemExit(f"books wrong: {facts} {totals} {differences[:5]}")
    return f"{len(ids)} paid once each; ledger Dr = Cr = {totals['dr']}; book_check clean"


def accrual_books(program_id: int, before: dict[int, Any], days: list[dt.date]) -> list[str]:
    """After close of business on ``days``: the sampled loans (``before``: id -> their
    ``LoanState`` and ``AccrualTerms`` before the first day) equal the Python reference
    (``accrue_day``) to the digit, and each day's accrual rows equal its ledger entries."""
    from django.db.models import Sum

    from lending.models import Accrual, JournalLine, Loan
    from lending.services.accrual import LoanState, accrue_day

    problems = []
    for loan in Loan.objects.filter(pk__in=before):
        state, terms = before[loan.pk]
        for day in days:
            state, _ = accrue_day(state, terms, day)
        if LoanState.of(loan) != state:
            problems.append(f"loan {loan.pk}: {LoanState.of(loan)} != {state}")
    for day in days:
        rows = Accrual.objects.filter(loan__program_id=program_id, business_date=day)
        for kind, account in (
            ("interest", "interest_receivable"),
            ("penalty", "penalty_receivable"),
        ):
            total = rows.filter(kind=kind).aggregate(t=Sum("amount"))["t"] or Decimal(0)
            posted = JournalLine.objects.filter(
                entry__idempotency_key=f"cob:{program_id}:{day}:{kind}", account=account
            ).aggregate(t=Sum("debit"))["t"] or Decimal(0)
            if total != posted:
                problems.append(f"{day} {kind}: rows {total} != ledger {posted}")
    return problems
