"""Scenario 5: the bank accepted the transfer but its reply was lost (a timeout after accept).

The platform must not send again blindly: the next attempt asks the bank (``transfer_status``)
and acts on the answer; only an ``unknown`` answer (the bank never had it) leads to a send.
Bank-side duplicates are counted where the bank sees them: ``SandboxTransfer.requests_received``
counts every transfer request the sandbox received for an end-to-end id, repeats included
(``test_the_bank_counts_a_blind_resend`` shows that a re-send would be seen).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction

from integrations import bank as bank_package
from integrations.bank.disbursement import DisbursementRetry, Outcome, disbursement_execute
from integrations.bank.interface import (
    BankTimeout,
    BankUnavailable,
    IncomingCredit,
    TransferReceipt,
    TransferRequest,
    TransferState,
    TransferStatus,
)
from integrations.bank.sandbox import SandboxBank, SandboxConfig
from integrations.models import SandboxTransfer
from lending.models import Disbursement, EntryKind, JournalEntry, Loan, LoanStatus
from lending.services.finance import loan_finance
from scf import clock
from tests.lending.factories import CreditLineFactory, ProgramFactory
from tests.orders.factories import AgentFactory, OrderFactory, UserFactory
from tests.reliability import workers
from tests.reliability.workers import (
    FAST_RETRIES,
    approve_loans,
    assert_each_paid_exactly_once,
    bank_requests,
    wait_until_active,
)

broker = workers.broker  # fixtures
start_worker = workers.start_worker


class Bank:
    """A sandbox bank that records the calls made to it and can lose replies or the line:
    ``lose_reply`` initiates lose their reply after the bank stored the transfer,
    ``lose_request`` initiates time out before reaching it, ``down_queries`` status queries
    fail as unavailable."""

    def __init__(self, *, lose_reply: int = 0, lose_request: int = 0, down_queries: int = 0):
        self.inner = SandboxBank(SandboxConfig(), report_sink=None)
        self.calls: list[str] = []
        self.lose_reply, self.lose_request, self.down_queries = (
            lose_reply,
            lose_request,
            down_queries,
        )

    def initiate_transfer(self, request: TransferRequest) -> TransferReceipt:
        self.calls.append("initiate")
        if self.lose_request:
            self.lose_request -= 1
            raise BankTimeout("timed out before the bank had it")
        receipt = self.inner.initiate_transfer(request)
        if self.lose_reply:
            self.lose_reply -= 1
            raise BankTimeout("accepted, reply lost")
        return receipt

    def transfer_status(self, end_to_end_id: str) -> TransferStatus:
        self.calls.append("status")
        if self.down_queries:
            self.down_queries -= 1
            raise BankUnavailable("status service down")
        return self.inner.transfer_status(end_to_end_id)

    def incoming_credits(
        self, since: dt.datetime | None, until: dt.datetime
    ) -> list[IncomingCredit]:
        return self.inner.incoming_credits(since, until)


@pytest.fixture
def disbursing(db: Any, monkeypatch: pytest.MonkeyPatch) -> Disbursement:
    """A loan approved and waiting to be paid (its task never runs: no commit in this test)."""
    monkeypatch.setattr(bank_package, "_adapters", {})
    program = ProgramFactory(limit=Decimal("10000000.00"))
    agent = AgentFactory(enterprises=[program.enterprise])
    CreditLineFactory(agent=agent, program=program)
    user = UserFactory(role="agent", agent=agent)
    order = OrderFactory(agent=agent, enterprise=program.enterprise)
    with transaction.atomic():
        loan = loan_finance(user=user, order_id=order.pk)
    return Disbursement.objects.get(loan=loan)


def _attempt(disbursement: Disbursement, bank: Bank, monkeypatch: pytest.MonkeyPatch) -> Outcome:
    """One attempt, at a time after any retry delay the previous one set."""
    disbursement.refresh_from_db()
    later = max(clock.now(), disbursement.next_attempt_at or clock.now())
    monkeypatch.setattr(clock, "now", lambda: later + dt.timedelta(milliseconds=1))
    try:
        return disbursement_execute(disbursement.pk, bank=bank).outcome
    except DisbursementRetry:
        return Outcome.UNRESOLVED


def _paid_once(disbursement: Disbursement) -> None:
    disbursement.refresh_from_db()
    assert disbursement.status == "settled"
    assert Loan.objects.get(pk=disbursement.loan_id).status == LoanStatus.ACTIVE
    transfer = SandboxTransfer.objects.get(end_to_end_id=disbursement.end_to_end_id)
    assert (transfer.requests_received, transfer.amount) == (1, disbursement.amount)
    assert JournalEntry.objects.filter(loan_id=disbursement.loan_id, kind=EntryKind.DISBURSEMENT)


def test_the_bank_counts_a_blind_resend(disbursing):
    """The measure works: a client that re-sends is seen by the bank (one transfer, 2 requests)."""
    bank = SandboxBank(SandboxConfig(), report_sink=None)
    request = TransferRequest(
        end_to_end_id=disbursing.end_to_end_id,
        amount=disbursing.amount,
        currency=disbursing.currency,
        debtor_account="LENDER",
        creditor_name=disbursing.creditor_name,
        creditor_account=disbursing.creditor_account,
    )
    bank.initiate_transfer(request)
    bank.initiate_transfer(request)
    [transfer] = SandboxTransfer.objects.all()
    assert transfer.requests_received == 2


def test_a_lost_reply_is_settled_by_a_status_query_never_a_second_send(disbursing, monkeypatch):
    bank = Bank(lose_reply=1)
    assert _attempt(disbursing, bank, monkeypatch) is Outcome.UNRESOLVED
    disbursing.refresh_from_db()
    assert disbursing.status == "sent" and "BankTimeout" in disbursing.last_error
    assert _attempt(disbursing, bank, monkeypatch) is Outcome.SETTLED
    assert bank.calls == ["initiate", "status"]
    _paid_once(disbursing)


def test_while_the_bank_cannot_be_asked_nothing_is_sent_again(disbursing, monkeypatch):
    bank = Bank(lose_reply=1, down_queries=5)
    outcomes = [_attempt(disbursing, bank, monkeypatch) for _ in range(7)]
    assert outcomes == [Outcome.UNRESOLVED] * 6 + [Outcome.SETTLED]
    assert bank.calls == ["initiate"] + ["status"] * 6
    _paid_once(disbursing)


def test_a_request_lost_before_the_bank_is_sent_once_after_the_bank_says_unknown(
    disbursing, monkeypatch
):
    bank = Bank(lose_request=1)
    assert _attempt(disbursing, bank, monkeypatch) is Outcome.UNRESOLVED
    assert not SandboxTransfer.objects.exists()
    assert bank.inner.transfer_status(disbursing.end_to_end_id).state is TransferState.UNKNOWN
    assert _attempt(disbursing, bank, monkeypatch) is Outcome.SETTLED
    assert bank.calls == ["initiate", "status", "initiate"]
    _paid_once(disbursing)


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_every_reply_lost_by_a_real_worker_still_pays_each_loan_once(start_worker):
    """Every first reply is lost, and each transfer settles only a second after the bank took
    it: each disbursement is asked about (and polled while accepted), none is sent twice."""
    faults = {"timeout_after_accept_rate": 1.0, "settle_delay_seconds": 1.0}
    worker = start_worker({"SANDBOX_BANK": faults, **FAST_RETRIES})
    loan_ids = approve_loans(60)
    wait_until_active(loan_ids, worker)
    assert_each_paid_exactly_once(loan_ids)
    assert set(bank_requests(loan_ids).values()) == {1}  # bank-side duplicates: 0
    rows = Disbursement.objects.filter(loan_id__in=loan_ids)
    assert all("BankTimeout" in row.last_error for row in rows)  # every reply was lost...
    assert min(row.attempts for row in rows) >= 2  # ...and a later attempt asked the bank
