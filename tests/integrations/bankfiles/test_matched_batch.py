"""Matched credits recorded a batch at a time (``files.matched``): two workers at once record each
credit once, the declined ones go through the per-credit path, and the books balance."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from integrations.bank.files.inbound import bank_file_import
from integrations.bank.files.matched import MatchedResult, matched_credits_apply
from integrations.bank_models import EntryStatus, StatementEntry, UnappliedCredit
from lending.models import AuditLog, Bank, Loan, LoanStatus, Repayment
from tests.lending.active_loans import active_loan, books_balance

from .rail import BANK_CODE, Rail

pytestmark = pytest.mark.django_db(transaction=True)


def _import_credits(rail: Rail, loans: list[Loan], amount: str) -> None:
    for loan in loans:
        for path in rail.pay_in(amount, remittance=f"repay {loan.reference}"):
            assert bank_file_import(bank=Bank.objects.get(code=BANK_CODE), path=path) == "imported"


def test_two_workers_record_a_files_matched_credits_once(line: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SKIP LOCKED and row locks are PostgreSQL's")
    rail = Rail()
    loans = [active_loan(line, principal="5000.00", value_date=rail.today) for _ in range(14)]
    _import_credits(rail, loans, "1200.00")
    assert StatementEntry.objects.filter(status=EntryStatus.MATCHED).count() == 14
    bank = Bank.objects.get(code=BANK_CODE)
    barrier = threading.Barrier(2)
    results: list[MatchedResult] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(matched_credits_apply(bank=bank, batch=4))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert sum(r.applied for r in results) == 14 and sum(r.unapplied for r in results) == 0
    for loan in loans:
        [repayment] = Repayment.objects.filter(loan=loan)
        assert repayment.amount == Decimal("1200.00") and repayment.to_principal > 0
    entries = StatementEntry.objects.order_by("pk")
    assert {e.status for e in entries} == {EntryStatus.APPLIED}
    assert sorted(key for e in entries for key in e.journal_keys) == sorted(
        f"repay:{r.reference}" for r in Repayment.objects.all()
    )
    assert AuditLog.objects.filter(action="repayment_recorded").count() == 14
    line.refresh_from_db()
    assert line.outstanding_principal == sum(
        Loan.objects.filter(credit_line=line).values_list("outstanding_principal", flat=True)
    )
    assert matched_credits_apply(bank=bank) == MatchedResult()  # nothing left
    books_balance()


def test_credits_a_batch_declines_take_the_per_credit_path(line: Any) -> None:
    rail = Rail()
    open_loan = active_loan(line, principal="5000.00", value_date=rail.today)
    repaid = active_loan(line, principal="1000.00", value_date=rail.today)
    Loan.objects.filter(pk=repaid.pk).update(status=LoanStatus.WRITTEN_OFF)
    _import_credits(rail, [open_loan, repaid, open_loan], "700.00")
    result = matched_credits_apply(bank=Bank.objects.get(code=BANK_CODE))
    # The open loan's two credits in one batch; the written-off loan's refused by the service.
    assert result == MatchedResult(applied=2, unapplied=1)
    assert Repayment.objects.filter(loan=open_loan).count() == 2
    assert not Repayment.objects.filter(loan=repaid).exists()
    [queued] = UnappliedCredit.objects.all()
    assert queued.loan_id == repaid.pk and "loan_not_repayable" in queued.reason
    open_loan.refresh_from_db()
    assert open_loan.outstanding_principal == Decimal("3600.00")
    books_balance()
