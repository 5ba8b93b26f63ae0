"""Credits on the file rail that quote a margin account (``MG-``) or a guarantee claim (``GC-``)
reference: lodged as margin or paid to the claim, like the API sandbox's statement import; in a
batched credit, each payment on its own. A margin account of another bank does not match."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command

from integrations.bank_models import EntryStatus, ReconciliationRun, StatementEntry, UnappliedCredit
from lending.models import ClaimStatus, GuaranteeClaim, MarginMovement
from lending.services.book_check import book_check
from lending.services.cob import cob_run
from lending.services.margin import margin_account_get_or_create
from tests.lending.active_loans import money_line
from tests.lending.factories import BankFactory, CreditLineFactory, ProgramFactory
from tests.lending.tripartite_makers import (
    one_night_before_trigger,
    tripartite_loan,
    tripartite_terms,
)

from .rail import Rail, import_files

pytestmark = pytest.mark.django_db
NIGHT = dt.date(2026, 11, 20)
FAR = dt.date(2027, 12, 31)


@pytest.fixture
def tripartite_line(agent: Any, enterprise: Any) -> Any:
    line = money_line(agent, enterprise, annual_rate=Decimal("0"), penalty_rate=Decimal("0"))
    tripartite_terms(line.program)
    return line


def _claim(line: Any) -> GuaranteeClaim:
    loan = tripartite_loan(line, order_value="10000.00", value_date=dt.date(2026, 8, 1))
    one_night_before_trigger(loan, night=NIGHT, trigger_dpd=60)
    cob_run(program_id=line.program.pk, business_date=NIGHT, today=FAR)
    return GuaranteeClaim.objects.get(loan=loan)


def test_batched_payments_lodge_margin_and_pay_a_claim_each_once(
    tripartite_line, agent, enterprise, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    claim = _claim(tripartite_line)
    account = margin_account_get_or_create(program=tripartite_line.program, agent=agent)
    elsewhere = CreditLineFactory(
        agent=agent, program=ProgramFactory(enterprise=enterprise, bank=BankFactory(code="B2"))
    )
    foreign = margin_account_get_or_create(program=elsewhere.program, agent=agent)
    free_before = account.free
    deposits = MarginMovement.objects.filter(account=account, kind="deposit")
    deposits_before = deposits.count()
    rail = Rail()
    rail.pay_in_batched(
        {"amount": "500.00", "remittance": f"margin {account.reference.lower()}"},
        {"amount": "3000.00", "remittance": claim.reference},
        {"amount": "70.00", "remittance": foreign.reference},  # money at BANK-1 only
    )
    rail.pay_in("25.00", remittance=account.reference)  # a single credit matches the same way
    import_files(capture)

    parts = list(StatementEntry.objects.filter(detail_index__gt=0).order_by("detail_index"))
    assert [(p.status, p.margin_account_id, p.claim_id) for p in parts] == [
        (EntryStatus.APPLIED, account.pk, None),
        (EntryStatus.APPLIED, None, claim.pk),
        (EntryStatus.UNAPPLIED, None, None),
    ]
    account.refresh_from_db()
    assert account.free == free_before + Decimal("525.00")
    assert deposits.count() == deposits_before + 2
    claim.refresh_from_db()
    assert (claim.status, claim.paid) == (ClaimStatus.PARTLY_PAID, Decimal("3000.00"))
    assert UnappliedCredit.objects.get().amount == Decimal("70.00")
    assert book_check() == []

    rail.end_of_day()  # the statement lists them again: nothing applied twice
    import_files(capture)
    account.refresh_from_db()
    claim.refresh_from_db()
    assert (account.free, claim.paid) == (free_before + Decimal("525.00"), Decimal("3000.00"))
    call_command("reconcile", "--date", str(rail.today))
    assert ReconciliationRun.objects.order_by("-id").first().breaks_count == 0
