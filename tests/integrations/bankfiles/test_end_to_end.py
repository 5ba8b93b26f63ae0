"""The file rail end to end with the file sandbox bank: finance -> pain.001 -> pain.002 ACSC ->
active; repayment by camt.054 -> repaid; a rejection fails the disbursement and releases the
credit; a duplicate file is applied once; a late status report; reconciliation clean, then a
break injected and reported."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command

from integrations.bank.iso20022 import Faults, parse_pain001
from integrations.bank_models import (
    BankFile,
    BankStatement,
    EntryStatus,
    OutboundPayment,
    ReconciliationRun,
    StatementEntry,
    UnappliedCredit,
)
from lending.models import Disbursement, LoanStatus, Repayment
from lending.selectors.repayment_refs import repayment_reference_for
from lending.services.book_check import book_check
from lending.services.disbursement import end_to_end_id_for
from tests.security.test_observability import scrape

from .rail import Rail, cycle, export, finance, import_files

pytestmark = pytest.mark.django_db
ZERO = Decimal("0.00")


def test_finance_to_repaid_through_files(
    line, agent_user, rail, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    loan = finance(agent_user, capture)
    [written] = export(capture)
    payment_file = parse_pain001(Path(written.path).read_bytes())
    [instruction] = payment_file.payments
    assert instruction.end_to_end_id == end_to_end_id_for(loan.pk)
    assert instruction.remittance == loan.reference and instruction.amount == loan.principal
    assert (written.transactions, written.control_sum) == (1, loan.principal)
    rail.bank_reads_payments()
    result = import_files(capture)
    assert result.count("imported") == 2  # the pain.002 and the camt.054 debit
    loan.refresh_from_db()
    assert loan.status == LoanStatus.ACTIVE
    assert Disbursement.objects.get(loan=loan).status == "settled"
    debit = StatementEntry.objects.get(credit=False)
    assert debit.status == EntryStatus.PAYMENT and debit.journal_keys == [f"disburse:{loan.pk}"]

    rail.pay_in(str(loan.principal), creditor_reference=repayment_reference_for(line.pk))
    import_files(capture)
    loan.refresh_from_db()
    assert loan.status == LoanStatus.REPAID
    credit = StatementEntry.objects.get(credit=True)
    assert credit.status == EntryStatus.APPLIED and credit.loan_id == loan.pk
    assert Repayment.objects.get(loan=loan).reference == f"BANK-1:{credit.entry_reference}"
    assert book_check() == []

    rail.end_of_day()
    import_files(capture)
    statement = BankStatement.objects.get()
    assert statement.entries.count() == 2  # the day's two entries, imported once each
    assert StatementEntry.objects.count() == 2
    call_command("reconcile", "--date", str(rail.today))  # exit 0: no SystemExit

    # A credit the book lacks: on the statement, and in its closing balance, never booked.
    StatementEntry.objects.create(
        bank=statement.bank,
        bank_file=statement.bank_file,
        statement=statement,
        account=statement.account,
        booking_date=rail.today,
        amount=Decimal("100.00"),
        currency="CNY",
        credit=True,
        entry_reference="INJECTED-1",
        status=EntryStatus.UNAPPLIED,
    )
    BankStatement.objects.filter(pk=statement.pk).update(
        closing_balance=statement.closing_balance + Decimal("100.00")
    )
    with pytest.raises(SystemExit) as exit_info:
        call_command("reconcile", "--date", str(rail.today))
    assert exit_info.value.code == 1
    run = ReconciliationRun.objects.order_by("-id").first()
    assert sorted(run.breaks.values_list("kind", "reference")) == [
        ("closing_balance", statement.account),
        ("entry_not_in_book", "INJECTED-1"),
    ]
    assert ReconciliationRun.objects.order_by("id").first().breaks_count == 0
    breaks = scrape()["scf_reconciliation_breaks"]
    assert breaks[(("account", statement.account), ("bank", "BANK-1"))] == 2


def test_rejected_payment_fails_the_disbursement_and_releases_the_credit(
    line, agent_user, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    loan = finance(agent_user, capture)
    rail = Rail(Faults(reject={end_to_end_id_for(loan.pk): "AC04"}))
    cycle(rail, capture)
    loan.refresh_from_db()
    line.refresh_from_db()
    assert loan.status == LoanStatus.DISBURSEMENT_FAILED
    disbursement = Disbursement.objects.get(loan=loan)
    assert (disbursement.status, disbursement.bank_reason_code) == ("failed", "AC04")
    assert (line.reserved, line.outstanding_principal) == (ZERO, ZERO)
    assert OutboundPayment.objects.get().status == "rejected"


def test_duplicate_delivery_is_applied_once(line, agent_user, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    loan = finance(agent_user, capture)
    rail = Rail(Faults(duplicate_delivery=True))
    result = cycle(rail, capture)
    assert (result.count("imported"), result.count("duplicate")) == (2, 2)
    rail.pay_in("100.00", remittance=f"repay {loan.reference}")
    rail.pay_in("50.00", remittance="no reference at all")
    result = import_files(capture)
    assert (result.count("imported"), result.count("duplicate")) == (2, 2)
    assert Repayment.objects.filter(loan=loan).count() == 1
    assert UnappliedCredit.objects.get().amount == Decimal("50.00")
    assert BankFile.objects.filter(direction="inbound").count() == 4
    assert book_check() == []


def test_late_status_report_the_debit_settles_first_then_the_status_is_a_no_op(
    line, agent_user, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    loan = finance(agent_user, capture)
    rail = Rail(Faults(status_delay_cycles=1))
    cycle(rail, capture)  # only the camt.054 debit arrives
    loan.refresh_from_db()
    assert loan.status == LoanStatus.ACTIVE
    rail.next_cycle()  # the pain.002, late
    result = import_files(capture)
    assert result.count("imported") == 1
    assert Disbursement.objects.get(loan=loan).status == "settled"
    assert book_check() == []


def test_the_periodic_task_and_the_command_run_a_cycle(
    line, agent_user, rail, django_capture_on_commit_callbacks, settings
):
    from io import StringIO

    from django.core.management.base import CommandError

    from integrations.tasks_bankfiles import bank_files_cycle

    capture = django_capture_on_commit_callbacks
    finance(agent_user, capture)
    with capture(execute=True):
        assert bank_files_cycle() == {
            "written": 1,
            "imported": 0,
            "duplicates": 0,
            "quarantined": 0,
        }
    rail.bank_reads_payments()
    out = StringIO()
    with capture(execute=True):
        call_command("bank_files", "--import", stdout=out)
    assert out.getvalue().count("imported: ") == 2
    with pytest.raises(CommandError):
        call_command("bank_files")
    with pytest.raises(CommandError):
        call_command("reconcile", "--date", "yesterday")
    assert "integrations-bank-files-cycle" in settings.CELERY_BEAT_SCHEDULE
