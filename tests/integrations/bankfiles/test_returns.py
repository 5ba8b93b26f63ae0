"""Returned payments end to end with the file sandbox's ``returns`` fault: a disbursement that
settled and came back undoes the loan (accruals and disbursement reversed, credit line restored,
a case with the ISO reason), once; one that cannot be undone by a rule goes to review with the
money in the unapplied queue; a returned refund puts its credit back in the queue. The day
reconciles and the book checks clean in every case."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.db import transaction

from integrations.bank.files.unapplied import unapplied_refund
from integrations.bank.iso20022 import Faults
from integrations.bank_models import (
    EntryStatus,
    OutboundPayment,
    ReconciliationRun,
    StatementEntry,
    UnappliedCredit,
)
from lending.locks import loan_lock
from lending.models import (
    Accrual,
    AuditLog,
    Disbursement,
    JournalEntry,
    Loan,
    LoanStatus,
    Review,
)
from lending.selectors.repayment_refs import repayment_reference_for
from lending.services.accrual_loan import loan_accrue_through
from lending.services.book_check import book_check
from lending.services.disbursement import end_to_end_id_for

from .rail import Rail, cycle, finance, import_files

pytestmark = pytest.mark.django_db
ZERO = Decimal("0.00")


def _accrue_today(loan: Loan, rail: Rail) -> None:
    with transaction.atomic():
        locked = loan_lock(loan.pk)
        loan_accrue_through(loan=locked, through=rail.today, key=f"test-accrue:{loan.pk}")


def _returning(rail: Rail, e2e: str, code: str = "AC04") -> None:
    rail.bank.faults = replace(rail.bank.faults, returns={e2e: code})


def _reconciles(rail: Rail, capture: Any) -> None:
    rail.end_of_day()
    import_files(capture)
    call_command("reconcile", "--date", str(rail.today))  # exit 1 (SystemExit) on a break
    assert ReconciliationRun.objects.order_by("-id").first().breaks_count == 0


def test_a_returned_disbursement_undoes_the_loan_once(
    line, agent_user, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    loan = finance(agent_user, capture)
    e2e = end_to_end_id_for(loan.pk)
    rail = Rail(Faults(duplicate_delivery=True))
    cycle(rail, capture)  # pain.001 -> ACSC: active
    loan.refresh_from_db()
    assert loan.status == LoanStatus.ACTIVE
    _accrue_today(loan, rail)
    loan.refresh_from_db()
    assert loan.accrued_interest > 0
    line.refresh_from_db()
    assert line.outstanding_principal == loan.principal

    _returning(rail, e2e, "AC04")
    rail.next_cycle()  # the return, delivered twice (the same file)
    result = import_files(capture)
    assert (result.count("imported"), result.count("duplicate")) == (1, 1)

    loan.refresh_from_db()
    line.refresh_from_db()
    assert loan.status == LoanStatus.DISBURSEMENT_FAILED
    assert (loan.outstanding_principal, loan.accrued_interest, loan.accrued_penalty) == (
        ZERO,
        ZERO,
        ZERO,
    )
    assert (line.outstanding_principal, line.reserved) == (ZERO, ZERO)
    disbursement = Disbursement.objects.get(loan=loan)
    assert (disbursement.status, disbursement.bank_reason_code) == ("failed", "AC04")
    assert not Accrual.objects.filter(loan=loan, reversed_at__isnull=True).exists()
    reversal = JournalEntry.objects.get(idempotency_key=f"disburse-return:{loan.pk}")
    assert reversal.reversal_of.idempotency_key == f"disburse:{loan.pk}"
    payment = OutboundPayment.objects.get(end_to_end_id=e2e)
    assert (payment.status, payment.reason_code) == ("returned", "AC04")
    entry = StatementEntry.objects.get(credit=True)
    assert (entry.status, entry.reversal, entry.loan_id) == (EntryStatus.RETURNED, True, loan.pk)
    assert entry.journal_keys == [f"disburse-return:{loan.pk}"]
    assert not UnappliedCredit.objects.exists()
    case = Review.objects.get(loan=loan, kind="disbursement_failed")
    assert "came back" in case.notes[0]["note"] and "AC04" in case.notes[0]["note"]
    audit = AuditLog.objects.get(action="loan.disbursement_returned", object_id=str(loan.pk))
    assert audit.after["reason_code"] == "AC04"
    assert book_check() == []

    # The camt.053 at night lists the return again: linked, not applied a second time.
    _reconciles(rail, capture)
    assert JournalEntry.objects.filter(idempotency_key__startswith="disburse-return:").count() == 1
    assert Review.objects.filter(loan=loan).count() == 1
    assert book_check() == []


def test_a_return_after_a_repayment_goes_to_review_with_the_money_in_suspense(
    line, agent_user, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    loan = finance(agent_user, capture)
    rail = Rail()
    cycle(rail, capture)
    rail.pay_in("100.00", creditor_reference=repayment_reference_for(line.pk))
    import_files(capture)
    loan.refresh_from_db()
    outstanding = loan.outstanding_principal
    assert outstanding == loan.principal - Decimal("100.00")

    _returning(rail, end_to_end_id_for(loan.pk), "MD06")
    rail.next_cycle()
    import_files(capture)
    loan.refresh_from_db()
    assert (loan.status, loan.outstanding_principal) == (LoanStatus.ACTIVE, outstanding)
    credit = UnappliedCredit.objects.get()
    assert (credit.amount, credit.loan_id) == (loan.principal, loan.pk)
    assert "MD06" in credit.reason and "sent to review" in credit.reason
    case = Review.objects.get(loan=loan, kind="disbursement_failed")
    assert "repayments" in case.notes[0]["note"]
    assert OutboundPayment.objects.get(kind="disbursement").status == "returned"
    assert book_check() == []
    _reconciles(rail, capture)


def test_a_returned_refund_puts_the_credit_back_in_the_queue(
    line, ops_user, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    rail = Rail()
    rail.pay_in("300.00", remittance="payment for invoice 77")
    import_files(capture)
    credit = UnappliedCredit.objects.get()
    unapplied_refund(credit_id=credit.pk, actor=ops_user)
    cycle(rail, capture)
    credit.refresh_from_db()
    assert credit.status == "refunded"
    refund = OutboundPayment.objects.get(kind="refund")

    _returning(rail, refund.end_to_end_id, "AC01")
    rail.next_cycle()
    import_files(capture)
    credit.refresh_from_db()
    refund.refresh_from_db()
    assert (credit.status, credit.refund_payment_id) == ("open", None)
    assert (refund.status, refund.reason_code) == ("returned", "AC01")
    entry = StatementEntry.objects.get(reversal=True)
    assert entry.status == EntryStatus.RETURNED
    assert UnappliedCredit.objects.count() == 1  # the same credit, not a second one
    assert AuditLog.objects.filter(action="unapplied_credit.refund_returned").count() == 1
    assert book_check() == []
    _reconciles(rail, capture)


def test_a_return_of_a_payment_that_is_not_ours_is_an_unapplied_credit(
    line, agent_user, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    loan = finance(agent_user, capture)
    rail = Rail()
    cycle(rail, capture)
    # The bank returns it, but our payment row says it never settled (a book we cannot trust
    # blindly): nothing is undone, the money waits in the queue with the reason.
    OutboundPayment.objects.filter(kind="disbursement").update(status="exported")
    _returning(rail, end_to_end_id_for(loan.pk), "AC04")
    rail.next_cycle()
    import_files(capture)
    loan.refresh_from_db()
    assert loan.status == LoanStatus.ACTIVE
    credit = UnappliedCredit.objects.get()
    assert "our payment is exported" in credit.reason
    assert not JournalEntry.objects.filter(idempotency_key__startswith="disburse-return:").exists()
