"""The tripartite tables refuse what must never be stored, whatever the application does.

Balances below zero, caps overrun, goods released beyond what was paid, a second active agreement
or claim, a checker approving their own change, an edited margin movement: each is refused by the
database (CHECK, unique index or trigger), not only by the services.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D
from typing import Any

import pytest
from django.db import IntegrityError, InternalError, transaction
from django.utils import timezone

from lending.models import (
    Agreement,
    AgreementStatus,
    GoodsHold,
    GuaranteeClaim,
    GuaranteeType,
    Loan,
    LoanStatus,
    MarginAccount,
    MarginMovement,
    MarginMovementKind,
    TermsChange,
    TripartiteTerms,
)
from orders.models import Role
from tests.lending.active_loans import active_loan, money_line
from tests.orders.factories import UserFactory

TODAY = dt.date(2026, 11, 2)


@pytest.fixture
def line(agent: Any, enterprise: Any) -> Any:
    return money_line(agent, enterprise)


@pytest.fixture
def account(line: Any) -> MarginAccount:
    return MarginAccount.objects.create(
        program=line.program,
        agent=line.agent,
        currency="CNY",
        reference=f"MG-{line.program_id}-{line.agent_id}",
        free=D("100.00"),
    )


def refused(exc: type[Exception] = IntegrityError) -> Any:
    return pytest.raises(exc)


@pytest.mark.django_db
def test_margin_balances_never_go_below_zero(account: MarginAccount) -> None:
    rows = MarginAccount.objects.filter(pk=account.pk)
    with refused(), transaction.atomic():
        rows.update(free=D("-0.01"))
    for column in ("committed", "security"):
        with refused(), transaction.atomic():
            rows.update(**{column: D("-0.01")})
    assert rows.get().free == D("100.00")


@pytest.mark.django_db
def test_one_margin_account_per_agent_and_program_and_unique_reference(
    account: MarginAccount,
) -> None:
    with refused(), transaction.atomic():
        MarginAccount.objects.create(
            program=account.program, agent=account.agent, currency="CNY", reference="MG-other"
        )


@pytest.mark.django_db
def test_margin_movements_are_append_only_and_positive(account: MarginAccount) -> None:
    movement = MarginMovement.objects.create(
        account=account,
        kind=MarginMovementKind.DEPOSIT,
        amount=D("100.00"),
        value_date=TODAY,
        reference="BANK-1",
        created_at=timezone.now(),
    )
    with refused(InternalError), transaction.atomic():
        MarginMovement.objects.filter(pk=movement.pk).update(amount=D("1.00"))
    with refused(InternalError), transaction.atomic():
        MarginMovement.objects.filter(pk=movement.pk).delete()
    with refused(), transaction.atomic():  # the same bank credit twice
        MarginMovement.objects.create(
            account=account,
            kind=MarginMovementKind.DEPOSIT,
            amount=D("100.00"),
            value_date=TODAY,
            reference="BANK-1",
            created_at=timezone.now(),
        )
    with refused(), transaction.atomic():
        MarginMovement.objects.create(
            account=account,
            kind=MarginMovementKind.DEPOSIT,
            amount=D("0.00"),
            value_date=TODAY,
            created_at=timezone.now(),
        )


@pytest.mark.django_db
def test_program_cap_usage_stays_within_the_cap_to_the_cent(line: Any) -> None:
    terms = TripartiteTerms.objects.create(
        program=line.program, enabled=True, margin_ratio=D("0.3"), program_cap=D("1000.00")
    )
    rows = TripartiteTerms.objects.filter(pk=terms.pk)
    rows.update(program_cap_used=D("1000.00"))
    with refused(), transaction.atomic():
        rows.update(program_cap_used=D("1000.01"))
    with refused(), transaction.atomic():
        rows.update(margin_ratio=D("1.0000"))


@pytest.mark.django_db
def test_one_active_agreement_per_agent_and_its_cap_holds(line: Any) -> None:
    first = Agreement.objects.create(
        program=line.program, agent=line.agent, signed_on=TODAY, agent_cap=D("500.00")
    )
    with refused(), transaction.atomic():
        Agreement.objects.create(program=line.program, agent=line.agent, version=2, signed_on=TODAY)
    with refused(), transaction.atomic():
        Agreement.objects.filter(pk=first.pk).update(agent_cap_used=D("500.01"))
    Agreement.objects.filter(pk=first.pk).update(status=AgreementStatus.SUPERSEDED)
    Agreement.objects.create(program=line.program, agent=line.agent, version=2, signed_on=TODAY)


@pytest.mark.django_db
def test_a_terms_change_is_not_approved_by_its_proposer(line: Any) -> None:
    ops = UserFactory(role=Role.OPS_ADMIN)
    change = TermsChange.objects.create(
        program=line.program,
        changes={"margin_ratio": "0.2500"},
        proposed_by=ops,
        proposed_at=timezone.now(),
    )
    with refused(), transaction.atomic():
        TermsChange.objects.filter(pk=change.pk).update(decided_by=ops)
    with refused(), transaction.atomic():  # one waiting change per program's terms
        TermsChange.objects.create(
            program=line.program, proposed_by=ops, proposed_at=timezone.now()
        )


def _hold(loan: Loan, account: MarginAccount) -> GoodsHold:
    now = timezone.now()
    return GoodsHold.objects.create(
        loan=loan,
        program=loan.program,
        agent=loan.agent,
        margin_account=account,
        currency="CNY",
        order_value=D("100000.00"),
        margin=D("30000.00"),
        releasable_value=D("30000.00"),
        created_at=now,
        updated_at=now,
    )


@pytest.mark.django_db
def test_goods_are_never_released_beyond_what_was_paid(line: Any, account: MarginAccount) -> None:
    loan = active_loan(line, principal="70000.00", value_date=TODAY)
    hold = _hold(loan, account)
    rows = GoodsHold.objects.filter(pk=hold.pk)
    rows.update(released_value=D("30000.00"))
    with refused(), transaction.atomic():
        rows.update(released_value=D("30000.01"))
    with refused(), transaction.atomic():
        rows.update(releasable_value=D("100000.01"))


@pytest.mark.django_db
def test_one_claim_per_loan_never_paid_beyond_its_amount(line: Any) -> None:
    loan = active_loan(line, principal="70000.00", value_date=TODAY)

    def claim(reference: str, **amounts: str) -> GuaranteeClaim:
        now = timezone.now()
        return GuaranteeClaim.objects.create(
            loan=loan,
            program=loan.program,
            agent=loan.agent,
            enterprise=loan.program.enterprise,
            guarantee_type=GuaranteeType.BUYBACK,
            currency="CNY",
            reference=reference,
            raised_on=TODAY,
            window_ends_on=TODAY + dt.timedelta(days=30),
            created_at=now,
            updated_at=now,
            **{name: D(value) for name, value in amounts.items()},
        )

    first = claim("CL-1", owed="500.00", amount="400.00")
    with refused(), transaction.atomic():
        claim("CL-2", owed="500.00", amount="400.00")
    with refused(), transaction.atomic():
        GuaranteeClaim.objects.filter(pk=first.pk).update(paid=D("400.01"))
    with refused(), transaction.atomic():
        GuaranteeClaim.objects.filter(pk=first.pk).update(amount=D("500.01"))


@pytest.mark.django_db
def test_a_bought_back_loan_still_holds_its_order(line: Any) -> None:
    loan = active_loan(line, principal="1000.00", value_date=TODAY)
    Loan.objects.filter(pk=loan.pk).update(status=LoanStatus.BOUGHT_BACK)
    second = Loan.objects.get(pk=loan.pk)
    second.pk, second.reference, second.status = None, "SCF-again", LoanStatus.APPROVED
    with refused(), transaction.atomic():
        second.save()
