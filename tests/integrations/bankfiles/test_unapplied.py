"""The unapplied-credit queue: credits no loan claims are kept (and booked), and operations apply
or refund each one once, through the API and the bank operations page."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from integrations.bank.files.export import bank_files_export
from integrations.bank.files.unapplied import UnappliedNotOpen, unapplied_apply
from integrations.bank.iso20022 import parse_pain001
from integrations.bank_models import OutboundPayment, UnappliedCredit
from lending.models import Bank, JournalLine, LoanStatus, MarginMovement, Repayment
from lending.selectors.repayment_refs import repayment_reference_for
from lending.services.book_check import book_check
from lending.services.margin import margin_account_get_or_create
from tests.conftest import client_for
from tests.lending.active_loans import active_loan
from tests.orders.factories import UserFactory

from .rail import Rail, import_files

pytestmark = pytest.mark.django_db


def account_balance(account: str) -> Decimal:
    """A credit-normal account's balance in the ledger (credits less debits)."""
    lines = JournalLine.objects.filter(account=account)
    return sum((line.credit - line.debit for line in lines), Decimal("0.00"))


@pytest.fixture
def credit(line: Any, rail: Rail, django_capture_on_commit_callbacks: Any) -> UnappliedCredit:
    rail.pay_in("300.00", remittance="payment for invoice 77", debtor_name="Dealer Ltd")
    import_files(django_capture_on_commit_callbacks)
    return UnappliedCredit.objects.get()


def test_an_unmatched_credit_is_queued_and_booked_to_the_suspense_account(credit):
    assert (credit.status, credit.amount, credit.reason) == (
        "open",
        Decimal("300.00"),
        "no loan matches the reference",
    )
    assert account_balance("unapplied_credits") == Decimal("300.00")
    assert book_check() == []


def test_the_api_is_for_operations_only(credit, agent_client, enterprise_admin):
    for client in (
        agent_client,
        client_for(enterprise_admin),
        client_for(UserFactory(role="risk_reviewer")),
    ):
        assert client.get("/api/v1/unapplied-credits/").status_code == 403
        reply = client.post(f"/api/v1/unapplied-credits/{credit.pk}/refund/")
        assert reply.status_code == 403
    credit.refresh_from_db()
    assert credit.status == "open"


def test_operations_apply_a_credit_to_a_loan_once(credit, line, rail, ops_user):
    loan = active_loan(line, principal="1000.00", value_date=rail.today)
    client = client_for(ops_user)
    listed = client.get("/api/v1/unapplied-credits/?status=open").json()
    assert [r["id"] for r in listed["results"]] == [credit.pk]
    assert listed["results"][0]["amount"] == "300.00"
    reply = client.post(
        f"/api/v1/unapplied-credits/{credit.pk}/apply/", {"loan": loan.pk}, format="json"
    )
    assert reply.status_code == 200, reply.json()
    assert (reply.json()["status"], reply.json()["loan_reference"]) == ("applied", loan.reference)
    again = client.post(
        f"/api/v1/unapplied-credits/{credit.pk}/apply/", {"loan": loan.pk}, format="json"
    )
    assert (again.status_code, again.json()["code"]) == (409, "unapplied_credit_not_open")
    assert Repayment.objects.get(loan=loan).amount == Decimal("300.00")
    assert account_balance("unapplied_credits") == Decimal("0.00")
    assert book_check() == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"margin_account": 999999}, 422, "margin_account_not_applicable"),
        ({}, 422, "validation_error"),
        ({"loan": 1, "margin_account": 1}, 422, "validation_error"),
        ({"loan": 999999}, 422, "loan_not_applicable"),
        ({"loan": "abc"}, 422, "validation_error"),
    ],
)
def test_a_bad_apply_is_refused_and_changes_nothing(credit, ops_user, body, status, code):
    reply = client_for(ops_user).post(
        f"/api/v1/unapplied-credits/{credit.pk}/apply/", body, format="json"
    )
    assert (reply.status_code, reply.json()["code"]) == (status, code)
    credit.refresh_from_db()
    assert credit.status == "open" and not Repayment.objects.exists()
    assert not MarginMovement.objects.exists()


def test_a_loan_of_another_bank_is_refused(credit, agent, enterprise, ops_user, rail):
    from tests.lending.active_loans import money_line

    other = money_line(agent, enterprise, bank=Bank.objects.create(code="BANK-2", name="Other"))
    loan = active_loan(other, principal="1000.00", value_date=rail.today)
    reply = client_for(ops_user).post(
        f"/api/v1/unapplied-credits/{credit.pk}/apply/", {"loan": loan.pk}, format="json"
    )
    assert (reply.status_code, reply.json()["code"]) == (422, "loan_not_applicable")


def test_operations_lodge_a_credit_as_margin_once(credit, line, ops_user):
    account = margin_account_get_or_create(program=line.program, agent=line.agent)
    client = client_for(ops_user)
    url = f"/api/v1/unapplied-credits/{credit.pk}/apply/"
    reply = client.post(url, {"margin_account": account.pk}, format="json")
    assert reply.status_code == 200, reply.json()
    body = reply.json()
    assert (body["status"], body["target"], body["margin_account_reference"]) == (
        "applied",
        "margin_account",
        account.reference,
    )
    again = client.post(url, {"margin_account": account.pk}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "unapplied_credit_not_open")
    account.refresh_from_db()
    assert account.free == Decimal("300.00")
    [deposit] = MarginMovement.objects.filter(account=account, kind="deposit")
    assert (deposit.amount, deposit.reference) == (
        Decimal("300.00"),
        f"{credit.bank.code}:UC{credit.pk}",
    )
    assert deposit.value_date == credit.entry.value_date
    # Out of suspense, into the agent's free margin: the bank credit is still counted once.
    assert account_balance("unapplied_credits") == Decimal("0.00")
    assert account_balance("margin_free") == Decimal("300.00")
    assert not Repayment.objects.exists()
    assert book_check() == []


def test_a_margin_account_of_another_bank_is_refused(credit, agent, enterprise, ops_user):
    from tests.lending.active_loans import money_line

    other = money_line(agent, enterprise, bank=Bank.objects.create(code="BANK-2", name="Other"))
    account = margin_account_get_or_create(program=other.program, agent=agent)
    reply = client_for(ops_user).post(
        f"/api/v1/unapplied-credits/{credit.pk}/apply/",
        {"margin_account": account.pk},
        format="json",
    )
    assert (reply.status_code, reply.json()["code"]) == (422, "margin_account_not_applicable")
    credit.refresh_from_db()
    account.refresh_from_db()
    assert (credit.status, account.free) == ("open", Decimal("0.00"))
    assert not MarginMovement.objects.exists()
    assert account_balance("unapplied_credits") == Decimal("300.00")


def test_a_refund_goes_out_in_the_next_payment_file_and_settles(
    credit, ops_user, rail, django_capture_on_commit_callbacks
):
    reply = client_for(ops_user).post(f"/api/v1/unapplied-credits/{credit.pk}/refund/")
    assert (reply.status_code, reply.json()["status"]) == (200, "refunding")
    with django_capture_on_commit_callbacks(execute=True):
        [written] = bank_files_export()
    [payment] = parse_pain001(Path(written.path).read_bytes()).payments
    assert (payment.amount, payment.creditor_account) == (Decimal("300.00"), "6222000011112222")
    rail.bank_reads_payments()
    import_files(django_capture_on_commit_callbacks)
    credit.refresh_from_db()
    assert credit.status == "refunded"
    assert OutboundPayment.objects.get().status == "settled"
    assert account_balance("unapplied_credits") == Decimal("0.00")


def test_the_page_lists_the_queue_and_applies_a_credit(credit, line, rail, ops_user, client):
    loan = active_loan(line, principal="1000.00", value_date=rail.today)
    client.force_login(ops_user)
    page = client.get("/reviews/bank/")
    assert page.status_code == 200
    assert f'data-credit="{credit.pk}"' in page.content.decode()
    client.post(f"/reviews/bank/credits/{credit.pk}/apply/", {"loan_reference": "NOPE"})
    credit.refresh_from_db()
    assert credit.status == "open"
    done = client.post(
        f"/reviews/bank/credits/{credit.pk}/apply/",
        {"loan_reference": loan.reference},
        follow=True,
    )
    assert "applied" in done.content.decode().lower()
    loan.refresh_from_db()
    credit.refresh_from_db()
    assert credit.status == "applied" and loan.status == LoanStatus.ACTIVE
    client.force_login(UserFactory(role="risk_reviewer"))
    assert client.get("/reviews/bank/").status_code == 403


def test_the_page_lodges_a_credit_as_margin_by_its_reference(
    credit, line, agent, enterprise, ops_user, client
):
    account = margin_account_get_or_create(program=line.program, agent=line.agent)
    from tests.lending.active_loans import money_line

    other = money_line(agent, enterprise, bank=Bank.objects.create(code="BANK-2", name="Other"))
    foreign = margin_account_get_or_create(program=other.program, agent=agent)
    client.force_login(ops_user)
    url = f"/reviews/bank/credits/{credit.pk}/apply/"
    # Another bank's account reads as no account at all; nothing is lodged.
    refused = client.post(url, {"loan_reference": foreign.reference}, follow=True)
    assert f"No margin account has the reference {foreign.reference}." in refused.content.decode()
    assert not MarginMovement.objects.exists()
    done = client.post(url, {"loan_reference": account.reference.lower()}, follow=True)
    assert f"Credit lodged as margin in {account.reference}." in done.content.decode()
    credit.refresh_from_db()
    account.refresh_from_db()
    assert (credit.status, credit.margin_account_id, account.free) == (
        "applied",
        account.pk,
        Decimal("300.00"),
    )
    listed = client.get("/reviews/bank/?status=applied").content.decode()
    assert account.reference in listed


@pytest.mark.django_db(transaction=True)
def test_two_operators_applying_at_once_apply_it_once(line, rail, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    from integrations.bank.files.inbound import bank_files_import

    rail.pay_in("300.00", remittance="unknown")
    bank_files_import()
    credit = UnappliedCredit.objects.get()
    loan = active_loan(line, principal="1000.00", value_date=rail.today)
    barrier = threading.Barrier(2)
    results: list[str] = []

    def operator() -> None:
        try:
            barrier.wait()
            unapplied_apply(credit_id=credit.pk, actor=None, loan_id=loan.pk)
            results.append("applied")
        except UnappliedNotOpen:
            results.append("not_open")
        finally:
            connection.close()

    threads = [threading.Thread(target=operator) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(results) == ["applied", "not_open"]
    assert Repayment.objects.filter(loan=loan).count() == 1


def test_a_matched_credit_the_repayment_service_refuses_is_queued_not_lost(
    line, agent_user, rail, django_capture_on_commit_callbacks
):
    from .rail import finance

    loan = finance(agent_user, django_capture_on_commit_callbacks)  # not paid out yet
    rail.pay_in("120.00", remittance=f"repay {loan.reference}")
    import_files(django_capture_on_commit_callbacks)
    credit = UnappliedCredit.objects.get()
    assert credit.loan_id == loan.pk and credit.reason.startswith("loan_not_repayable")
    assert credit.entry.status == "unapplied" and credit.entry.journal_keys
    assert not Repayment.objects.exists()
    assert account_balance("unapplied_credits") == Decimal("120.00")
    assert book_check() == []


def test_the_agent_sees_its_repayment_reference(line, agent_client, agent):
    reply = agent_client.get(f"/api/v1/agents/{agent.pk}/credit-line/")
    assert reply.status_code == 200
    assert reply.json()["repayment_reference"] == repayment_reference_for(line.pk)
    assert reply.json()["repayment_reference"].startswith("RF")
