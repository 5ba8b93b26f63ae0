"""When the ledger sees a margin commit: with the payment that settles it, not at the click.

The click moves the agent's margin (and security deposit) free -> committed on its margin
account and writes a ``commit`` movement with no journal entry: the finance click is the
platform's hottest write and an entry with its two lines is half of what a tripartite click
adds to it. The ledger's reclassification Dr margin_free / Cr margin_committed is posted once
the financing is settled, as two more lines of the disbursement's own entry (which then debits
margin_committed for the margin paid out, and the security hold moves the rest to
security_deposits). A commit that ends before settlement (declined, expired, payment failed)
never reaches the ledger: its ``uncommit`` movement posts nothing either.

So a ``commit`` movement without an entry is *pending* while its loan has no pay-out, security
hold or uncommit movement; the book check adds the pending commits to the ledger's margin_free
and takes them from its margin_committed before comparing with the accounts
(``book_check_margin``). Commits posted at the click (an entry on the movement) keep their
uncommit entry.
"""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Exists, OuterRef, QuerySet

from ..models import AccountCode, GoodsHold, Loan, MarginMovement, MarginMovementKind
from .ledger import ZERO, Posting

K = MarginMovementKind
# A loan's movements that end a pending commit: settled (margin paid out, security held) or freed.
COMMIT_ENDS = (K.PAY_OUT, K.SECURITY_HOLD, K.UNCOMMIT)


def pending_commits() -> QuerySet[MarginMovement]:
    """``commit`` movements the ledger has not seen yet (see the module's docstring)."""
    ended = MarginMovement.objects.filter(loan_id=OuterRef("loan_id"), kind__in=COMMIT_ENDS)
    return MarginMovement.objects.filter(
        kind=K.COMMIT, journal_entry__isnull=True, loan__isnull=False
    ).filter(~Exists(ended))


def commit_posted(loan: Loan) -> bool:
    """Was the loan's margin commit posted to the ledger when it was made."""
    return MarginMovement.objects.filter(
        loan=loan, kind=K.COMMIT, journal_entry__isnull=False
    ).exists()


def _unposted_commit(loan: Loan) -> Decimal:
    """The amount of the loan's commit the ledger has not seen yet (zero when posted or none)."""
    found = (
        MarginMovement.objects.filter(loan=loan, kind=K.COMMIT, journal_entry__isnull=True)
        .values_list("amount", flat=True)
        .first()
    )
    return found if found is not None else ZERO


def disbursement_postings(loan: Loan, hold: GoodsHold | None) -> list[Posting]:
    """The disbursement entry: Dr principal receivable (and margin committed) / Cr settlement;
    under a tripartite program, with the commit's reclassification Dr margin_free / Cr
    margin_committed when the click did not post it."""
    margin = hold.margin if hold is not None else ZERO
    postings = [Posting.dr(AccountCode.PRINCIPAL_RECEIVABLE, loan.principal, loan=loan)]
    if margin > 0:
        postings.append(Posting.dr(AccountCode.MARGIN_COMMITTED, margin))
    postings.append(Posting.cr(AccountCode.SETTLEMENT, loan.principal + margin))
    committed = _unposted_commit(loan) if hold is not None else ZERO
    if committed > 0:
        postings.append(Posting.dr(AccountCode.MARGIN_FREE, committed))
        postings.append(Posting.cr(AccountCode.MARGIN_COMMITTED, committed))
    return postings
