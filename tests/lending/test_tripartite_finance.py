"""Financing under a tripartite program: the agreement and the margin in the decision, the margin
committed with the credit, paid to the core enterprise with the loan, freed when the financing
does not happen; the security deposit held until the loan is repaid. Ledger balanced and
``ledger_check`` green after each step.

The worked example of docs/tripartite.md, to the cent: an order of 100,000.00 at 70 % advance
and 30 % margin: 30,000.00 lodged, 70,000.00 lent, 100,000.00 paid to the enterprise, 30,000.00
of goods releasable at once.
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any
from unittest import mock

import pgtrigger
import pytest
from django.utils import timezone

from lending.models import (
    AccountCode,
    Agreement,
    Disbursement,
    GoodsHold,
    JournalEntry,
    JournalLine,
    Loan,
    MarginAccount,
    MarginMovement,
    Review,
)
from lending.services.book_check import book_check
from lending.services.disbursement import disbursement_fail, disbursement_settle
from lending.services.ledger import Posting, ledger_post
from lending.services.repayments import repayment_record
from lending.services.reviews import review_claim, review_decline
from tests.conftest import client_for
from tests.lending.active_loans import books_balance
from tests.lending.conftest import finance
from tests.lending.tripartite_world import World, lodge, today, world
from tests.orders.factories import OrderFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def w(enterprise: Any) -> World:
    return world(enterprise)


def order_of(w: World, amount: str) -> Any:
    return OrderFactory(
        agent=w.agent,
        enterprise=w.program.enterprise,
        amount=D(amount),
        order_date=today(w.program),
    )


def click(w: World, order: Any) -> dict[str, Any]:
    reply = finance(client_for(UserFactory(role="agent", agent=w.agent)), order.pk, f"k-{order.pk}")
    assert reply.status_code == 201, reply.content
    return reply.json()


def margin(w: World) -> tuple[D, D, D]:
    account = MarginAccount.objects.get(pk=w.account.pk)
    return account.free, account.committed, account.security


def ledger(code: str) -> D:
    """The account's balance, positive on its normal side."""
    rows = JournalLine.objects.filter(account=code)
    net = sum((r.debit - r.credit for r in rows), D("0.00"))
    return net if code in ("settlement", "principal_receivable") else -net


def settle(loan_id: int) -> Loan:
    disbursement = Disbursement.objects.get(loan_id=loan_id)
    disbursement_settle(
        disbursement_id=disbursement.pk, bank_reference="BANK-OUT", settled_at=timezone.now()
    )
    return Loan.objects.get(pk=loan_id)


def test_the_worked_example_to_the_cent(w: World) -> None:
    lodge(w.account, "30000.00", "DEP-EX")  # 30,000 lodged
    order = order_of(w, "100000.00")
    quote = client_for(UserFactory(role="agent", agent=w.agent)).post(
        f"/api/v1/orders/{order.pk}/quote/"
    )
    assert (quote.json()["margin_required"], quote.json()["margin_free"]) == (
        "30000.00",
        "30000.00",
    )
    assert quote.json()["principal"] == "70000.00"

    body = click(w, order)
    assert body["decision"]["outcome"] == "approved"
    loan = Loan.objects.get(pk=body["loan"]["id"])
    assert loan.principal == D("70000.00")  # 70,000 lent
    assert margin(w) == (D("0.00"), D("30000.00"), D("0.00"))
    assert Disbursement.objects.get(loan=loan).amount == D("100000.00")  # paid to the enterprise
    # The ledger sees the commit when the payment settles, not at the click.
    assert ledger(AccountCode.MARGIN_FREE) == D("30000.00")
    assert ledger(AccountCode.MARGIN_COMMITTED) == D("0.00")
    books_balance()

    loan = settle(loan.pk)
    hold = GoodsHold.objects.get(loan=loan)
    assert (hold.order_value, hold.margin, hold.releasable_value, hold.released_value) == (
        D("100000.00"),
        D("30000.00"),
        D("30000.00"),  # 30,000 of goods releasable at once
        D("0.00"),
    )
    assert margin(w) == (D("0.00"), D("0.00"), D("0.00"))
    assert ledger(AccountCode.PRINCIPAL_RECEIVABLE) == D("70000.00")
    assert ledger(AccountCode.SETTLEMENT) == D("30000.00") - D("100000.00")
    assert ledger(AccountCode.MARGIN_FREE) == ledger(AccountCode.MARGIN_COMMITTED) == D("0.00")
    kinds = list(MarginMovement.objects.filter(loan=loan).values_list("kind", flat=True))
    assert sorted(kinds) == ["commit", "pay_out"]
    entry = JournalEntry.objects.get(loan=loan)  # the disbursement's, with the commit in it
    assert entry.kind == "disbursement"
    assert sorted((x.account, x.debit, x.credit) for x in entry.lines.all()) == [
        ("margin_committed", D("0.00"), D("30000.00")),
        ("margin_committed", D("30000.00"), D("0.00")),
        ("margin_free", D("30000.00"), D("0.00")),
        ("principal_receivable", D("70000.00"), D("0.00")),
        ("settlement", D("0.00"), D("100000.00")),
    ]
    books_balance()


def test_no_agreement_declines_with_agreement_missing(w: World) -> None:
    lodge(w.account, "30000.00", "DEP-1")
    Agreement.objects.filter(pk=w.agreement.pk).update(status="terminated")
    body = click(w, order_of(w, "100000.00"))
    assert body["decision"]["outcome"] == "declined"
    assert [r["code"] for r in body["decision"]["reasons"]] == ["agreement_missing"]
    assert margin(w) == (D("30000.00"), D("0.00"), D("0.00"))
    assert not GoodsHold.objects.exists()
    books_balance()


def test_not_enough_margin_declines_with_the_amount_missing(w: World) -> None:
    lodge(w.account, "29999.99", "DEP-1")
    order = order_of(w, "100000.00")
    quote = client_for(UserFactory(role="agent", agent=w.agent)).post(
        f"/api/v1/orders/{order.pk}/quote/"
    )
    assert quote.json()["expected_outcome"] == "declined"
    assert quote.json()["margin_required"] == "30000.00"
    body = click(w, order)
    assert body["decision"]["outcome"] == "declined"
    (reason,) = body["decision"]["reasons"]
    assert reason["code"] == "insufficient_margin" and "0.01 missing" in reason["detail"]
    assert margin(w) == (D("29999.99"), D("0.00"), D("0.00"))
    assert not MarginMovement.objects.filter(kind="commit").exists()
    books_balance()


def test_a_program_without_enabled_terms_asks_for_no_margin(w: World) -> None:
    w.terms.enabled = False
    w.terms.save()
    body = click(w, order_of(w, "100000.00"))
    assert body["decision"]["outcome"] == "approved"
    assert Disbursement.objects.get(loan_id=body["loan"]["id"]).amount == D("70000.00")
    assert not GoodsHold.objects.exists()


def test_a_referred_request_commits_margin_and_its_decline_frees_it(w: World) -> None:
    lodge(w.account, "60000.00", "DEP-1")
    w.program.auto_approve_limit = D("50000.00")
    w.program.save()
    body = click(w, order_of(w, "100000.00"))
    assert body["decision"]["outcome"] == "in_review"
    assert margin(w) == (D("30000.00"), D("30000.00"), D("0.00"))
    books_balance()
    reviewer = UserFactory(role="risk_reviewer")
    review = Review.objects.get(loan_id=body["loan"]["id"])
    review_claim(user=reviewer, review_id=review.pk)
    review_decline(user=reviewer, review_id=review.pk, reason="other", note="no")
    assert margin(w) == (D("60000.00"), D("0.00"), D("0.00"))
    books_balance()


def test_a_failed_payment_frees_the_margin(w: World) -> None:
    lodge(w.account, "30000.00", "DEP-1")
    body = click(w, order_of(w, "100000.00"))
    disbursement = Disbursement.objects.get(loan_id=body["loan"]["id"])
    disbursement_fail(disbursement_id=disbursement.pk, reason_code="AC04", detail="closed")
    assert margin(w) == (D("30000.00"), D("0.00"), D("0.00"))
    books_balance()


def test_the_security_deposit_is_held_until_the_loan_is_repaid(enterprise: Any) -> None:
    w = world(enterprise, security_ratio=D("0.1000"))
    lodge(w.account, "37000.00", "DEP-1")  # 30,000 margin + 10 % of 70,000
    body = click(w, order_of(w, "100000.00"))
    assert body["decision"]["outcome"] == "approved"
    assert margin(w) == (D("0.00"), D("37000.00"), D("0.00"))
    loan = settle(body["loan"]["id"])
    assert margin(w) == (D("0.00"), D("0.00"), D("7000.00"))
    assert ledger(AccountCode.SECURITY_DEPOSITS) == D("7000.00")
    books_balance()
    repayment_record(
        loan=loan,
        amount=D("70000.00"),
        value_date=loan.value_date,
        reference="REPAY-ALL",
        source="api",
        actor="test",
    )
    assert Loan.objects.get(pk=loan.pk).status == "repaid"
    assert margin(w) == (D("7000.00"), D("0.00"), D("0.00"))
    assert ledger(AccountCode.SECURITY_DEPOSITS) == D("0.00")
    books_balance()


def test_a_program_out_of_room_at_the_write_moves_no_margin(w: World) -> None:
    """The program runs out between the click's read and its statement: the statement writes
    nothing (the margin's commit waits on the program's reservation), and the request is
    decided again: declined ``insufficient_program_limit``, the margin free, the books balanced."""
    from lending.models import Program
    from lending.services import finance_hotpath

    real = finance_hotpath.rows_write

    def room_gone_meanwhile(rows: Any) -> bool:
        Program.objects.filter(pk=w.program.pk).update(limit=D("0.00"))
        return real(rows)

    lodge(w.account, "30000.00", "DEP-1")
    with mock.patch.object(finance_hotpath, "rows_write", room_gone_meanwhile):
        body = click(w, order_of(w, "100000.00"))
    assert body["decision"]["outcome"] == "declined"
    assert [r["code"] for r in body["decision"]["reasons"]] == ["insufficient_program_limit"]
    assert margin(w) == (D("30000.00"), D("0.00"), D("0.00"))
    assert not MarginMovement.objects.filter(kind="commit").exists()
    assert not GoodsHold.objects.exists()
    assert Program.objects.get(pk=w.program.pk).reserved == D("0.00")
    books_balance()


def _written(loan_id: int) -> dict[str, Any]:
    hold = GoodsHold.objects.get(loan_id=loan_id)
    movement = MarginMovement.objects.get(loan_id=loan_id, kind="commit")
    return {
        "hold": (hold.order_value, hold.margin, hold.security, hold.status, hold.currency),
        "movement": (
            movement.amount,
            movement.source,
            movement.reference,
            movement.value_date,
            movement.journal_entry_id,
        ),
        "entries": list(JournalEntry.objects.filter(loan_id=loan_id).values_list("kind")),
    }


def test_the_single_statement_writes_what_the_orm_writes(enterprise: Any) -> None:
    from lending.services import finance_write

    w = world(enterprise, security_ratio=D("0.1000"))
    lodge(w.account, "74000.00", "DEP-1")
    fast = click(w, order_of(w, "100000.00"))["loan"]["id"]
    with mock.patch.object(finance_write, "SINGLE_STATEMENT", False):
        orm = click(w, order_of(w, "100000.00"))["loan"]["id"]
    assert _written(fast) == _written(orm)
    assert _written(fast)["movement"][-1] is None  # no entry at the click: posted at settlement
    assert _written(fast)["entries"] == []
    assert margin(w) == (D("0.00"), D("74000.00"), D("0.00"))
    books_balance()
    for loan_id in (fast, orm):
        settle(loan_id)
    assert margin(w) == (D("0.00"), D("0.00"), D("14000.00"))
    assert ledger(AccountCode.MARGIN_FREE) == ledger(AccountCode.MARGIN_COMMITTED) == D("0.00")
    assert ledger(AccountCode.SECURITY_DEPOSITS) == D("14000.00")
    books_balance()


def test_a_commit_the_click_posted_is_undone_on_the_ledger(w: World) -> None:
    """A commit posted to the ledger at the click (as the click did before it left the
    reclassification to settlement) is still undone there when the financing ends unpaid."""
    lodge(w.account, "60000.00", "DEP-1")
    w.program.auto_approve_limit = D("50000.00")
    w.program.save()
    body = click(w, order_of(w, "100000.00"))
    loan = Loan.objects.select_related("program").get(pk=body["loan"]["id"])
    posted = ledger_post(
        kind="margin_commit",
        idempotency_key=f"margin-commit:{loan.pk}",
        business_date=today(w.program),
        currency=loan.currency,
        postings=[
            Posting.dr(AccountCode.MARGIN_FREE, D("30000.00")),
            Posting.cr(AccountCode.MARGIN_COMMITTED, D("30000.00")),
        ],
        loan=loan,
        program=loan.program,
    )
    # The movement as the click wrote it then (movements are append-only: the trigger let be).
    with pgtrigger.ignore("lending.MarginMovement:margin_movement_no_update"):
        MarginMovement.objects.filter(loan=loan, kind="commit").update(journal_entry=posted)
    assert ledger(AccountCode.MARGIN_COMMITTED) == D("30000.00")
    books_balance()
    reviewer = UserFactory(role="risk_reviewer")
    review = Review.objects.get(loan=loan)
    review_claim(user=reviewer, review_id=review.pk)
    review_decline(user=reviewer, review_id=review.pk, reason="other", note="no")
    assert margin(w) == (D("60000.00"), D("0.00"), D("0.00"))
    assert ledger(AccountCode.MARGIN_FREE) == D("60000.00")
    assert ledger(AccountCode.MARGIN_COMMITTED) == D("0.00")
    assert JournalEntry.objects.filter(loan=loan, kind="margin_uncommit").count() == 1
    books_balance()


def _reclassify(loan: Loan, key: str, dr: str, cr: str) -> None:
    ledger_post(
        kind="margin_commit",
        idempotency_key=key,
        business_date=today(loan.program),
        currency=loan.currency,
        postings=[
            Posting.dr(AccountCode(dr), D("30000.00")),
            Posting.cr(AccountCode(cr), D("30000.00")),
        ],
        loan=loan,
        program=loan.program,
    )


def test_ledger_check_counts_a_pending_commit_once_and_a_settled_one_not_at_all(w: World) -> None:
    """The book check adds a pending commit (no entry, loan unsettled) to the ledger's free
    margin: a commit both pending and posted is a difference, and so is a settled commit whose
    reclassification is missing from the ledger."""
    lodge(w.account, "30000.00", "DEP-1")
    loan = Loan.objects.select_related("program").get(
        pk=click(w, order_of(w, "100000.00"))["loan"]["id"]
    )
    books_balance()
    _reclassify(loan, "twice", "margin_free", "margin_committed")  # the pending commit again
    assert {d.check for d in book_check()} == {"ledger_margin_free", "ledger_margin_committed"}
    _reclassify(loan, "undo-twice", "margin_committed", "margin_free")
    assert book_check() == []
    settle(loan.pk)
    books_balance()
    _reclassify(
        loan, "lost", "margin_committed", "margin_free"
    )  # as if settlement had not posted it
    assert {d.check for d in book_check()} == {"ledger_margin_free", "ledger_margin_committed"}


def test_margin_taken_between_the_read_and_the_write_is_a_decline_not_an_overdraft(
    w: World,
) -> None:
    """The click reads the free margin without a lock; a withdrawal that takes it before the
    decision's statement makes that statement write nothing but the program's reservation, which
    is given back, and the request is decided again on the account read under its lock:
    declined ``insufficient_margin``, nothing committed."""
    from lending.services import finance_write
    from lending.services.margin import margin_withdraw_request

    real = finance_write.margin_members
    ops = UserFactory(role="ops_admin")

    def withdrawn_meanwhile(**kwargs: Any) -> Any:
        account = MarginAccount.objects.get(pk=kwargs["account_id"])
        with mock.patch("lending.services.margin.enqueue_on_commit"):
            margin_withdraw_request(actor=ops, account=account, amount=D("10000.00"))
        return real(**kwargs)

    lodge(w.account, "30000.00", "DEP-1")
    with mock.patch.object(finance_write, "margin_members", withdrawn_meanwhile):
        body = click(w, order_of(w, "100000.00"))
    assert body["decision"]["outcome"] == "declined"
    assert [r["code"] for r in body["decision"]["reasons"]] == ["insufficient_margin"]
    assert margin(w) == (D("20000.00"), D("0.00"), D("0.00"))
    assert not MarginMovement.objects.filter(kind="commit").exists()
    assert not GoodsHold.objects.exists()
    # The program's reservation, made before the margin's was refused, was given back.
    assert type(w.program).objects.get(pk=w.program.pk).reserved == D("0.00")
    books_balance()


def test_a_page_of_quotes_refuses_what_the_click_would(w: World) -> None:
    """``loan_quotes`` (the portal's order list) decides tripartite orders as ``loan_quote``."""
    from lending.services.finance import loan_quote
    from lending.services.quotes import loan_quotes

    lodge(w.account, "30000.00", "DEP-1")
    fits, too_big = order_of(w, "100000.00"), order_of(w, "100000.04")
    user = UserFactory(role="agent", agent=w.agent)
    orders = list(type(fits).objects.filter(pk__in=[fits.pk, too_big.pk]).select_related("agent"))

    def both() -> dict[int, tuple[str, list[str], str]]:
        page = loan_quotes(orders=orders)
        out = {}
        for order in orders:
            one = loan_quote(user=user, order_id=order.pk)
            decision = page[order.pk].decision
            assert decision is not None
            assert decision.outcome == one.decision.outcome
            assert decision.reasons == one.decision.reasons
            out[order.pk] = (decision.outcome, [r["code"] for r in decision.reasons], "")
        return out

    found = both()
    assert found[fits.pk][0] == "approved"
    assert found[too_big.pk][1] == ["insufficient_margin"]
    Agreement.objects.filter(pk=w.agreement.pk).update(status="terminated")
    assert {codes[0] for _, codes, _ in both().values()} == {"agreement_missing"}
