"""Loans accrued before exact interest: found, corrected by a replay or left, audited, once.

Such loans are made here the way the old code made them: accrued night by night through the
real per-loan accrual (``loan_accrue_through``) with the old rounding put back, each night
rounded half-even to 12 places and the rounded nights summed (``legacy_rounding``), then
repaid or left open. Their numerators are exact, as migration 0008 recomputes them.

Terms: 4.35 % ACT/360. 50,000.00 is 2,175 a night (6.0416... of interest): after 3 nights the
exact total is 18.125 (a tie: 18.12), the old rule gave 18.13; after 15 nights 90.625 (90.62)
against 90.63. 10,000.00 is 435 a night: after 9 nights 10.875 (10.88) against 10.87; after 93
nights 112.375 (112.38) against 112.37.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.db import transaction

from lending.models import (
    AccountCode,
    Accrual,
    AccrualKind,
    AuditLog,
    CreditLine,
    JournalEntry,
    Loan,
    LoanStatus,
    Repayment,
)
from lending.services import accrual
from lending.services.accrual_correct import (
    Discrepancy,
    Outcome,
    accrual_discrepancies,
    loan_accrual_correct,
)
from lending.services.accrual_loan import loan_accrue_through
from lending.services.cob import cob_run
from lending.services.interest import EXACT
from lending.services.repayments import repayment_record
from tests.lending.active_loans import active_loan, books_balance, money_line
from tests.lending.ledger_reads import account_balance

pytestmark = pytest.mark.django_db

D = Decimal
V = dt.date(2025, 1, 6)
RATE = D("0.043500")
TODAY = dt.date(2025, 6, 30)


def day(n: int) -> dt.date:
    return V + dt.timedelta(days=n)


def legacy_rounding(night: Decimal) -> Callable[[Decimal, int], Decimal]:
    """The rounding before exact interest, for a loan whose base never changed: each night
    ``night / basis`` rounded half-even to 12 places, the nights summed, the sum to the cent."""
    per_night_cache: dict[int, Decimal] = {}

    def rounded(numerator: Decimal, basis: int) -> Decimal:
        nights = EXACT.divide(numerator, night)
        per_night = per_night_cache.setdefault(
            basis, (night / basis).quantize(D("1E-12"), rounding=ROUND_HALF_EVEN)
        )
        return (per_night * nights).quantize(D("0.01"), rounding=ROUND_HALF_EVEN)

    return rounded


def legacy_loan(
    line: CreditLine, monkeypatch: pytest.MonkeyPatch, *, principal: str, nights: int
) -> Loan:
    """A loan accrued ``nights`` nights (V .. V+nights-1) by the old rule, due V+nights."""
    loan = active_loan(line, principal=principal, value_date=V, due_date=day(nights))
    with monkeypatch.context() as patch, transaction.atomic():
        patch.setattr(accrual, "interest_rounded", legacy_rounding(D(principal) * RATE))
        locked = Loan.objects.select_for_update().select_related("program").get(pk=loan.pk)
        loan_accrue_through(loan=locked, through=day(nights - 1), key=f"legacy:{loan.pk}")
    loan.refresh_from_db()
    return loan


def pay(loan: Loan, amount: str, on: int, reference: str) -> Repayment:
    return repayment_record(
        loan=loan,
        amount=D(amount),
        value_date=day(on),
        reference=reference,
        source="api",
        actor=None,
        today=day(on),
    )


def correct(loan: Loan) -> Outcome:
    return loan_accrual_correct(loan_id=loan.pk, actor="test", today=TODAY)


def audits(loan: Loan) -> list[str]:
    rows = AuditLog.objects.filter(object_type="lending.loan", object_id=str(loan.pk))
    return list(rows.filter(action__startswith="accrual_correct").values_list("action", flat=True))


@pytest.fixture
def line(agent: Any, enterprise: Any) -> CreditLine:
    return money_line(agent, enterprise, annual_rate=RATE, day_count="ACT/360")


def test_legacy_loans_are_found_with_their_first_night_off_the_exact_rounding(
    line: CreditLine, monkeypatch: pytest.MonkeyPatch
) -> None:
    over = legacy_loan(line, monkeypatch, principal="50000.00", nights=15)
    under = legacy_loan(line, monkeypatch, principal="10000.00", nights=9)
    exact = active_loan(line, principal="10000.00", value_date=V, due_date=day(9))
    for n in range(9):
        cob_run(program_id=line.program_id, business_date=day(n), today=day(20))
    assert (over.accrued_interest, under.accrued_interest) == (D("90.63"), D("10.87"))
    assert list(accrual_discrepancies()) == [
        Discrepancy(over.pk, day(2)),  # night 3: 18.13 posted, 18.12 exact
        Discrepancy(under.pk, day(8)),  # night 9: 10.87 posted, 10.88 exact
    ]
    assert list(accrual_discrepancies(loan_ids=[exact.pk])) == []
    books_balance()


def test_an_over_charged_cent_already_paid_goes_to_principal_on_an_open_loan(
    line: CreditLine, monkeypatch: pytest.MonkeyPatch
) -> None:
    loan = legacy_loan(line, monkeypatch, principal="50000.00", nights=15)
    interest_paid = pay(loan, "90.63", 15, "INT-1")  # all the interest asked for
    assert (interest_paid.to_interest, interest_paid.to_principal) == (D("90.63"), D("0.00"))
    for n in range(15, 20):
        cob_run(program_id=line.program_id, business_date=day(n), today=TODAY)

    assert correct(loan) == Outcome.CORRECTED

    loan.refresh_from_db()
    interest_paid.refresh_from_db()
    # The exact interest to the payment was 90.62: the payment's last cent is principal.
    assert (interest_paid.to_interest, interest_paid.to_principal) == (D("90.62"), D("0.01"))
    assert loan.outstanding_principal == D("49999.99")
    assert CreditLine.objects.get(pk=line.pk).outstanding_principal == D("49999.99")
    # Nights 16-20 (day 15 .. day 19) on 49,999.99: the numerator is 15 x 2,175 + 5 x
    # 2,174.999565 = 43,499.997825, / 360 = 120.8333...: 120.83 in all, 90.62 of it paid.
    assert loan.accrued_interest == D("30.21")
    rows = Accrual.objects.filter(loan=loan, kind=AccrualKind.INTEREST, reversed_at__isnull=True)
    assert (
        sum(rows.values_list("amount", flat=True)) == D("120.83") == loan.interest_posted_cumulative
    )
    assert list(accrual_discrepancies(loan_ids=[loan.pk])) == []
    assert audits(loan) == ["accrual_corrected"]
    books_balance()


def test_an_over_charged_cent_on_a_repaid_loan_is_owed_back_to_the_agent(
    line: CreditLine, monkeypatch: pytest.MonkeyPatch
) -> None:
    loan = legacy_loan(line, monkeypatch, principal="50000.00", nights=15)
    final = pay(loan, "50090.63", 15, "FINAL-1")  # the total the old accruals asked for
    loan.refresh_from_db()
    assert (loan.status, final.to_overpayment) == (LoanStatus.REPAID, D("0.00"))

    assert correct(loan) == Outcome.CORRECTED

    loan.refresh_from_db()
    final.refresh_from_db()
    assert loan.status == LoanStatus.REPAID and loan.closed_at is not None
    assert (final.to_interest, final.to_principal, final.to_overpayment) == (
        D("90.62"),
        D("50000.00"),
        D("0.01"),
    )
    assert account_balance(AccountCode.AGENT_OVERPAYMENTS, loan=loan) == D("0.01")
    assert JournalEntry.objects.filter(
        idempotency_key__startswith="realloc:exact-interest:"
    ).exists()
    books_balance()


def test_a_cent_the_old_rounding_did_not_charge_on_a_repaid_loan_is_left_once(
    line: CreditLine, monkeypatch: pytest.MonkeyPatch
) -> None:
    loan = legacy_loan(line, monkeypatch, principal="10000.00", nights=93)
    pay(loan, "10112.37", 93, "FINAL-2")  # the quote would now say 10,112.38
    loan.refresh_from_db()
    before = (loan.status, loan.accrued_interest, loan.interest_posted_cumulative)
    entries = JournalEntry.objects.count()

    assert correct(loan) == Outcome.LEFT
    assert correct(loan) == Outcome.LEFT
    call_command("accrual_correct", stdout=_Sink())

    loan.refresh_from_db()
    assert (loan.status, loan.accrued_interest, loan.interest_posted_cumulative) == before
    assert before == (LoanStatus.REPAID, D("0.00"), D("112.37"))
    assert JournalEntry.objects.count() == entries
    assert audits(loan) == ["accrual_correction_left"]
    books_balance()


def test_an_open_loan_short_of_the_exact_total_is_replayed_up_to_it(
    line: CreditLine, monkeypatch: pytest.MonkeyPatch
) -> None:
    loan = legacy_loan(line, monkeypatch, principal="10000.00", nights=9)
    assert correct(loan) == Outcome.CORRECTED
    loan.refresh_from_db()
    assert (loan.accrued_interest, loan.outstanding_principal) == (D("10.88"), D("10000.00"))
    # Night 9 was reversed (10.87 - 9.67 = 1.20) and posted again (10.88 - 9.67 = 1.21).
    night = Accrual.objects.filter(loan=loan, business_date=day(8)).order_by("pk")
    assert [(row.amount, row.reversed_at is not None) for row in night] == [
        (D("1.20"), True),
        (D("1.21"), False),
    ]
    assert correct(loan) == Outcome.EXACT
    books_balance()


def test_the_command_corrects_every_loan_and_a_second_run_changes_nothing(
    line: CreditLine, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_loan = legacy_loan(line, monkeypatch, principal="50000.00", nights=15)
    repaid = legacy_loan(line, monkeypatch, principal="10000.00", nights=93)
    pay(repaid, "10112.37", 93, "FINAL-3")
    out = _Sink()
    call_command("accrual_correct", "--dry-run", stdout=out)
    assert f"loan {open_loan.pk}: off from {day(2)}" in out.text
    assert not AuditLog.objects.filter(action__startswith="accrual_correct").exists()

    out = _Sink()
    call_command("accrual_correct", stdout=out)
    assert f"loan {open_loan.pk}: off from {day(2)}  corrected" in out.text
    assert f"loan {repaid.pk}: off from {day(8)}  left" in out.text  # night 9
    open_loan.refresh_from_db()
    assert open_loan.accrued_interest == D("90.62")
    entries, audit_rows = JournalEntry.objects.count(), AuditLog.objects.count()

    out = _Sink()
    call_command("accrual_correct", stdout=out)
    assert "1 loan(s) off the exact rounding. 1 left" in out.text
    assert (JournalEntry.objects.count(), AuditLog.objects.count()) == (entries, audit_rows)
    books_balance()


def test_a_backdated_repayment_into_nights_posted_by_the_old_rounding_is_replayed(
    line: CreditLine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not corrected yet: night 9 posted 10.87 where the exact total is 10.88. A payment value-
    # dated day 9 (before night 10) rewinds to the end of night 9 and replays from there; it
    # meets the 10.87 that was asked, and the first replayed night posts the missing cent.
    loan = legacy_loan(line, monkeypatch, principal="10000.00", nights=12)
    assert loan.accrued_interest == D("14.50")  # 12 x 1.208333333333 = 14.499999999996
    pay(loan, "5000.00", 9, "BACK-1")
    loan.refresh_from_db()
    # 5,000.00 - 10.87 of interest leaves 5,010.87. Nights 1-9 on 10,000 (3,915), nights 10-12
    # on 5,010.87 (3 x 217.972845): 4,568.918535 / 360 = 12.6914...: 12.69, 10.87 of it paid.
    assert (loan.outstanding_principal, loan.accrued_interest) == (D("5010.87"), D("1.82"))
    books_balance()


class _Sink:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        return None
