"""Property: whatever agents and risk staff do, credit never goes negative and always adds up.

A stateful test drives one small program (three agents whose lines together exceed the program
limit) with random finance requests, claims, approvals (maker-checker included), declines,
freezes and expiry, and after every step checks the invariants of DESIGN.md:

- ``available >= 0`` on every line and on the program;
- reserved on each line and on the program equals the sum of ``reserved_amount`` of its loans in
  ``in_review``/``approved``/``disbursing``;
- every open review has its loan in review, and every loan in review has one open review;
- a case that needed two approvers was approved by two different people, the second a risk
  approver;
- the journal balances (debits == credits overall).

Each example runs inside a savepoint that is rolled back in ``teardown``, so rows from one example
never leak into the next.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from lending.models import (
    RESERVES_CREDIT,
    REVIEW_OPEN,
    CreditLine,
    JournalLine,
    Loan,
    Program,
    Review,
)
from lending.services.finance import loan_finance
from lending.services.review_expiry import reviews_expire
from lending.services.reviews import (
    DECLINE_REASONS,
    review_approve,
    review_claim,
    review_decline,
)
from scf import clock
from scf.errors import ApplicationError
from tests.lending.factories import CreditLineFactory, ProgramFactory
from tests.orders.factories import AgentFactory, EnterpriseFactory, OrderFactory, UserFactory

ZERO = Decimal("0.00")
STAFF = ["reviewer", "approver_1", "approver_2"]
# Refusals the services may legitimately give in a random walk; anything else is a bug.
EXPECTED_REFUSALS = {
    "already_claimed",
    "not_claimed",
    "maker_checker_same_user",
    "approver_role_required",
    "line_frozen",
    "review_closed",
    "review_expired",
    "order_already_financed",
}


# Order amounts around the program's thresholds (principal = 80%): auto-approved, referred to one
# approver, referred to two (maker-checker), above the line, above the maximum; and any amount.
AMOUNTS = st.one_of(
    st.sampled_from([2000, 12500, 12501, 25000, 25001, 37500, 50001]),
    st.integers(1000, 45000),
)


class CreditMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.at = clock.now()
        self._clock = mock.patch.object(clock, "now", lambda: self.at)
        self._clock.start()
        self._build_world()

    def _build_world(self) -> None:
        self.enterprise = EnterpriseFactory()
        self.program = ProgramFactory(
            enterprise=self.enterprise,
            limit=Decimal("100000.00"),
            max_principal=Decimal("40000.00"),
            auto_approve_limit=Decimal("10000.00"),
            maker_checker_threshold=Decimal("20000.00"),
            review_hold_hours=24,
        )
        self.agent_users = []
        for limit, grade in (("40000.00", "B"), ("40000.00", "B"), ("30000.00", "D")):
            agent = AgentFactory(enterprises=[self.enterprise])
            CreditLineFactory(
                agent=agent, program=self.program, limit=Decimal(limit), risk_grade=grade
            )
            self.agent_users.append(UserFactory(role="agent", agent=agent))
        self.staff = {
            "reviewer": UserFactory(role="risk_reviewer"),
            "approver_1": UserFactory(role="risk_approver"),
            "approver_2": UserFactory(role="risk_approver"),
        }

    def teardown(self) -> None:
        self._clock.stop()
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    def _attempt(self, call: Any) -> None:
        try:
            call()
        except ApplicationError as exc:
            assert exc.code in EXPECTED_REFUSALS, (exc.code, exc.detail)

    def _pick(self, data: Any, queryset: Any) -> int | None:
        ids = list(queryset.order_by("pk").values_list("pk", flat=True))
        return data.draw(st.sampled_from(ids)) if ids else None

    @rule(agent=st.integers(0, 2), amount=AMOUNTS)
    def finance_new_order(self, agent: int, amount: int) -> None:
        user = self.agent_users[agent]
        order = OrderFactory(
            agent=user.agent,
            enterprise=self.enterprise,
            amount=Decimal(amount),
            order_date=clock.business_date(self.program.time_zone),
        )
        loan = loan_finance(user=user, order_id=order.id)
        assert loan.status in ("disbursing", "in_review", "declined")

    @rule(data=st.data())
    def finance_again(self, data: Any) -> None:
        loan_id = self._pick(data, Loan.objects.filter(program=self.program))
        if loan_id is not None:
            loan = Loan.objects.select_related("order").get(pk=loan_id)
            user = next(u for u in self.agent_users if u.agent_id == loan.agent_id)
            self._attempt(lambda: loan_finance(user=user, order_id=loan.order_id))

    @rule(data=st.data(), who=st.sampled_from(STAFF))
    def claim(self, data: Any, who: str) -> None:
        review_id = self._pick(data, Review.objects.filter(status__in=REVIEW_OPEN))
        if review_id is not None:
            self._attempt(lambda: review_claim(user=self.staff[who], review_id=review_id))

    @rule(data=st.data(), who=st.sampled_from(STAFF), claim_first=st.booleans())
    def approve(self, data: Any, who: str, claim_first: bool) -> None:
        review_id = self._pick(data, Review.objects.filter(status__in=REVIEW_OPEN))
        if review_id is None:
            return
        user = self.staff[who]
        if claim_first:
            self._attempt(lambda: review_claim(user=user, review_id=review_id))
        self._attempt(lambda: review_approve(user=user, review_id=review_id))

    @rule(data=st.data(), who=st.sampled_from(STAFF))
    def second_approval(self, data: Any, who: str) -> None:
        review_id = self._pick(data, Review.objects.filter(status="awaiting_second_approval"))
        if review_id is not None:
            self._attempt(lambda: review_approve(user=self.staff[who], review_id=review_id))

    @rule(data=st.data(), who=st.sampled_from(STAFF), reason=st.sampled_from(list(DECLINE_REASONS)))
    def decline(self, data: Any, who: str, reason: str) -> None:
        review_id = self._pick(data, Review.objects.filter(status__in=REVIEW_OPEN))
        if review_id is None:
            return
        user = self.staff[who]
        self._attempt(lambda: review_claim(user=user, review_id=review_id))
        self._attempt(
            lambda: review_decline(user=user, review_id=review_id, reason=reason, note="why")
        )

    @rule(agent=st.integers(0, 2), frozen=st.booleans())
    def freeze_line(self, agent: int, frozen: bool) -> None:
        CreditLine.objects.filter(agent_id=self.agent_users[agent].agent_id).update(frozen=frozen)

    @rule(hours=st.integers(1, 30))
    def time_passes_and_cases_expire(self, hours: int) -> None:
        self.at += dt.timedelta(hours=hours)
        due = Review.objects.filter(status__in=REVIEW_OPEN, expires_at__lte=self.at).count()
        assert reviews_expire() == due
        assert not Review.objects.filter(status__in=REVIEW_OPEN, expires_at__lte=self.at).exists()

    @invariant()
    def credit_adds_up(self) -> None:
        for line in CreditLine.objects.filter(program=self.program):
            assert line.available >= 0, line
            assert line.reserved == _reserved(Loan.objects.filter(credit_line=line)), line
        program = Program.objects.get(pk=self.program.pk)
        assert program.available >= 0
        assert program.reserved == _reserved(Loan.objects.filter(program=program))

    @invariant()
    def cases_match_loans(self) -> None:
        open_reviews = Review.objects.filter(status__in=REVIEW_OPEN)
        assert not open_reviews.exclude(loan__status="in_review").exists()
        in_review = set(Loan.objects.filter(status="in_review").values_list("pk", flat=True))
        assert sorted(open_reviews.values_list("loan_id", flat=True)) == sorted(in_review)

    @invariant()
    def four_eyes_above_threshold(self) -> None:
        for review in Review.objects.filter(status="approved", requires_second_approval=True):
            assert review.second_approver_id not in (None, review.first_approver_id)
            assert review.second_approver_id in (
                self.staff["approver_1"].pk,
                self.staff["approver_2"].pk,
            )

    @invariant()
    def journal_balances(self) -> None:
        totals = JournalLine.objects.aggregate(debit=Sum("debit"), credit=Sum("credit"))
        assert (totals["debit"] or ZERO) == (totals["credit"] or ZERO)


def _reserved(loans: Any) -> Decimal:
    total = loans.filter(status__in=RESERVES_CREDIT).aggregate(s=Sum("reserved_amount"))["s"]
    return total or ZERO


@pytest.mark.django_db
def test_credit_invariants_hold_under_random_review_work() -> None:
    run_state_machine_as_test(
        CreditMachine,
        settings=settings(
            max_examples=40,
            stateful_step_count=20,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


@pytest.mark.django_db
def test_examples_do_not_leak_rows() -> None:
    """The isolation the property relies on: a machine's rows are gone after its teardown."""
    machine = CreditMachine()
    machine.finance_new_order(agent=0, amount=10000)
    assert Loan.objects.count() == 1
    machine.teardown()
    assert Loan.objects.count() == 0 and Program.objects.count() == 0
