"""Every row lock of ``lending``, and the one order they are taken in.

Services never write ``select_for_update`` or the SQL lock clause themselves: they call the small
functions here, which return the locked rows (or a locked queryset to filter), so the order below
is kept in one place and a new service can see where its locks fit. A transaction that needs
several of them takes them top to bottom, never upwards; rows of one kind are locked in id order.
Two transactions that follow this order cannot deadlock on these rows.

1. the program's advisory lock (``program_lock``): exclusive for its close of business, shared
   for anything that moves a loan's money, so the two never interleave;
2. the sales order (the finance click's hand-written read: ``for_update_of``);
3. the review case;
4. the loan (``of=("self",)``: a joined program row is read, never locked here);
5. what hangs off the loan: its disbursement, its repayments;
6. the credit line, then a proposal to change it, or the agent's margin account in the line's
   program (tripartite terms), then a margin withdrawal from it; deposits and withdrawals lock
   the margin account alone. Whoever changes a margin account while holding other locks holds
   the agent's line in that program first, so the account may come before or after the program
   row (the finance click's statement reserves on the program, then commits the margin);
7. the program row, taken last and held briefly (most writers reach it only through the
   conditional UPDATEs of ``lending.services.credit``, which lock it by updating it).

Outside the chain (no other lock is held with them): a journal entry being reversed, the credit
models being numbered, and a program's tripartite terms, then an agent's agreement, then a
change proposed to either; a release breach being resolved; a guarantee claim being accepted or
disputed (alone) or paid (after its loan's ``loan_lock``: claims are otherwise written only by
close of business, which holds the program's advisory lock exclusively); a goods release, which
locks by its conditional UPDATEs the hold's row, then its SKU rows in SKU order (no other path
writes those rows, so line releases of one hold serialise on the hold and cannot deadlock).
"""

from __future__ import annotations

from django.db import connection
from django.db.models import QuerySet

from .models import (
    Agreement,
    CreditLine,
    CreditModel,
    Disbursement,
    GuaranteeClaim,
    JournalEntry,
    LineProposal,
    Loan,
    MarginAccount,
    MarginWithdrawal,
    Program,
    ReleaseBreach,
    Repayment,
    Review,
    TermsChange,
    TripartiteTerms,
)

# High 32 bits of the program advisory lock's key: the lending programs' namespace.
LOCK_NAMESPACE = 0x5CF0


def program_lock(program_id: int, *, exclusive: bool) -> None:
    """Step 1: the program's COB/repayment advisory lock, until the transaction ends (PostgreSQL).

    Elsewhere (SQLite) writers are serialised by the database anyway.
    """
    if connection.vendor != "postgresql":
        return
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s)", [(LOCK_NAMESPACE << 32) | program_id])


def for_update_of(alias: str) -> str:
    """The lock clause for a hand-written read that locks the rows of table ``alias`` only (the
    finance click locks its sales order, step 2, and its line, step 6, this way); empty where
    the backend has no row locks."""
    return f" FOR UPDATE OF {alias}" if connection.features.has_select_for_update_of else ""


def reviews_locked(
    queryset: QuerySet[Review] | None = None, *, skip_locked: bool = False
) -> QuerySet[Review]:
    """Step 3: review cases, locked as they are read (filter the queryset; order by id)."""
    base = Review.objects.all() if queryset is None else queryset
    return base.select_for_update(skip_locked=skip_locked)


def loans_locked(
    queryset: QuerySet[Loan] | None = None, *, skip_locked: bool = False
) -> QuerySet[Loan]:
    """Step 4: loans, locked as they are read; a ``select_related`` program is read, not locked
    (locking it there would take step 7 before step 6, and deadlock with a finance click that
    holds the line and waits for the program)."""
    base = Loan.objects.all() if queryset is None else queryset
    return base.select_for_update(of=("self",), skip_locked=skip_locked)


def disbursement_lock(disbursement_id: int) -> Disbursement:
    """Step 5: one disbursement (after its loan when both are locked)."""
    return Disbursement.objects.select_for_update().get(pk=disbursement_id)


def repayments_locked(queryset: QuerySet[Repayment]) -> QuerySet[Repayment]:
    """Step 5: a loan's repayments (the loan is locked first)."""
    return queryset.select_for_update()


def line_lock(line_id: int) -> CreditLine:
    """Step 6: one credit line."""
    return CreditLine.objects.select_for_update(of=("self",)).get(pk=line_id)


def lines_locked(queryset: QuerySet[CreditLine] | None = None) -> QuerySet[CreditLine]:
    """Step 6: credit lines, locked as they are read (filter the queryset; order by id)."""
    base = CreditLine.objects.all() if queryset is None else queryset
    return base.select_for_update(of=("self",))


def lines_lock_ids(line_ids: list[int]) -> None:
    """Step 6: lock these credit lines, in id order."""
    list(lines_locked().filter(pk__in=line_ids).order_by("pk").values_list("pk", flat=True))


def line_proposal_lock(proposal_id: int) -> LineProposal:
    """Step 6: a line proposal, after its line."""
    return LineProposal.objects.select_for_update().get(pk=proposal_id)


def margin_accounts_locked(
    queryset: QuerySet[MarginAccount] | None = None,
) -> QuerySet[MarginAccount]:
    """Step 6: margin accounts, after the agent's line in the program when that is held too."""
    base = MarginAccount.objects.all() if queryset is None else queryset
    return base.select_for_update(of=("self",))


def margin_account_lock(account_id: int) -> MarginAccount:
    """Step 6: one margin account (with its program, read)."""
    return margin_accounts_locked().select_related("program").get(pk=account_id)


def margin_withdrawal_lock(withdrawal_id: int) -> MarginWithdrawal:
    """Step 6: a margin withdrawal, after its account."""
    return MarginWithdrawal.objects.select_for_update(of=("self",)).get(pk=withdrawal_id)


def program_row_lock(program_id: int) -> Program:
    """Step 7: the program row itself (its terms or limit change, or a writer needs its figures
    fixed until the commit)."""
    return Program.objects.select_for_update().get(pk=program_id)


def programs_lock_ids(program_ids: list[int]) -> None:
    """Step 7: lock these program rows, in id order."""
    list(
        Program.objects.select_for_update()
        .filter(pk__in=program_ids)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def loan_lock(loan_id: int) -> Loan:
    """Lock a loan to move its money (a repayment, its correction): the program's advisory lock
    (shared), then loan -> credit line -> program row. Inside a transaction; the loan comes with
    its program (read)."""
    program_id = Loan.objects.values_list("program_id", flat=True).get(pk=loan_id)
    program_lock(program_id, exclusive=False)
    loan = loans_locked().select_related("program").get(pk=loan_id)
    line_lock(loan.credit_line_id)
    program_row_lock(loan.program_id)
    return loan


def journal_entry_lock(entry_id: int) -> JournalEntry:
    """Outside the chain: a journal entry about to be reversed."""
    return JournalEntry.objects.select_for_update().get(pk=entry_id)


def tripartite_terms_lock(program_id: int) -> TripartiteTerms | None:
    """Outside the chain: a program's tripartite terms (before an agreement and a change)."""
    return TripartiteTerms.objects.select_for_update().filter(program_id=program_id).first()


def agreements_locked(queryset: QuerySet[Agreement] | None = None) -> QuerySet[Agreement]:
    """Outside the chain: agreements, after their program's terms."""
    base = Agreement.objects.all() if queryset is None else queryset
    return base.select_for_update()


def terms_change_lock(change_id: int) -> TermsChange:
    """Outside the chain: a proposed terms change, after its terms and agreement."""
    return TermsChange.objects.select_for_update().get(pk=change_id)


def credit_models_locked() -> QuerySet[CreditModel]:
    """Outside the chain: the credit models, while a training numbers and promotes one."""
    return CreditModel.objects.select_for_update()


def claim_lock(claim_id: int) -> GuaranteeClaim:
    """Outside the chain: a guarantee claim (with its loan, read), alone or after ``loan_lock``."""
    return (
        GuaranteeClaim.objects.select_for_update(of=("self",))
        .select_related("loan")
        .get(pk=claim_id)
    )


def breach_lock(breach_id: int) -> ReleaseBreach:
    """Outside the chain: a release breach being resolved."""
    return ReleaseBreach.objects.select_for_update().get(pk=breach_id)
