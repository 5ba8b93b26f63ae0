"""Guarantee claims: raised at close of business up to the caps, accepted, disputed, escalated,
paid in parts by bank credits quoting the claim's reference; the ledger balanced and
``ledger_check`` green after each step.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D
from typing import Any

import pytest

from integrations.bank import bank_adapter
from integrations.bank.statements import statement_import
from integrations.models import OutboundEvent, WebhookEndpoint
from integrations.tripartite.events import tripartite_events_sweep
from lending.models import (
    Agreement,
    AuditLog,
    ClaimStatus,
    GoodsHold,
    GuaranteeClaim,
    HoldStatus,
    Loan,
    LoanStatus,
    Review,
    ReviewKind,
    TripartiteTerms,
)
from lending.services.book_check import book_check
from lending.services.cob import cob_run
from lending.services.releases import release_request
from scf import crypto
from tests.conftest import client_for
from tests.lending.active_loans import books_balance, money_line
from tests.lending.factories import CreditLineFactory
from tests.lending.tripartite_makers import (
    one_night_before_trigger,
    tripartite_loan,
    tripartite_terms,
)
from tests.orders.factories import AgentFactory, UserFactory

pytestmark = pytest.mark.django_db
NIGHT = dt.date(2026, 11, 20)
FAR = dt.date(2027, 12, 31)
NO_INTEREST = {"annual_rate": D("0"), "penalty_rate": D("0")}


def cob(program: Any, day: dt.date = NIGHT) -> Any:
    return cob_run(program_id=program.pk, business_date=day, today=FAR)


def financed(line: Any, *, value: str = "10000.00", released: str = "0") -> Loan:
    loan = tripartite_loan(line, order_value=value, value_date=dt.date(2026, 8, 1))
    if D(released):
        # Paid for outside the fixture's ledger: only the hold's figure matters to the claim.
        GoodsHold.objects.filter(loan=loan).update(releasable_value=D(released))
        release_request(
            loan=loan, data={"value": released}, requested_by_kind="enterprise", actor=None
        )
    return one_night_before_trigger(loan, night=NIGHT, trigger_dpd=60)


@pytest.fixture
def line(agent: Any, enterprise: Any) -> Any:
    line = money_line(agent, enterprise, **NO_INTEREST)
    tripartite_terms(line.program)
    return line


def test_a_loan_at_the_trigger_raises_one_claim_limited_to_the_unreleased_goods(
    line: Any, enterprise: Any
) -> None:
    # 10,000 order, 7,000 lent; 4,000 of goods released: the buyback is of the 6,000 left.
    loan = financed(line, released="4000.00")
    WebhookEndpoint.objects.create(
        enterprise=enterprise, url="http://127.0.0.1:9/x", secret_encrypted=crypto.encrypt("s")
    )
    result = cob(line.program)
    assert result.ran
    claim = GuaranteeClaim.objects.get(loan=loan)
    assert (claim.status, claim.owed, claim.unreleased_value, claim.amount) == (
        ClaimStatus.RAISED,
        D("7000.00"),
        D("6000.00"),
        D("6000.00"),
    )
    assert claim.window_ends_on == NIGHT + dt.timedelta(days=30)
    loan.refresh_from_db()
    assert loan.outstanding_principal == D("1000.00")  # what the claim left with the agent
    assert TripartiteTerms.objects.get(program=line.program).program_cap_used == D("6000.00")
    assert Agreement.objects.get(agent=loan.agent).agent_cap_used == D("6000.00")
    books_balance()
    assert tripartite_events_sweep() >= 1
    raised = OutboundEvent.objects.get(type="claim.raised")
    assert (raised.payload["claim_reference"], raised.payload["amount"]) == (
        claim.reference,
        "6000.00",
    )
    # The next night raises nothing more for it.
    assert cob(line.program, NIGHT + dt.timedelta(days=1)).ran
    assert GuaranteeClaim.objects.count() == 1
    books_balance()


def test_joint_guarantee_claims_the_whole_shortfall_up_to_the_agent_cap(line: Any) -> None:
    tripartite_terms(line.program, guarantee_type="joint")
    first, second = financed(line, released="9000.00"), financed(line)
    Agreement.objects.filter(agent=line.agent).update(agent_cap=D("10000.00"))
    cob(line.program)
    claims = {c.loan_id: c for c in GuaranteeClaim.objects.all()}
    assert claims[first.pk].amount == D("7000.00")  # not limited by the goods
    assert claims[second.pk].amount == D("3000.00")  # what the agent's cap had left
    assert claims[second.pk].status == ClaimStatus.RAISED
    assert Review.objects.filter(loan=second, kind=ReviewKind.CAP_EXHAUSTED).exists()
    assert not Review.objects.filter(loan=first).exists()
    books_balance()


@pytest.mark.postgres
def test_hundred_loans_of_twenty_agents_claim_exactly_up_to_the_program_cap(
    enterprise: Any,
) -> None:
    line = money_line(AgentFactory(enterprises=[enterprise]), enterprise, **NO_INTEREST)
    program = line.program
    tripartite_terms(program, program_cap=D("7000.00") * 37)  # 37 claims' worth
    lines = [line] + [
        CreditLineFactory(
            agent=AgentFactory(enterprises=[enterprise]), program=program, limit=D("1000000")
        )
        for _ in range(19)
    ]
    loans = [financed(lines[i % 20]) for i in range(100)]
    result = cob(program)
    assert result.ran
    claims = GuaranteeClaim.objects.filter(program=program)
    assert claims.count() == 100
    raised = claims.filter(status=ClaimStatus.RAISED)
    assert raised.count() == 37
    assert sum(c.amount for c in raised) == D("259000.00")
    assert claims.filter(status=ClaimStatus.CAP_EXHAUSTED, amount=0).count() == 63
    terms = TripartiteTerms.objects.get(program=program)
    assert terms.program_cap_used == terms.program_cap
    flagged = Review.objects.filter(kind=ReviewKind.CAP_EXHAUSTED, loan__in=loans)
    assert flagged.count() == 63
    assert set(raised.values_list("loan_id", flat=True)) == {loan.pk for loan in loans[:37]}
    books_balance()
    # A second COB of the same night posts nothing; the next night raises nothing more.
    assert not cob(program).ran
    assert cob(program, NIGHT + dt.timedelta(days=1)).ran
    assert GuaranteeClaim.objects.count() == 100
    assert Review.objects.filter(kind=ReviewKind.CAP_EXHAUSTED).count() == 63
    books_balance()


def pay_in(reference: str, amount: str, bank_reference: str) -> None:
    bank_adapter().credit_incoming(
        amount=D(amount),
        currency="CNY",
        debtor_name="Core enterprise",
        remittance_info=reference,
        bank_reference=bank_reference,
        value_date=NIGHT + dt.timedelta(days=2),
    )


def test_accepted_claim_paid_in_two_parts_buys_the_loan_back(line: Any, enterprise: Any) -> None:
    loan = financed(line)
    cob(line.program)
    claim = GuaranteeClaim.objects.get(loan=loan)
    assert claim.amount == D("7000.00")
    admin = client_for(UserFactory(role="enterprise_admin", enterprise=enterprise))
    agent = client_for(UserFactory(role="agent", agent=loan.agent))
    assert agent.post(f"/api/v1/claims/{claim.pk}/accept/").status_code == 403
    assert [c["id"] for c in agent.get("/api/v1/claims/").json()["results"]] == [claim.pk]
    reply = admin.post(f"/api/v1/claims/{claim.pk}/accept/")
    assert reply.status_code == 200, reply.content
    assert reply.json()["status"] == "accepted"
    assert admin.post(f"/api/v1/claims/{claim.pk}/accept/").status_code == 409
    books_balance()

    pay_in(claim.reference, "3000.00", "ENT-PAY-1")
    assert statement_import().applied == 1
    claim.refresh_from_db()
    assert (claim.status, claim.paid) == (ClaimStatus.PARTLY_PAID, D("3000.00"))
    assert TripartiteTerms.objects.get(program=line.program).program_cap_used == D("4000.00")
    assert Agreement.objects.get(agent=loan.agent).agent_cap_used == D("4000.00")
    books_balance()

    pay_in(claim.reference, "4000.01", "ENT-PAY-TOO-MUCH")
    pay_in(claim.reference, "4000.00", "ENT-PAY-2")
    result = statement_import()
    assert (result.applied, result.refused) == (1, 1)
    claim.refresh_from_db()
    assert (claim.status, claim.paid) == (ClaimStatus.PAID, D("7000.00"))
    loan.refresh_from_db()
    assert loan.status == LoanStatus.BOUGHT_BACK
    assert GoodsHold.objects.get(loan=loan).status == HoldStatus.TRANSFERRED
    assert TripartiteTerms.objects.get(program=line.program).program_cap_used == 0
    assert AuditLog.objects.filter(action="claim_payment_recorded").count() == 2
    books_balance()


def test_disputed_claim_goes_to_the_review_queue(line: Any, enterprise: Any) -> None:
    loan = financed(line)
    cob(line.program)
    claim = GuaranteeClaim.objects.get(loan=loan)
    admin = client_for(UserFactory(role="enterprise_admin", enterprise=enterprise))
    url = f"/api/v1/claims/{claim.pk}/dispute/"
    assert admin.post(url, {"reason": ""}, format="json").status_code == 422
    assert GuaranteeClaim.objects.get(pk=claim.pk).status == ClaimStatus.RAISED
    reply = admin.post(url, {"reason": "Goods were never delivered to us."}, format="json")
    assert reply.status_code == 200, reply.content
    assert reply.json()["dispute_reason"] == "Goods were never delivered to us."
    risk = client_for(UserFactory(role="risk_reviewer"))
    queue = risk.get("/api/v1/reviews/?kind=claim_dispute").json()["results"]
    assert [r["loan"]["id"] for r in queue] == [loan.pk]
    assert risk.get(f"/api/v1/claims/{claim.pk}/").json()["status"] == "disputed"
    books_balance()


def test_claim_unpaid_past_its_window_is_escalated_once(line: Any) -> None:
    loan = financed(line)
    tripartite_terms(line.program, claim_window_days=2)
    cob(line.program)
    for day in (1, 2):
        cob(line.program, NIGHT + dt.timedelta(days=day))
    assert GuaranteeClaim.objects.get(loan=loan).status == ClaimStatus.RAISED
    cob(line.program, NIGHT + dt.timedelta(days=3))
    claim = GuaranteeClaim.objects.get(loan=loan)
    assert claim.status == ClaimStatus.ESCALATED and claim.escalated_at is not None
    cob(line.program, NIGHT + dt.timedelta(days=4))
    assert Review.objects.filter(loan=loan, kind=ReviewKind.CLAIM_ESCALATED).count() == 1
    books_balance()


def test_ledger_check_reconciles_holds_claims_and_caps(line: Any) -> None:
    loan = financed(line)
    cob(line.program)
    assert book_check() == []
    claim = GuaranteeClaim.objects.get(loan=loan)
    GuaranteeClaim.objects.filter(pk=claim.pk).update(paid=D("1.00"))
    TripartiteTerms.objects.filter(program=line.program).update(program_cap_used=D("5.00"))
    GoodsHold.objects.filter(loan=loan).update(released_value=D("2.00"))
    found = {(d.check, str(d.expected), str(d.actual)) for d in book_check()}
    assert ("claim_receivable", "6999.00", "7000.00") in found
    assert ("program_cap_used", "6999.00", "5.00") in found
    assert ("hold_released", "0.00", "2.00") in found
    assert ("agent_cap_used", "6999.00", "7000.00") in found
