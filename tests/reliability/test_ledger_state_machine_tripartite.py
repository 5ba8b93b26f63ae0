"""The ledger state machine with a tripartite program beside the plain one.

``TripartiteLedgerMachine`` keeps every step of ``LedgerMachine`` (finance, review, disburse,
repay on time and backdated, accrue, cancel, tamper) and adds, on a second program with
tripartite terms (buyback, trigger 3 days past due, claim window 4 days, program cap 60,000,
agent cap 40,000):

* ``finance_tripartite``: an order financed with its margin and goods held (the test fixture
  ``tripartite_loan``: the rows the finance path writes, written directly);
* ``release``: the enterprise asks to release a share of what is paid for, or more than that
  (refused ``release_exceeds_paid``);
* default and claim: ``accrue`` runs close of business on both programs, so loans fall past the
  trigger and raise their claims, and unpaid claims past the window are escalated;
* ``accept`` / ``dispute`` a claim as the enterprise's admin;
* ``pay`` a claim in part, in full, or more than is due (refused ``claim_overpaid``).

After every step the invariants of the plain machine hold, ``book_check`` (which reconciles
holds and releases, claims with the guarantee receivable, and cap usage) finds nothing, and no
cap is used beyond itself.
"""

from __future__ import annotations

from collections import Counter
from decimal import ROUND_DOWN, Decimal
from typing import Any

import pytest
from django.db import transaction
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule, run_state_machine_as_test

from lending.models import (
    Agreement,
    ClaimStatus,
    GoodsHold,
    GuaranteeClaim,
    HoldStatus,
    TripartiteTerms,
)
from lending.services.claim_actions import claim_accept, claim_dispute, claim_payment_record
from lending.services.cob import cob_run_through
from lending.services.releases import release_request
from scf.errors import ApplicationError
from tests.lending.active_loans import money_line
from tests.lending.tripartite_makers import agreement_for, tripartite_loan, tripartite_terms
from tests.orders.factories import AgentFactory, EnterpriseFactory, UserFactory
from tests.reliability.test_ledger_state_machine import (
    CENT,
    EXPECTED_REFUSALS,
    LedgerMachine,
    _settings,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

TRIPARTITE_REFUSALS = {
    *EXPECTED_REFUSALS,
    "release_exceeds_paid",
    "claim_raised",
    "claim_overpaid",
    "repayment_before_claim",
    "claim_state",
}
# What the walk reached, over all examples: the test fails if it never got to a step.
REACHED: Counter[str] = Counter()
PAYABLE = [ClaimStatus.RAISED, ClaimStatus.ACCEPTED, ClaimStatus.PARTLY_PAID, ClaimStatus.ESCALATED]


class TripartiteLedgerMachine(LedgerMachine):
    def _build_world(self) -> None:
        super()._build_world()
        goods_enterprise = EnterpriseFactory()
        agent = AgentFactory(enterprises=[goods_enterprise])
        self.t_line = money_line(agent, goods_enterprise, tenor_days=10, grace_days=2)
        tripartite_terms(
            self.t_line.program,
            trigger_dpd=3,
            claim_window_days=4,
            program_cap=Decimal("60000.00"),
        )
        Agreement.objects.filter(pk=agreement_for(self.t_line).pk).update(
            agent_cap=Decimal("40000.00")
        )
        self.t_admin = UserFactory(role="enterprise_admin", enterprise=goods_enterprise)
        self.payments = 0

    def _attempt(self, call: Any) -> bool:
        try:
            with transaction.atomic():
                call()
        except ApplicationError as exc:
            assert exc.code in TRIPARTITE_REFUSALS, (exc.code, exc.detail)
            event(f"refused: {exc.code}")
            return False
        return True

    def has_claim(self) -> bool:
        return GuaranteeClaim.objects.exclude(status=ClaimStatus.CAP_EXHAUSTED).exists()

    # --- rules ------------------------------------------------------------------------------

    @rule(amount=st.integers(2000, 30000))
    def finance_tripartite(self, amount: int) -> None:
        tripartite_loan(self.t_line, order_value=f"{amount}.00", value_date=self.today)

    @precondition(lambda self: GoodsHold.objects.exists())
    @rule(data=st.data(), share=st.integers(1, 150))
    def release(self, data: Any, share: int) -> None:
        holds = GoodsHold.objects.filter(status__in=[HoldStatus.HELD, HoldStatus.PARTLY_RELEASED])
        hold = self._pick(data, holds.select_related("loan"))
        if hold is None:
            return
        paid = hold.releasable_value - hold.released_value
        value = (paid * share / 100).quantize(CENT, rounding=ROUND_DOWN)
        if value <= 0:
            value = CENT
        released = self._attempt(
            lambda: release_request(
                loan=hold.loan,
                data={"value": str(value)},
                requested_by_kind="enterprise",
                actor=self.t_admin,
            )
        )
        event(f"release {'authorised' if released else 'refused'}")
        REACHED[f"release {'authorised' if released else 'refused'}"] += 1
        assert released == (value <= paid) or GuaranteeClaim.objects.filter(loan=hold.loan).exists()

    @precondition(lambda self: self.has_claim())
    @rule(data=st.data())
    def accept(self, data: Any) -> None:
        claim = self._pick(data, GuaranteeClaim.objects.exclude(status=ClaimStatus.CAP_EXHAUSTED))
        if claim is not None:
            accepted = self._attempt(lambda: claim_accept(claim_id=claim.pk, actor=self.t_admin))
            event(f"accept a {claim.status} claim: {accepted}")
            REACHED["accepted"] += accepted

    @precondition(lambda self: self.has_claim())
    @rule(data=st.data())
    def dispute(self, data: Any) -> None:
        claim = self._pick(data, GuaranteeClaim.objects.exclude(status=ClaimStatus.CAP_EXHAUSTED))
        if claim is not None:
            REACHED["disputed"] += self._attempt(
                lambda: claim_dispute(claim_id=claim.pk, actor=self.t_admin, reason="not ours")
            )

    @precondition(lambda self: self.has_claim())
    @rule(data=st.data(), kind=st.sampled_from(["part", "full", "over"]))
    def pay(self, data: Any, kind: str) -> None:
        claim = self._pick(data, GuaranteeClaim.objects.filter(status__in=PAYABLE))
        if claim is None:
            return
        due = claim.amount - claim.paid
        if kind == "part":
            amount = max(CENT, (due * data.draw(st.integers(1, 99)) / 100).quantize(CENT))
        else:
            amount = due + (CENT if kind == "over" else 0)
        self.payments += 1
        paid = self._attempt(
            lambda: claim_payment_record(
                claim_id=claim.pk,
                amount=amount,
                value_date=self.today,
                reference=f"ENT-{self.payments:05d}",
                actor="integration:bank-statement",
            )
        )
        event(f"pay {kind}: {paid}")
        REACHED[f"pay {kind}: {paid}"] += 1
        if GuaranteeClaim.objects.filter(pk=claim.pk, status=ClaimStatus.PAID).exists():
            REACHED["paid in full"] += 1

    @rule(days=st.integers(1, 5))
    def accrue(self, days: int) -> None:
        super().accrue(days)
        results = cob_run_through(program_ids=[self.t_line.program_id])
        assert [r.error for r in results if r.error] == []
        if GuaranteeClaim.objects.exists():
            event("a claim raised")
            REACHED["claim raised"] += 1

    # --- invariants -------------------------------------------------------------------------

    @invariant()
    def caps_hold(self) -> None:
        terms = TripartiteTerms.objects.get(program=self.t_line.program)
        assert 0 <= terms.program_cap_used <= terms.program_cap
        for agreement in Agreement.objects.filter(program=self.t_line.program):
            assert 0 <= agreement.agent_cap_used <= agreement.agent_cap


def test_ledger_invariants_hold_with_releases_claims_and_payments():
    REACHED.clear()
    run_state_machine_as_test(TripartiteLedgerMachine, settings=_settings())
    steps = ["release authorised", "release refused", "claim raised", "accepted", "disputed"]
    steps += ["pay part: True", "pay over: False", "paid in full"]
    assert {step: REACHED[step] for step in steps if not REACHED[step]} == {}, REACHED
