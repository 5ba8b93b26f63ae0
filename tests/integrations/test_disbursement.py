"""Paying approved loans out, in-process (eager Celery): state transitions, ledger, credit,
exactly-once under repeats, timeouts, rejections, lost messages and duplicate bank replies."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction

from integrations import bank as bank_package
from integrations.bank.disbursement import (
    BANK_UNREACHABLE,
    DisbursementRetry,
    Outcome,
    disbursement_execute,
    disbursement_give_up,
    disbursement_status_report,
)
from integrations.bank.interface import (
    BankUnavailable,
    IncomingCredit,
    TransferReceipt,
    TransferRequest,
    TransferState,
    TransferStatus,
)
from integrations.bank.sandbox import SandboxBank, SandboxConfig
from integrations.models import SandboxTransfer
from integrations.tasks import disburse_loan, disburse_loans, disbursement_sweeper
from lending.models import (
    AccountCode,
    AuditLog,
    CreditLine,
    Disbursement,
    EntryKind,
    JournalEntry,
    Loan,
    LoanStatus,
    Program,
    Review,
)
from lending.selectors.loans import disbursements_due
from lending.services.book_check import book_check
from lending.services.disbursement import (
    DisbursementStateError,
    disbursement_fail,
    disbursement_lease,
    disbursement_request,
    disbursement_settle,
    end_to_end_id_for,
    payout_relay,
)
from lending.services.finance import loan_finance
from lending.services.terms import due_date_for
from scf import clock
from scf.enqueue import enqueue
from tests.lending.factories import CreditLineFactory, ProgramFactory
from tests.orders.factories import AgentFactory, OrderFactory, UserFactory

pytestmark = pytest.mark.django_db

PRINCIPAL = Decimal("8000.00")  # an order of 10,000.00 at 80%
ZERO = Decimal("0.00")


class RecordingBank:
    """Wraps a bank and records which calls were made, in order."""

    def __init__(self, inner: SandboxBank) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def initiate_transfer(self, request: TransferRequest) -> TransferReceipt:
        self.calls.append("initiate")
        return self.inner.initiate_transfer(request)

    def transfer_status(self, end_to_end_id: str) -> TransferStatus:
        self.calls.append("status")
        return self.inner.transfer_status(end_to_end_id)

    def incoming_credits(
        self, since: dt.datetime | None, until: dt.datetime
    ) -> list[IncomingCredit]:
        return self.inner.incoming_credits(since, until)


def bank(**config: Any) -> RecordingBank:
    return RecordingBank(SandboxBank(SandboxConfig(**config), report_sink=None))


@pytest.fixture
def program(enterprise: Any) -> Program:
    return ProgramFactory(enterprise=enterprise)


@pytest.fixture
def line(agent: Any, program: Program) -> CreditLine:
    return CreditLineFactory(agent=agent, program=program)


@pytest.fixture(autouse=True)
def fresh_adapters(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test builds its own adapter from its own settings."""
    monkeypatch.setattr(bank_package, "_adapters", {})


def approved_loan(user: Any, **order: Any) -> Loan:
    """Finance a new order: the engine approves it and the finance service records its
    disbursement in the same transaction (the task is dispatched after commit)."""
    order_row = OrderFactory(agent=user.agent, enterprise=user.agent.enterprises.first(), **order)
    with transaction.atomic():
        loan = loan_finance(user=user, order_id=order_row.pk)
    assert loan.status == LoanStatus.DISBURSING
    return loan


@pytest.fixture
def loan(line: CreditLine, agent_user: Any) -> Loan:
    return approved_loan(agent_user)


def entries(loan: Loan) -> list[JournalEntry]:
    return list(JournalEntry.objects.filter(loan=loan, kind=EntryKind.DISBURSEMENT))


def assert_paid_once(loan: Loan) -> None:
    """Active, one transfer at the bank, one ledger entry, the reservation turned outstanding."""
    loan.refresh_from_db()
    assert loan.status == LoanStatus.ACTIVE
    assert (loan.outstanding_principal, loan.reserved_amount) == (loan.principal, ZERO)
    transfer = SandboxTransfer.objects.get(end_to_end_id=end_to_end_id_for(loan.pk))
    assert (transfer.amount, transfer.status) == (loan.principal, "settled")
    [entry] = entries(loan)
    lines = sorted((x.account, x.debit, x.credit, x.loan_id) for x in entry.lines.all())
    assert lines == [
        (AccountCode.PRINCIPAL_RECEIVABLE, loan.principal, ZERO, loan.pk),
        (AccountCode.SETTLEMENT, ZERO, loan.principal, None),
    ]
    assert entry.idempotency_key == f"disburse:{loan.pk}"
    assert book_check() == []


# --- requesting ----------------------------------------------------------------------------


def test_request_moves_the_approved_loan_to_disbursing_and_records_the_payment(
    line, agent_user, enterprise, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        loan = approved_loan(agent_user)
    assert len(callbacks) == 1  # the task, dispatched only after commit
    loan.refresh_from_db()
    assert loan.status == LoanStatus.DISBURSING and loan.reserved_amount == PRINCIPAL
    disbursement = Disbursement.objects.get(loan=loan)
    assert (
        disbursement.end_to_end_id == f"SCFD{loan.pk:012d}"
        and len(disbursement.end_to_end_id) <= 35
    )
    assert (disbursement.amount, disbursement.currency, disbursement.status) == (
        PRINCIPAL,
        "CNY",
        "pending",
    )
    assert (disbursement.creditor_account, disbursement.creditor_bank) == (
        enterprise.settlement_account_no,
        enterprise.settlement_bank,
    )
    assert disbursement.creditor_name == enterprise.settlement_account_name
    assert AuditLog.objects.filter(action="loan.disbursing", object_id=str(loan.pk)).exists()


def test_request_refuses_a_loan_that_is_not_approved(line, agent_user):
    loan = approved_loan(agent_user)
    with pytest.raises(DisbursementStateError):
        disbursement_request(loan=loan)
    assert Disbursement.objects.filter(loan=loan).count() == 1


def test_approved_loan_is_paid_out_by_the_task_after_commit(
    line, agent_user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        loan = approved_loan(agent_user)
    assert_paid_once(loan)
    disbursement = Disbursement.objects.get(loan=loan)
    assert disbursement.status == "settled" and disbursement.attempts == 1
    line.refresh_from_db()
    program = line.program
    program.refresh_from_db()
    assert (line.reserved, line.outstanding_principal) == (ZERO, PRINCIPAL)
    assert (program.reserved, program.outstanding_principal) == (ZERO, PRINCIPAL)
    loan.refresh_from_db()
    assert loan.disbursed_at == disbursement.settled_at
    assert loan.value_date == clock.business_date(program.time_zone, disbursement.settled_at)
    assert loan.due_date == due_date_for(loan.value_date, 90, "CN")
    assert AuditLog.objects.filter(action="loan.disbursed", object_id=str(loan.pk)).count() == 1


def test_value_date_is_the_settlement_day_in_the_program_zone(loan):
    disbursement = Disbursement.objects.get(loan=loan)
    # Friday 17:30 UTC is Saturday 01:30 in Shanghai.
    settled_at = dt.datetime(2026, 3, 6, 17, 30, tzinfo=dt.UTC)
    disbursement_settle(disbursement_id=disbursement.pk, bank_reference="B1", settled_at=settled_at)
    loan.refresh_from_db()
    assert loan.value_date == dt.date(2026, 3, 7)
    assert loan.due_date == due_date_for(dt.date(2026, 3, 7), 90, "CN") == dt.date(2026, 6, 5)
    assert entries(loan)[0].business_date == dt.date(2026, 3, 7)


def test_due_date_on_an_official_make_up_working_saturday_stays_there(loan):
    disbursement = Disbursement.objects.get(loan=loan)
    # Settled 2025-07-13 in Shanghai: + 90 days is Saturday 2025-10-11, which the State Council
    # made a working day (National Day 调休), so the loan is due that day, not on Monday.
    settled_at = dt.datetime(2025, 7, 13, 2, 0, tzinfo=dt.UTC)
    disbursement_settle(disbursement_id=disbursement.pk, bank_reference="B1", settled_at=settled_at)
    loan.refresh_from_db()
    assert (loan.value_date, loan.due_date) == (dt.date(2025, 7, 13), dt.date(2025, 10, 11))


# --- exactly once --------------------------------------------------------------------------


def test_running_execute_twice_pays_once(loan):
    disbursement = Disbursement.objects.get(loan=loan)
    sandbox = bank()
    assert disbursement_execute(disbursement.pk, bank=sandbox).outcome is Outcome.SETTLED
    assert disbursement_execute(disbursement.pk, bank=sandbox).outcome is Outcome.BUSY
    assert sandbox.calls == ["initiate"]
    assert SandboxTransfer.objects.get().requests_received == 1
    assert_paid_once(loan)


def test_settling_twice_posts_and_consumes_once(loan, line):
    disbursement = Disbursement.objects.get(loan=loan)
    settled_at = clock.now()
    for _ in range(2):
        disbursement_settle(
            disbursement_id=disbursement.pk, bank_reference="B1", settled_at=settled_at
        )
    assert len(entries(loan)) == 1
    line.refresh_from_db()
    assert (line.reserved, line.outstanding_principal) == (ZERO, PRINCIPAL)
    loan.refresh_from_db()
    assert loan.outstanding_principal == PRINCIPAL
    assert book_check() == []


def test_a_lease_is_held_by_one_worker_until_it_expires(loan, monkeypatch):
    disbursement = Disbursement.objects.get(loan=loan)
    now = clock.now()
    monkeypatch.setattr(clock, "now", lambda: now)
    first = disbursement_lease(disbursement_id=disbursement.pk, seconds=60)
    assert first is not None and first.attempts == 1
    assert disbursement_lease(disbursement_id=disbursement.pk, seconds=60) is None
    monkeypatch.setattr(clock, "now", lambda: now + dt.timedelta(seconds=61))
    second = disbursement_lease(disbursement_id=disbursement.pk, seconds=60)
    assert second is not None and second.attempts == 2


def test_worker_that_died_after_the_bank_accepted_is_recovered_by_a_query(loan, monkeypatch):
    """Attempt 1 took the lease and the bank stored the transfer, then the worker died."""
    disbursement = Disbursement.objects.get(loan=loan)
    dead = disbursement_lease(disbursement_id=disbursement.pk, seconds=60)
    assert dead is not None
    SandboxBank(SandboxConfig(), report_sink=None).initiate_transfer(
        TransferRequest(
            end_to_end_id=dead.end_to_end_id,
            amount=dead.amount,
            currency=dead.currency,
            debtor_account="LENDER",
            creditor_name=dead.creditor_name,
            creditor_account=dead.creditor_account,
        )
    )
    later = clock.now() + dt.timedelta(seconds=61)
    monkeypatch.setattr(clock, "now", lambda: later)
    sandbox = bank()
    assert disbursement_execute(disbursement.pk, bank=sandbox).outcome is Outcome.SETTLED
    assert sandbox.calls == ["status"]  # asked, did not re-send
    assert SandboxTransfer.objects.get().requests_received == 1
    assert_paid_once(loan)


def test_timeout_after_accept_then_retry_queries_and_settles_without_a_second_transfer(loan):
    disbursement = Disbursement.objects.get(loan=loan)
    flaky = bank(timeout_after_accept_rate=1.0)
    with pytest.raises(DisbursementRetry) as retry:
        disbursement_execute(disbursement.pk, bank=flaky)
    assert retry.value.retry_in > 0
    disbursement.refresh_from_db()
    assert (disbursement.status, disbursement.lease_until) == ("sent", None)
    assert disbursement.next_attempt_at is not None and "BankTimeout" in disbursement.last_error
    loan.refresh_from_db()
    assert loan.status == LoanStatus.DISBURSING and not entries(loan)
    healthy = bank()
    assert disbursement_execute(disbursement.pk, bank=healthy).outcome is Outcome.SETTLED
    assert (flaky.calls, healthy.calls) == (["initiate"], ["status"])
    assert SandboxTransfer.objects.get().requests_received == 1
    assert_paid_once(loan)


def test_unavailable_bank_then_retry_asks_first_and_then_sends(loan):
    disbursement = Disbursement.objects.get(loan=loan)
    down = bank(unavailable_rate=1.0)
    with pytest.raises(DisbursementRetry):
        disbursement_execute(disbursement.pk, bank=down)
    disbursement.refresh_from_db()
    assert disbursement.status == "pending" and not SandboxTransfer.objects.exists()
    healthy = bank()
    assert disbursement_execute(disbursement.pk, bank=healthy).outcome is Outcome.SETTLED
    assert healthy.calls == ["status", "initiate"]
    assert_paid_once(loan)


def test_delayed_settlement_is_picked_up_by_a_later_query(loan, monkeypatch):
    disbursement = Disbursement.objects.get(loan=loan)
    start = clock.now()
    monkeypatch.setattr(clock, "now", lambda: start)
    sandbox = bank(settle_delay_seconds=120)
    first = disbursement_execute(disbursement.pk, bank=sandbox)
    assert first.outcome is Outcome.AWAITING_SETTLEMENT and first.poll_in == 5
    disbursement.refresh_from_db()
    assert (disbursement.status, disbursement.lease_until) == ("sent", None)
    assert disbursement.bank_reference == SandboxTransfer.objects.get().bank_reference
    assert disbursement.next_attempt_at == start + dt.timedelta(seconds=5)
    monkeypatch.setattr(clock, "now", lambda: start + dt.timedelta(seconds=60))
    assert disbursement_execute(disbursement.pk, bank=sandbox).poll_in == 10  # doubling
    monkeypatch.setattr(clock, "now", lambda: start + dt.timedelta(seconds=130))
    assert disbursement_execute(disbursement.pk, bank=sandbox).outcome is Outcome.SETTLED
    assert sandbox.calls == ["initiate", "status", "status"]
    assert_paid_once(loan)
    disbursement.refresh_from_db()
    assert disbursement.settled_at == start + dt.timedelta(seconds=120)


# --- failure -------------------------------------------------------------------------------


def test_rejection_fails_the_loan_releases_credit_and_opens_a_review(loan, line, enterprise):
    disbursement = Disbursement.objects.get(loan=loan)
    closed = bank(reject_accounts={enterprise.settlement_account_no: "AC04"})
    assert disbursement_execute(disbursement.pk, bank=closed).outcome is Outcome.FAILED
    loan.refresh_from_db()
    assert (loan.status, loan.reserved_amount, loan.outstanding_principal) == (
        LoanStatus.DISBURSEMENT_FAILED,
        ZERO,
        ZERO,
    )
    disbursement.refresh_from_db()
    assert (disbursement.status, disbursement.bank_reason_code) == ("failed", "AC04")
    line.refresh_from_db()
    program = Program.objects.get(pk=line.program_id)
    assert (line.reserved, line.outstanding_principal, program.reserved) == (ZERO, ZERO, ZERO)
    review = Review.objects.get(loan=loan)
    assert (review.kind, review.status) == ("disbursement_failed", "open")
    assert AuditLog.objects.filter(action="loan.disbursement_failed").count() == 1
    assert not entries(loan) and book_check() == []
    assert disbursement_execute(disbursement.pk, bank=closed).outcome is Outcome.BUSY


def test_failing_twice_releases_once_and_final_states_do_not_cross(loan, line):
    disbursement = Disbursement.objects.get(loan=loan)
    for _ in range(2):
        disbursement_fail(disbursement_id=disbursement.pk, reason_code="AC04", detail="closed")
    line.refresh_from_db()
    assert line.reserved == ZERO and Review.objects.filter(loan=loan).count() == 1
    with pytest.raises(DisbursementStateError):
        disbursement_settle(
            disbursement_id=disbursement.pk, bank_reference="B", settled_at=clock.now()
        )
    assert not entries(loan)


def test_a_settled_disbursement_cannot_be_failed(loan):
    disbursement = Disbursement.objects.get(loan=loan)
    disbursement_settle(disbursement_id=disbursement.pk, bank_reference="B", settled_at=clock.now())
    with pytest.raises(DisbursementStateError):
        disbursement_fail(disbursement_id=disbursement.pk, reason_code="AC04", detail="closed")
    loan.refresh_from_db()
    assert loan.status == LoanStatus.ACTIVE and len(entries(loan)) == 1


class DownOnSend:
    """A bank that never accepts a transfer but answers queries (it has nothing)."""

    calls: list[str] = []

    def initiate_transfer(self, request: TransferRequest) -> TransferReceipt:
        DownOnSend.calls.append("initiate")
        raise BankUnavailable("down")

    def transfer_status(self, end_to_end_id: str) -> TransferStatus:
        DownOnSend.calls.append("status")
        return TransferStatus(end_to_end_id=end_to_end_id, state=TransferState.UNKNOWN)

    def incoming_credits(self, since: dt.datetime | None, until: dt.datetime) -> list[Any]:
        return []


@pytest.fixture
def eager_retries() -> Iterator[None]:
    """Eager Celery re-runs a retried task at once, but only when it does not propagate errors."""
    conf = disburse_loan.app.conf
    saved = conf.task_eager_propagates
    conf.task_eager_propagates = False
    yield
    conf.task_eager_propagates = saved


def test_task_retries_then_fails_a_payment_the_bank_never_received(loan, settings, eager_retries):
    settings.BANK_ADAPTER = "tests.integrations.test_disbursement.DownOnSend"
    settings.DISBURSEMENT_MAX_RETRIES = 3
    DownOnSend.calls = []
    disbursement = Disbursement.objects.get(loan=loan)
    assert disburse_loan.delay(disbursement.pk).get() == "failed"
    assert DownOnSend.calls == ["initiate"] + ["status", "initiate"] * 3 + ["status"]
    disbursement.refresh_from_db()
    assert (disbursement.status, disbursement.bank_reason_code) == ("failed", BANK_UNREACHABLE)
    assert disbursement.attempts == 5
    loan.refresh_from_db()
    assert loan.status == LoanStatus.DISBURSEMENT_FAILED
    assert Review.objects.filter(loan=loan, kind="disbursement_failed").exists()


def test_giving_up_never_fails_a_payment_the_bank_may_have(loan):
    disbursement = Disbursement.objects.get(loan=loan)
    with pytest.raises(DisbursementRetry):
        disbursement_execute(disbursement.pk, bank=bank(timeout_after_accept_rate=1.0))
    outcome = disbursement_give_up(
        disbursement.pk, detail="gave up", bank=bank(unavailable_rate=1.0)
    )
    assert outcome is Outcome.UNRESOLVED
    disbursement.refresh_from_db()
    assert (disbursement.status, disbursement.lease_until) == ("sent", None)
    assert disbursement_give_up(disbursement.pk, detail="gave up", bank=bank()) is Outcome.SETTLED
    assert_paid_once(loan)


# --- lost messages and duplicate replies ---------------------------------------------------


def test_sweeper_sends_what_a_lost_message_left_behind(line, agent_user, monkeypatch):
    loans = [approved_loan(agent_user) for _ in range(3)]  # on_commit never ran: lost
    ids = [Disbursement.objects.get(loan=x).pk for x in loans]
    assert disbursements_due(min_age_seconds=60) == []  # too young: a dispatch may be in flight
    assert disbursements_due(min_age_seconds=0) == ids
    held = disbursement_lease(disbursement_id=ids[0], seconds=600)
    assert held is not None
    Disbursement.objects.filter(pk=ids[1]).update(
        next_attempt_at=clock.now() + dt.timedelta(minutes=5)
    )
    assert disbursements_due(min_age_seconds=0) == [ids[2]]
    assert disbursement_sweeper.delay(min_age_seconds=0).get() == 1
    assert_paid_once(loans[2])
    later = clock.now() + dt.timedelta(minutes=11)
    monkeypatch.setattr(clock, "now", lambda: later)
    assert disbursement_sweeper.delay(min_age_seconds=0).get() == 2
    for x in loans:
        assert_paid_once(x)
    assert SandboxTransfer.objects.filter(requests_received=1).count() == 3


def test_duplicate_bank_replies_are_harmless(loan, settings, monkeypatch):
    settings.SANDBOX_BANK = {"duplicate_reply_rate": 1.0}
    disbursement = Disbursement.objects.get(loan=loan)
    delivered: list[tuple[str, list[Any]]] = []

    def deliver(name: str, args: list[Any]) -> None:
        delivered.append((name, args))
        enqueue(name, args)

    monkeypatch.setattr("integrations.bank.sandbox.enqueue", deliver)
    # The sandbox's default sink queues integrations.bank_status_report (eager here): the
    # duplicate reply settles the loan inside the bank call, before the first reply arrives.
    assert disburse_loan.delay(disbursement.pk).get() == "settled"
    assert [(name, args[0]["state"]) for name, args in delivered] == [
        ("integrations.bank_status_report", "settled")
    ]
    assert_paid_once(loan)


def test_a_status_report_delivered_twice_settles_once(loan):
    disbursement = Disbursement.objects.get(loan=loan)
    report = TransferStatus(
        end_to_end_id=disbursement.end_to_end_id,
        state=TransferState.SETTLED,
        bank_reference="B-1",
        settled_at=clock.now(),
    )
    assert [disbursement_status_report(report) for _ in range(2)] == [Outcome.SETTLED] * 2
    loan.refresh_from_db()
    assert loan.status == LoanStatus.ACTIVE and len(entries(loan)) == 1
    disbursement.refresh_from_db()
    assert disbursement.bank_reference == "B-1"


def test_a_status_report_about_an_unknown_payment_is_ignored(db):
    report = TransferStatus(end_to_end_id="SCFD999999999999", state=TransferState.SETTLED)
    assert disbursement_status_report(report) is Outcome.IGNORED


# --- real concurrency ----------------------------------------------------------------------


@pytest.fixture
def committed_loan(transactional_db: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Loan]:
    """An approved loan, committed, whose dispatch was lost (so no worker has touched it)."""
    program = ProgramFactory()
    agent = AgentFactory(enterprises=[program.enterprise])
    CreditLineFactory(agent=agent, program=program)
    with monkeypatch.context() as patch:
        patch.setattr("lending.services.disbursement.enqueue_on_commit", lambda *a, **k: None)
        loan = approved_loan(UserFactory(role="agent", agent=agent))
    yield loan


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_workers_at_once_pay_once(committed_loan, settings):
    settings.SANDBOX_BANK = {"latency_ms": 50}
    disbursement = Disbursement.objects.get(loan=committed_loan)
    barrier = threading.Barrier(10, timeout=30)
    outcomes: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            barrier.wait()
            outcome = disbursement_execute(disbursement.pk).outcome
            with lock:
                outcomes.append(outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == sorted([Outcome.SETTLED] + [Outcome.BUSY] * 9)
    assert SandboxTransfer.objects.get().requests_received == 1
    assert_paid_once(committed_loan)


# --- batches from the web processes' relay ------------------------------------------------------


def test_a_batch_pays_each_of_its_loans_once(line, agent_user):
    loans = [approved_loan(agent_user) for _ in range(3)]
    ids = [Disbursement.objects.get(loan=loan).pk for loan in loans]
    assert disburse_loans.delay(ids).get() == ["settled"] * 3
    for loan in loans:
        assert_paid_once(loan)
    # Redelivered (a worker died before acknowledging): each is final, nothing is done again.
    assert disburse_loans.delay(ids).get() == ["busy"] * 3
    for loan in loans:
        assert_paid_once(loan)
    assert book_check() == []


def test_a_transient_error_in_a_batch_goes_on_as_a_retry_of_that_payment(
    loan, settings, eager_retries
):
    """The batch's attempt is the first; the hand-over to ``disburse_loan`` counts as the first
    retry, so the bank sees exactly what a single message would have caused."""
    settings.BANK_ADAPTER = "tests.integrations.test_disbursement.DownOnSend"
    settings.DISBURSEMENT_MAX_RETRIES = 3
    DownOnSend.calls = []
    disbursement = Disbursement.objects.get(loan=loan)
    assert disburse_loans.delay([disbursement.pk]).get() == ["retrying"]
    assert DownOnSend.calls == ["initiate"] + ["status", "initiate"] * 3 + ["status"]
    disbursement.refresh_from_db()
    assert (disbursement.status, disbursement.attempts) == ("failed", 5)


def test_with_a_broker_the_commit_hands_the_payment_to_the_relay(
    line, agent_user, monkeypatch, django_capture_on_commit_callbacks
):
    handed: list[int] = []
    monkeypatch.setattr(payout_relay(), "put", handed.append)
    conf = disburse_loan.app.conf
    saved, conf.task_always_eager = conf.task_always_eager, False
    try:
        with django_capture_on_commit_callbacks(execute=True):
            loan = approved_loan(agent_user)
    finally:
        conf.task_always_eager = saved
    assert handed == [Disbursement.objects.get(loan=loan).pk]
    assert Loan.objects.get(pk=loan.pk).status == LoanStatus.DISBURSING  # not paid in place
