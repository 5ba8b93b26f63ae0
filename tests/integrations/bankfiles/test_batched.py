"""Batched credits (one booking for several payments) split into their payments: each matched by
its own reference and applied on its own, what matches nothing queued by its own amount, nothing
applied twice on a re-import; one whose payments do not add up stays whole in the queue. The
day reconciles with the entry compared whole against its parts' postings."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command

from integrations.bank.files.matched import matched_credit_apply
from integrations.bank_models import EntryStatus, ReconciliationRun, StatementEntry, UnappliedCredit
from lending.models import LoanStatus, Repayment
from lending.selectors.repayment_refs import repayment_reference_for
from lending.services.book_check import book_check

from .rail import Rail, cycle, finance, import_files

pytestmark = pytest.mark.django_db


def _reconciled(rail: Rail, capture: Any) -> ReconciliationRun:
    rail.end_of_day()
    import_files(capture)
    call_command("reconcile", "--date", str(rail.today))  # exit 1 (SystemExit) on a break
    return ReconciliationRun.objects.order_by("-id").first()


def test_a_batched_credit_is_split_and_each_payment_applied_once(
    line, agent_user, rail, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    first = finance(agent_user, capture)
    second = finance(agent_user, capture)
    cycle(rail, capture)
    rail.pay_in_batched(
        {"amount": "100.00", "creditor_reference": repayment_reference_for(line.pk)},
        {"amount": "50.00", "remittance": f"repay {second.reference}"},
        {"amount": "30.00", "remittance": "invoice 991", "debtor_account": "6222999988887777"},
    )
    import_files(capture)

    whole = StatementEntry.objects.get(credit=True, detail_index=0)
    assert (whole.status, whole.amount) == (EntryStatus.SPLIT, Decimal("180.00"))
    parts = list(StatementEntry.objects.filter(detail_index__gt=0).order_by("detail_index"))
    assert [(p.detail_index, p.amount, p.status) for p in parts] == [
        (1, Decimal("100.00"), EntryStatus.APPLIED),
        (2, Decimal("50.00"), EntryStatus.APPLIED),
        (3, Decimal("30.00"), EntryStatus.UNAPPLIED),
    ]
    assert {p.entry_reference for p in parts} == {whole.entry_reference}
    due_first = first if first.due_date <= second.due_date else second
    repayments = {r.reference: (r.loan_id, r.amount) for r in Repayment.objects.all()}
    assert repayments == {
        f"BANK-1:{whole.entry_reference}/1": (due_first.pk, Decimal("100.00")),
        f"BANK-1:{whole.entry_reference}/2": (second.pk, Decimal("50.00")),
    }
    credit = UnappliedCredit.objects.get()
    assert (credit.amount, credit.entry_id, credit.reason) == (
        Decimal("30.00"),
        parts[2].pk,
        "no loan matches the reference",
    )
    assert credit.entry.debtor_account == "6222999988887777"  # refundable to that payer
    assert matched_credit_apply(entry_id=parts[0].pk) == "busy"  # applied: not again
    assert book_check() == []

    # The statement at night lists the batched entry again: linked, nothing applied again.
    run = _reconciled(rail, capture)
    assert run.breaks_count == 0
    assert StatementEntry.objects.filter(entry_reference=whole.entry_reference).count() == 4
    assert set(
        StatementEntry.objects.filter(entry_reference=whole.entry_reference).values_list(
            "statement_id", flat=True
        )
    ) == {run.bank.statements.get().pk}
    assert Repayment.objects.count() == 2 and UnappliedCredit.objects.count() == 1
    for loan in (first, second):
        loan.refresh_from_db()
        assert loan.status == LoanStatus.ACTIVE
    assert book_check() == []


def test_a_batched_credit_whose_payments_do_not_add_up_stays_whole(
    line, agent_user, rail, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    loan = finance(agent_user, capture)
    cycle(rail, capture)
    rail.pay_in_batched(
        {"amount": "100.00", "remittance": f"repay {loan.reference}"},
        {"amount": "50.00", "remittance": f"repay {loan.reference}"},
        amount="140.00",  # the bank kept a fee, say: we cannot tell which payment paid it
    )
    import_files(capture)
    whole = StatementEntry.objects.get(credit=True)
    assert (whole.status, whole.detail_index) == (EntryStatus.UNAPPLIED, 0)
    credit = UnappliedCredit.objects.get()
    assert credit.amount == Decimal("140.00")
    assert credit.reason == "batched credit: its payments add up to 150.00, not the entry's 140.00"
    assert not Repayment.objects.exists()
    assert book_check() == []
    assert _reconciled(rail, capture).breaks_count == 0
