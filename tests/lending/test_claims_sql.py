"""The night's claims on PostgreSQL (set-based statements) equal the loan-by-loan loop to the cent:
the same claims, caps, loan balances, ledger lines, margin and review cases, with security
deposits, released goods, an agent cap and the program cap running out, and an agent without an
agreement. The books balance afterwards, and the candidates are found through the index.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D
from typing import Any

import pytest
from django.db import connection, transaction

from lending.locks import tripartite_terms_lock
from lending.models import (
    AccountCode,
    Agreement,
    CreditLine,
    EntryKind,
    GoodsHold,
    GuaranteeClaim,
    JournalLine,
    Loan,
    MarginAccount,
    MarginMovement,
    MarginMovementKind,
    Program,
    Review,
    TripartiteTerms,
)
from lending.services.claims import claims_raise_loop, cob_claims_raise
from lending.services.cob import cob_run
from lending.services.ledger import Posting, ledger_post
from lending.services.releases import release_request
from tests.lending.active_loans import books_balance, money_line
from tests.lending.factories import CreditLineFactory
from tests.lending.tripartite_makers import (
    one_night_before_trigger,
    tripartite_loan,
    tripartite_terms,
)
from tests.orders.factories import AgentFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
NIGHT = dt.date(2026, 11, 20)
FAR = dt.date(2027, 12, 31)
RATES = {"annual_rate": D("0.1200"), "penalty_rate": D("0.3650"), "grace_days": 0}


def hold_security(loan: Loan, amount: str) -> None:
    """A security deposit held for ``loan`` as settlement leaves it: lodged, committed, held."""
    hold = GoodsHold.objects.get(loan=loan)
    value = D(amount)
    GoodsHold.objects.filter(pk=hold.pk).update(security=value)
    MarginAccount.objects.filter(pk=hold.margin_account_id).update(security=value + hold_sum(hold))
    for kind, dr, cr in (
        (MarginMovementKind.DEPOSIT, AccountCode.SETTLEMENT, AccountCode.MARGIN_FREE),
        (MarginMovementKind.COMMIT, AccountCode.MARGIN_FREE, AccountCode.MARGIN_COMMITTED),
        (
            MarginMovementKind.SECURITY_HOLD,
            AccountCode.MARGIN_COMMITTED,
            AccountCode.SECURITY_DEPOSITS,
        ),
    ):
        entry = ledger_post(
            kind=EntryKind.SECURITY_HOLD,
            idempotency_key=f"test-security-{kind}:{loan.pk}",
            business_date=loan.value_date,
            currency=loan.currency,
            postings=[Posting.dr(dr, value, loan=loan), Posting.cr(cr, value, loan=loan)],
            loan=loan,
            program=loan.program,
        )
        MarginMovement.objects.create(
            account_id=hold.margin_account_id,
            kind=kind,
            amount=value,
            loan=loan if kind == MarginMovementKind.SECURITY_HOLD else None,
            value_date=loan.value_date,
            journal_entry=entry,
            created_at=entry.posted_at,
        )


def hold_sum(hold: GoodsHold) -> D:
    return MarginAccount.objects.get(pk=hold.margin_account_id).security


def night_of_loans(enterprise: Any) -> Program:
    """Three agents (one without an agreement), twelve loans at the trigger on ``NIGHT``."""
    first = money_line(AgentFactory(enterprises=[enterprise]), enterprise, **RATES)
    program = first.program
    tripartite_terms(program, program_cap=D("30000.00"))
    lines = [first] + [
        CreditLineFactory(
            agent=AgentFactory(enterprises=[enterprise]), program=program, limit=D("1000000")
        )
        for _ in range(2)
    ]
    for n in range(12):
        line = lines[n % 3]
        loan = tripartite_loan(
            line, order_value=f"{10000 + 1000 * n}.00", value_date=dt.date(2026, 8, 1)
        )
        if n % 3 != 1:
            hold_security(loan, f"{300 + 111 * n}.00")
        if n % 4 == 0:
            GoodsHold.objects.filter(loan=loan).update(releasable_value=D("5000.00"))
            release_request(
                loan=loan, data={"value": "4000.00"}, requested_by_kind="enterprise", actor=None
            )
        one_night_before_trigger(loan, night=NIGHT, trigger_dpd=60)
    Agreement.objects.filter(program=program, agent=lines[1].agent).update(agent_cap=D("9000.00"))
    Agreement.objects.filter(program=program, agent=lines[2].agent).delete()
    return program


def state(program: Program) -> dict[str, Any]:
    loans = Loan.objects.filter(program=program)
    return {
        "claims": sorted(
            GuaranteeClaim.objects.filter(program=program).values_list(
                "loan_id",
                "agreement_id",
                "status",
                "owed",
                "security_applied",
                "unreleased_value",
                "amount",
                "reference",
                "window_ends_on",
            )
        ),
        "loans": sorted(
            loans.values_list(
                "pk", "outstanding_principal", "accrued_interest", "accrued_penalty", "status"
            )
        ),
        "lines": sorted(
            JournalLine.objects.filter(
                entry__kind__in=[EntryKind.SECURITY_APPLIED, EntryKind.GUARANTEE_CLAIM],
                entry__program=program,
            ).values_list("entry__idempotency_key", "account", "loan_id", "debit", "credit")
        ),
        "caps": (
            TripartiteTerms.objects.get(program=program).program_cap_used,
            sorted(Agreement.objects.filter(program=program).values_list("pk", "agent_cap_used")),
        ),
        "margin": sorted(
            MarginAccount.objects.filter(program=program).values_list("pk", "security")
        ),
        "applied": sorted(
            MarginMovement.objects.filter(kind=MarginMovementKind.SECURITY_APPLY).values_list(
                "account_id", "loan_id", "amount"
            )
        ),
        "reviews": sorted(Review.objects.filter(loan__in=loans).values_list("loan_id", "kind")),
        "outstanding": (
            Program.objects.get(pk=program.pk).outstanding_principal,
            sorted(
                CreditLine.objects.filter(program=program).values_list(
                    "pk", "outstanding_principal"
                )
            ),
        ),
    }


def test_the_statements_equal_the_loop_to_the_cent(enterprise: Any) -> None:
    program = night_of_loans(enterprise)
    TripartiteTerms.objects.filter(program=program).update(enabled=False)
    assert cob_run(program_id=program.pk, business_date=NIGHT, today=FAR).ran  # the accrual
    TripartiteTerms.objects.filter(program=program).update(enabled=True)
    with transaction.atomic():
        terms = tripartite_terms_lock(program.pk)
        assert terms is not None
        by_loop = claims_raise_loop(program=program, terms=terms, business_date=NIGHT)
        expected = state(program)
        transaction.set_rollback(True)
    by_sql = cob_claims_raise(program=program, business_date=NIGHT, today=NIGHT)
    assert by_sql == by_loop
    assert state(program) == expected
    claims = expected["claims"]
    assert len(claims) == 12
    statuses = {claim[2] for claim in claims}
    assert statuses == {"raised", "cap_exhausted"}
    assert by_sql.raised and by_sql.cap_exhausted and by_sql.amount == D("30000.00")
    # A cap_exhausted claim whose security deposit was applied moved the loan's balances too.
    assert any(c[2] == "cap_exhausted" and c[4] > 0 for c in claims)
    books_balance()
    # Once raised, never again.
    again = cob_claims_raise(program=program, business_date=NIGHT, today=NIGHT)
    assert (again.raised, again.cap_exhausted) == (0, 0)


def test_the_candidates_are_read_through_the_due_date_index(enterprise: Any) -> None:
    program = money_line(AgentFactory(enterprises=[enterprise]), enterprise).program
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table: ask what it could use
        cursor.execute(
            "EXPLAIN SELECT id FROM lending_loan WHERE program_id = %s "
            "AND status IN ('active', 'overdue') AND due_date <= %s AND days_past_due >= 60",
            [program.pk, NIGHT],
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "loan_program_due_open_idx" in plan, plan
