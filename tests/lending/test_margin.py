"""Margin accounts: deposits by operations and by bank credit, the balance, withdrawals through the
bank adapter with maker-checker above the threshold; the books balance after each."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest
from django.core.management.base import CommandError

from integrations.bank import bank_adapter
from integrations.tasks_events import import_bank_statement
from lending.models import (
    AccountCode,
    JournalLine,
    MarginAccount,
    MarginMovement,
    MarginWithdrawal,
)
from lending.services.book_check import book_check
from tests.conftest import client_for
from tests.lending.active_loans import books_balance
from tests.lending.tripartite_world import World, agent_under, lodge, today, world
from tests.orders.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def w(enterprise: Any) -> World:
    return world(enterprise)


@pytest.fixture
def committed(django_capture_on_commit_callbacks: Any) -> Any:
    """Run what a request queues after its commit (the bank payment task, eager here)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def balance(account: MarginAccount) -> tuple[D, D, D]:
    account.refresh_from_db()
    return account.free, account.committed, account.security


def ledger(account_code: str) -> D:
    rows = JournalLine.objects.filter(account=account_code)
    return sum((r.credit - r.debit for r in rows), D("0.00"))


def deposit(w: World, amount: Any, reference: str = "OPS-1", **extra: Any) -> Any:
    body = {
        "amount": amount,
        "value_date": str(today(w.program)),
        "reference": reference,
        "program": w.program.pk,
        **extra,
    }
    return client_for(w.ops).post(
        f"/api/v1/agents/{w.agent.pk}/margin/deposits/", body, format="json"
    )


def test_operations_record_a_deposit_once(w: World) -> None:
    first = deposit(w, "30000.00")
    assert first.status_code == 201, first.content
    assert first.json()["free"] == "30000.00" and first.json()["currency"] == "CNY"
    assert first.json()["movements"][0]["kind"] == "deposit"
    again = deposit(w, "30000.00")
    assert again.status_code == 200 and again.json()["free"] == "30000.00"
    other = deposit(w, "30000.01")
    assert other.status_code == 409 and other.json()["code"] == "margin_reference_reused"
    assert balance(w.account) == (D("30000.00"), D("0.00"), D("0.00"))
    assert ledger(AccountCode.MARGIN_FREE) == D("30000.00")
    books_balance()


@pytest.mark.parametrize(
    ("amount", "extra"),
    [(30000.5, {}), ("-1.00", {}), ("0.001", {}), ("1.00", {"currency": "USD"}), ("abc", {})],
)
def test_a_bad_deposit_is_refused_and_nothing_is_written(w: World, amount: Any, extra: Any) -> None:
    reply = deposit(w, amount, **extra)
    assert reply.status_code == 422, reply.content
    assert "amount" in reply.json()["fields"] or "currency" in reply.json()["fields"]
    assert not MarginMovement.objects.exists()
    assert balance(w.account) == (D("0.00"), D("0.00"), D("0.00"))


def test_only_operations_deposit_and_only_the_agent_and_staff_read(w: World) -> None:
    agent = client_for(UserFactory(role="agent", agent=w.agent))
    body = {"amount": "1.00", "value_date": "2026-01-01", "reference": "X", "program": 1}
    assert agent.post(f"/api/v1/agents/{w.agent.pk}/margin/deposits/", body).status_code == 403
    deposit(w, "100.00")
    mine = agent.get(f"/api/v1/agents/{w.agent.pk}/margin/")
    assert mine.status_code == 200 and mine.json()["free"] == "100.00"
    other, *_ = agent_under(w.program)
    assert (
        client_for(UserFactory(role="agent", agent=other))
        .get(f"/api/v1/agents/{w.agent.pk}/margin/")
        .status_code
        == 404
    )
    admin = client_for(UserFactory(role="enterprise_admin", enterprise=w.program.enterprise))
    assert admin.get(f"/api/v1/agents/{w.agent.pk}/margin/").status_code == 404


def test_a_bank_credit_quoting_the_margin_reference_lodges_margin_once(w: World) -> None:
    for _ in range(2):
        bank_adapter().credit_incoming(
            amount=D("12345.67"),
            currency="CNY",
            debtor_name=w.agent.name,
            remittance_info=w.account.reference,
            bank_reference="BANK-MG-1",
            value_date=today(w.program),
        )
    result = import_bank_statement.delay().get()
    assert result["applied"] == 1 and result["unmatched"] == 0
    assert balance(w.account)[0] == D("12345.67")
    movement = MarginMovement.objects.get(account=w.account)
    assert (movement.source, movement.reference) == ("bank_statement", "BANK-MG-1")
    books_balance()


def withdraw(w: World, amount: str, user: Any = None) -> Any:
    body = {"amount": amount, "program": w.program.pk, "reason": "agent asked"}
    client = client_for(user or w.ops)
    return client.post(f"/api/v1/agents/{w.agent.pk}/margin/withdrawals/", body, format="json")


def test_a_small_withdrawal_is_paid_through_the_bank(w: World, committed: Any) -> None:
    lodge(w.account, "60000.00", "DEP-1")
    with committed():
        reply = withdraw(w, "10000.00")
    assert reply.status_code == 201, reply.content
    row = MarginWithdrawal.objects.get(pk=reply.json()["id"])
    assert row.status == "settled"  # the sandbox settles at once, the task ran eagerly
    assert balance(w.account) == (D("50000.00"), D("0.00"), D("0.00"))
    assert ledger(AccountCode.MARGIN_FREE) == D("50000.00")
    books_balance()


def test_a_large_withdrawal_waits_for_a_second_person(w: World, committed: Any) -> None:
    lodge(w.account, "60000.00", "DEP-1")
    reply = withdraw(w, "50000.01")
    assert reply.status_code == 201 and reply.json()["status"] == "awaiting_approval"
    assert balance(w.account)[0] == D("9999.99")  # not available to a financing meanwhile
    books_balance()  # the ledger still holds it as margin: in flight, and counted
    url = f"/api/v1/margin-withdrawals/{reply.json()['id']}/approve/"
    same = client_for(w.ops).post(url)
    assert same.status_code == 409 and same.json()["code"] == "maker_checker_same_user"
    with committed():
        assert client_for(w.ops2).post(url).json()["status"] == "pending"
    assert MarginWithdrawal.objects.get(pk=reply.json()["id"]).status == "settled"
    assert ledger(AccountCode.MARGIN_FREE) == D("9999.99")
    books_balance()


def test_a_rejected_withdrawal_frees_the_margin_again(w: World) -> None:
    lodge(w.account, "60000.00", "DEP-1")
    reply = withdraw(w, "60000.00")
    url = f"/api/v1/margin-withdrawals/{reply.json()['id']}/reject/"
    assert client_for(w.ops2).post(url, {}, format="json").status_code == 422
    done = client_for(w.ops2).post(url, {"reason": "under review"}, format="json")
    assert done.status_code == 200 and done.json()["status"] == "rejected"
    assert balance(w.account)[0] == D("60000.00")
    books_balance()


def test_more_than_is_free_cannot_be_withdrawn(w: World) -> None:
    lodge(w.account, "100.00", "DEP-1")
    reply = withdraw(w, "100.01")
    assert reply.status_code == 409 and reply.json()["code"] == "insufficient_free_margin"
    assert not MarginWithdrawal.objects.exists()
    assert balance(w.account)[0] == D("100.00")


def test_a_withdrawal_the_bank_refuses_gives_the_margin_back(
    w: World, settings: Any, committed: Any
) -> None:
    lodge(w.account, "100.00", "DEP-1")
    w.agent.settlement_account_no = "CLOSED-ACCOUNT"
    w.agent.save()
    settings.SANDBOX_BANK = {"reject_accounts": {"CLOSED-ACCOUNT": "AC04"}}
    with committed():
        reply = withdraw(w, "40.00")
    row = MarginWithdrawal.objects.get(pk=reply.json()["id"])
    assert row.status == "failed", row.status
    assert balance(w.account)[0] == D("100.00")
    books_balance()


def test_ledger_check_finds_a_margin_balance_that_disagrees(w: World) -> None:
    lodge(w.account, "100.00", "DEP-1")
    MarginAccount.objects.filter(pk=w.account.pk).update(committed=D("0.01"))
    with pytest.raises(CommandError):
        books_balance()
    found = {d.check for d in book_check()}
    assert found == {"margin_committed", "ledger_margin_committed"}
