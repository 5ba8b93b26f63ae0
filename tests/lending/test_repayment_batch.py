"""The set-based repayment path (a bank file's matched credits) against the per-credit service.

Two twin worlds (each its own program and line, the same loans): one receives its credits through
``repayments_record_batch`` (the credits it declines then through ``repayment_record``, as the
file rail does), the other through ``repayment_record`` one by one. Loans, repayments, ledger
entries and lines, accrual rows, goods holds, line and program figures and audit rows must be the
same, up to ids, references and timestamps; and the book check must pass.

Terms: 100,000.00 at 5.4% ACT/360 (15.00 a night), penalty 8.1% (22.50 a night), grace 3 days.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction

from lending.models import (
    AuditLog,
    CreditLine,
    EntryKind,
    GoodsHold,
    JournalEntry,
    Loan,
    LoanStatus,
    Program,
    Repayment,
    RepaymentSource,
)
from lending.selectors.ledger import loan_ledger_balances
from lending.services.accrual_loan import loan_accrue_through, loan_catch_up
from lending.services.repayment_batch import Credit, repayments_record_batch
from lending.services.repayments import loan_lock, repayment_record, repayment_record_outcome
from scf.errors import ApplicationError
from scf.money import Money
from tests.lending.active_loans import active_loan, books_balance, money_line
from tests.lending.tripartite_makers import tripartite_loan

pytestmark = pytest.mark.django_db

D = Decimal
V = dt.date(2025, 1, 6)
TERMS = {"annual_rate": D("0.054"), "penalty_rate": D("0.081")}
ACTOR = "integration:bank-files"
# Credits the batch must leave to the single path.
# Entries of the fixtures' disbursements, keyed by loan id: compared through the balances.
FIXTURE_KINDS = {EntryKind.DISBURSEMENT, EntryKind.MARGIN_DEPOSIT, EntryKind.MARGIN_COMMIT}
DECLINED = {"dates-1", "dates-2", "backdated", "currency", "repaid"}


def day(n: int) -> dt.date:
    return V + dt.timedelta(days=n)


def owed_before(loan: Loan, value_date: dt.date) -> Decimal:
    """What the loan owes once accrued through the night before ``value_date``."""
    caught = loan_catch_up(loan=loan, through=value_date - dt.timedelta(days=1), key="probe")
    assert caught is not None
    return caught.state.owed


def world(agent: Any, enterprise: Any, prefix: str) -> tuple[CreditLine, list[tuple]]:
    """The loans of one world and their credits: (name, loan, amount, currency, value date)."""
    line = money_line(agent, enterprise, **TERMS)
    big = "100000.00"
    loans = {
        name: active_loan(line, principal=big, value_date=V)
        for name in ("partial", "exact", "over", "twice", "dates", "backdated", "currency")
    }
    loans["penalty"] = active_loan(line, principal=big, value_date=V, due_date=day(5))
    loans["repaid"] = active_loan(line, principal="1000.00", value_date=V)
    loans["tri-partial"] = tripartite_loan(line, order_value="10000.00", value_date=V)
    loans["tri-close"] = tripartite_loan(line, order_value="10000.00", value_date=V)
    with transaction.atomic():  # one loan already accrued past the credit's value date
        loan_accrue_through(
            loan=loan_lock(loans["backdated"].pk), through=day(20), key=f"{prefix}:cob"
        )
    repayment_record(  # and one repaid in full before the file
        loan=loans["repaid"],
        amount=owed_before(loans["repaid"], day(3)),
        value_date=day(3),
        reference=f"{prefix}:PAID",
        source=RepaymentSource.API,
        actor=ACTOR,
    )
    d10 = day(10)
    credits = [
        ("partial", loans["partial"], D("1200.00"), "CNY", d10),
        ("exact", loans["exact"], owed_before(loans["exact"], d10), "CNY", d10),
        ("over", loans["over"], owed_before(loans["over"], d10) + D("250.00"), "CNY", d10),
        ("penalty", loans["penalty"], D("800.00"), "CNY", day(30)),
        ("twice-1", loans["twice"], D("500.00"), "CNY", d10),
        ("twice-2", loans["twice"], D("99700.00"), "CNY", d10),
        ("dates-1", loans["dates"], D("300.00"), "CNY", d10),
        ("dates-2", loans["dates"], D("400.00"), "CNY", day(12)),
        ("backdated", loans["backdated"], D("2000.00"), "CNY", day(15)),
        ("currency", loans["currency"], D("100.00"), "USD", d10),
        ("repaid", loans["repaid"], D("50.00"), "CNY", d10),
        ("tri-partial", loans["tri-partial"], D("3000.00"), "CNY", d10),
        ("tri-close", loans["tri-close"], owed_before(loans["tri-close"], d10), "CNY", d10),
    ]
    return line, credits


def _one_by_one(credits: list[tuple], prefix: str) -> None:
    for name, loan, amount, currency, value_date in credits:
        with contextlib.suppress(ApplicationError):  # the file rail queues it as unapplied
            repayment_record_outcome(
                loan=Loan.objects.get(pk=loan.pk),
                amount=Money(amount, currency),
                value_date=value_date,
                reference=f"{prefix}:{name}",
                source=RepaymentSource.BANK_STATEMENT,
                actor=ACTOR,
            )


def _batched(credits: list[tuple], prefix: str) -> list[str]:
    batch = [
        Credit(n, loan.pk, amount, currency, value_date, f"{prefix}:{name}")
        for n, (name, loan, amount, currency, value_date) in enumerate(credits)
    ]
    with transaction.atomic():
        result = repayments_record_batch(batch, source=RepaymentSource.BANK_STATEMENT, actor=ACTOR)
    assert len(result.recorded) + len(result.declined) == len(credits)
    _one_by_one([credits[key] for key in result.declined], prefix)
    return [credits[key][0] for key in result.declined]


def _snapshot(line: CreditLine, credits: list[tuple], prefix: str) -> dict[str, Any]:
    """Everything a repayment writes, per loan, with this world's names taken out."""
    loans: dict[int, tuple[str, Loan]] = {}
    for name, loan, *_ in credits:
        loans.setdefault(loan.pk, (name, loan))  # a loan with two credits: the first's name
    names = {loan.reference: f"<{name}>" for name, loan in loans.values()}

    def norm(text: str) -> str:
        for reference, name in names.items():
            text = text.replace(reference, name)
        return text.replace(f"{prefix}:", "")

    snapshot: dict[str, Any] = {}
    balances = loan_ledger_balances(list(loans))
    for loan_id, (name, _) in sorted(loans.items()):
        loan = Loan.objects.get(pk=loan_id)
        repayments = list(Repayment.objects.filter(loan=loan).order_by("reference"))
        entries = JournalEntry.objects.filter(loan=loan).prefetch_related("lines")
        snapshot[name] = {
            "loan": [
                loan.status,
                loan.outstanding_principal,
                loan.accrued_interest,
                loan.accrued_penalty,
                loan.interest_numerator,
                loan.interest_posted_cumulative,
                loan.penalty_numerator,
                loan.penalty_posted_cumulative,
                loan.days_past_due,
                loan.accrued_through,
                loan.closed_at is None,
            ],
            "ledger": balances[loan_id],
            "repayments": [
                (
                    norm(r.reference),
                    r.amount,
                    r.currency,
                    r.value_date,
                    r.source,
                    r.backdated,
                    r.to_penalty,
                    r.to_interest,
                    r.to_principal,
                    r.to_overpayment,
                    r.recorded_by,
                    norm(r.journal_entry.idempotency_key),
                )
                for r in repayments
            ],
            "entries": sorted(
                (
                    e.kind,
                    norm(e.idempotency_key),
                    e.business_date,
                    e.currency,
                    norm(e.description),
                    e.program_id == line.program_id,
                    sorted(
                        (li.account, li.debit, li.credit, li.loan_id == loan_id)
                        for li in e.lines.all()
                    ),
                )
                for e in entries
                if e.kind not in FIXTURE_KINDS
            ),
            "accruals": sorted(
                (
                    a.business_date,
                    a.kind,
                    a.base,
                    a.annual_rate,
                    a.numerator,
                    a.amount,
                    a.reversed_at is None,
                    norm(a.journal_entry.idempotency_key) if a.journal_entry else "",
                )
                for a in loan.accruals.select_related("journal_entry")
            ),
            "holds": list(
                GoodsHold.objects.filter(loan=loan).values_list(
                    "releasable_value", "released_value", "status"
                )
            ),
            "audit": sorted(
                (a.action, a.actor_label, norm(str(a.after)))
                for a in AuditLog.objects.filter(
                    object_type="lending.repayment", object_id__in=[str(r.pk) for r in repayments]
                )
            ),
        }
    line.refresh_from_db()
    program = Program.objects.get(pk=line.program_id)
    snapshot["credit"] = [
        line.outstanding_principal,
        line.reserved,
        program.outstanding_principal,
        program.reserved,
    ]
    return snapshot


def test_the_batch_path_leaves_the_book_as_the_per_credit_path(agent: Any, enterprise: Any) -> None:
    line_a, credits_a = world(agent, enterprise, "A")
    line_b, credits_b = world(agent, enterprise, "B")
    before = _snapshot(line_a, credits_a, "A")
    assert before == _snapshot(line_b, credits_b, "B")  # twins to start with

    declined = _batched(credits_a, "A")
    _one_by_one(credits_b, "B")

    assert set(declined) == DECLINED
    after_a, after_b = _snapshot(line_a, credits_a, "A"), _snapshot(line_b, credits_b, "B")
    assert after_a == after_b
    assert after_a != before
    # What the credits were meant to exercise did happen.
    assert after_a["exact"]["loan"][0] == LoanStatus.REPAID
    assert after_a["over"]["repayments"][0][9] == D("250.00")  # to_overpayment
    assert after_a["penalty"]["repayments"][0][6] > 0  # to_penalty
    assert after_a["twice-1"]["loan"][0] == LoanStatus.REPAID
    assert after_a["tri-close"]["loan"][0] == LoanStatus.REPAID
    assert after_a["tri-partial"]["holds"] != before["tri-partial"]["holds"]  # goods releasable
    assert after_a["currency"]["repayments"] == []  # refused by both: the unapplied queue
    assert len(after_a["backdated"]["repayments"]) == 1 and after_a["backdated"]["repayments"][0][5]
    books_balance()


def test_a_batch_declines_a_reference_already_used_and_writes_nothing_for_it(
    agent: Any, enterprise: Any
) -> None:
    line, credits = world(agent, enterprise, "A")
    _, loan, amount, currency, value_date = credits[0]
    repayment_record(
        loan=loan,
        amount=D("10.00"),
        value_date=value_date,
        reference="A:taken",
        source=RepaymentSource.API,
        actor=ACTOR,
    )
    before = _snapshot(line, credits, "A")
    with transaction.atomic():
        result = repayments_record_batch(
            [Credit(7, loan.pk, amount, currency, value_date, "A:taken")],
            source=RepaymentSource.BANK_STATEMENT,
            actor=ACTOR,
        )
    assert result.recorded == {} and result.declined == [7]
    assert _snapshot(line, credits, "A") == before
    books_balance()
