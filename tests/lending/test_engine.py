"""The decision engine: every decline and referral reason through the real finance service, with
the stored decision explaining it; then pure tests of ``decide`` for precedence and boundaries.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from lending import engine
from lending.models import CreditLine, Decision, Loan, Program, Review
from lending.services.finance import loan_finance
from orders.models import AgentRelationship, SalesOrder
from scf import clock
from scf.errors import Conflict
from tests.orders.factories import OrderFactory

pytestmark = pytest.mark.django_db

INPUT_FIELDS = {f.name for f in dataclasses.fields(engine.DecisionInputs)} | {"order_age_days"}
RULE_NAMES = [
    "order_status",
    "order_not_financed",
    "order_age",
    "currency",
    "program_active",
    "agent_active",
    "line_frozen",
    "agent_overdue",
    "amount_range",
    "line_headroom",
    "program_headroom",
    "auto_approve_limit",
    "auto_approve_grade",
]


@dataclasses.dataclass
class World:
    agent_user: Any
    agent: Any
    enterprise: Any
    program: Program
    line: CreditLine

    def order(self, **fields: Any) -> SalesOrder:
        fields.setdefault("order_date", clock.business_date(self.program.time_zone))
        return OrderFactory(agent=self.agent, enterprise=self.enterprise, **fields)

    def finance(self, order: SalesOrder) -> tuple[Loan, Decision]:
        loan = loan_finance(user=self.agent_user, order_id=order.id)
        return loan, Decision.objects.get(loan=loan)


@pytest.fixture
def world(agent_user: Any, agent: Any, enterprise: Any, program: Any, line: Any) -> World:
    return World(agent_user, agent, enterprise, program, line)


def _update(obj: Any, **fields: Any) -> None:
    type(obj).objects.filter(pk=obj.pk).update(**fields)
    obj.refresh_from_db()


def _days_ago(world: World, days: int) -> dt.date:
    return clock.business_date(world.program.time_zone) - dt.timedelta(days=days)


def _overdue_loan(world: World, dpd: int) -> None:
    """An earlier loan of the agent, now past due by ``dpd`` days."""
    loan, _ = world.finance(world.order())
    _update(loan, status="overdue", days_past_due=dpd, reserved_amount=Decimal("0.00"))
    CreditLine.objects.filter(pk=world.line.pk).update(reserved=0)
    Program.objects.filter(pk=world.program.pk).update(reserved=0)


def _failing(decision: Decision) -> list[dict[str, Any]]:
    return [r for r in decision.rules if r["outcome"] != engine.PASS]


def _check_explained(decision: Decision, *, outcome: str, rule: str, rule_outcome: str, code: str):
    """The stored decision names the reason, the one rule that failed, and all its inputs."""
    assert decision.outcome == outcome
    assert [r["code"] for r in decision.reasons] == [code]
    assert decision.reasons[0]["detail"]
    assert [r["rule"] for r in decision.rules] == RULE_NAMES
    assert _failing(decision) == [
        {
            "rule": rule,
            "outcome": rule_outcome,
            "code": code,
            "detail": decision.reasons[0]["detail"],
        }
    ]
    assert set(decision.inputs) == INPUT_FIELDS
    assert decision.engine_version == engine.ENGINE_VERSION


Setup = Callable[[World], SalesOrder]

DECLINES: dict[str, tuple[str, Setup, dict[str, Any]]] = {
    "order_not_financeable": (
        "order_status",
        lambda w: w.order(status="delivered"),
        {"order_status": "delivered"},
    ),
    "order_cancelled": (
        "order_status",
        lambda w: w.order(status="cancelled"),
        {"order_status": "cancelled"},
    ),
    "order_too_old": (
        "order_age",
        lambda w: w.order(order_date=_days_ago(w, 91)),
        {"order_age_days": 91, "max_order_age_days": 90},
    ),
    "order_date_in_future": (
        "order_age",
        lambda w: w.order(order_date=dt.date(9999, 12, 31)),
        {"order_date": "9999-12-31", "max_order_future_days": 1},
    ),
    "currency_mismatch": (
        "currency",
        lambda w: w.order(currency="USD"),
        {"order_currency": "USD", "program_currency": "CNY"},
    ),
    "agent_inactive": (
        "agent_active",
        lambda w: (_update(w.agent, status="suspended"), w.order())[1],
        {"agent_status": "suspended", "relationship_active": True},
    ),
    "line_frozen": (
        "line_frozen",
        lambda w: (_update(w.line, frozen=True), w.order())[1],
        {"line_frozen": True},
    ),
    "agent_overdue": (
        "agent_overdue",
        lambda w: (_overdue_loan(w, 5), w.order())[1],
        {"agent_max_dpd": 5, "max_dpd_tolerated": 0},
    ),
    "amount_below_minimum": (
        "amount_range",
        lambda w: w.order(amount=Decimal("1249.99")),
        {"principal": "999.99", "min_principal": "1000.00"},
    ),
    "amount_above_maximum": (
        "amount_range",
        lambda w: (_update(w.program, max_principal=Decimal("7999.99")), w.order())[1],
        {"principal": "8000.00", "max_principal": "7999.99"},
    ),
    "insufficient_credit_line": (
        "line_headroom",
        lambda w: (_update(w.line, limit=Decimal("7999.99")), w.order())[1],
        {"line_available": "7999.99", "line_limit": "7999.99"},
    ),
    "insufficient_program_limit": (
        "program_headroom",
        lambda w: (_update(w.program, limit=Decimal("7999.99")), w.order())[1],
        {"program_available": "7999.99"},
    ),
    "program_inactive": (
        "program_active",
        lambda w: (_update(w.program, status="suspended"), w.order())[1],
        {"program_status": "suspended"},
    ),
}


@pytest.mark.parametrize("code", list(DECLINES))
def test_each_decline_reason_is_stored_and_explained(world, code):
    rule, setup, inputs = DECLINES[code]
    loan, decision = world.finance(setup(world))
    _check_explained(decision, outcome="declined", rule=rule, rule_outcome="decline", code=code)
    assert {key: decision.inputs[key] for key in inputs} == inputs
    assert loan.status == "declined" and loan.reserved_amount == 0
    assert not Review.objects.filter(loan=loan).exists()
    world.line.refresh_from_db()
    assert world.line.reserved == 0


def test_agent_without_an_active_relationship_is_declined_inactive(world):
    AgentRelationship.objects.filter(agent=world.agent).update(active=False)
    _, decision = world.finance(world.order())
    _check_explained(
        decision,
        outcome="declined",
        rule="agent_active",
        rule_outcome="decline",
        code="agent_inactive",
    )
    assert decision.inputs["relationship_active"] is False
    assert decision.inputs["agent_status"] == "active"


def test_an_order_already_financed_is_refused_by_the_service_and_the_engine(world):
    order = world.order()
    first, _ = world.finance(order)
    assert first.status == "disbursing"  # approved, payment recorded
    with pytest.raises(Conflict) as error:
        world.finance(order)
    assert error.value.code == "order_already_financed"
    assert Loan.objects.filter(order=order).count() == 1
    # Had the request reached the engine, the engine refuses it too.
    result = engine.decide(dataclasses.replace(_inputs(), already_financed=True))
    assert result.outcome == "declined"
    assert [r["code"] for r in result.reasons] == ["order_already_financed"]
    assert _rule(result, "order_not_financed").outcome == engine.DECLINE


def _check_referred(world: World, loan: Loan) -> None:
    assert loan.status == "in_review" and loan.reserved_amount == loan.principal
    review = Review.objects.get(loan=loan)
    assert review.status == "open" and review.kind == "referral"
    assert review.expires_at == loan.requested_at + dt.timedelta(
        hours=world.program.review_hold_hours
    )
    world.line.refresh_from_db()
    assert world.line.reserved == loan.principal


def test_above_auto_approve_limit_is_referred(world):
    _update(world.program, auto_approve_limit=Decimal("7999.99"))
    loan, decision = world.finance(world.order())
    _check_explained(
        decision,
        outcome="in_review",
        rule="auto_approve_limit",
        rule_outcome="refer",
        code="above_auto_approve_limit",
    )
    assert decision.inputs["auto_approve_limit"] == "7999.99"
    assert decision.inputs["principal"] == "8000.00"
    _check_referred(world, loan)


def test_grade_below_auto_approve_is_referred(world):
    _update(world.line, risk_grade="D")
    loan, decision = world.finance(world.order())
    _check_explained(
        decision,
        outcome="in_review",
        rule="auto_approve_grade",
        rule_outcome="refer",
        code="grade_below_auto_approve",
    )
    assert (decision.inputs["risk_grade"], decision.inputs["auto_approve_grade"]) == ("D", "C")
    _check_referred(world, loan)


@pytest.mark.parametrize("referred", ["order_too_old", "agent_overdue", "amount_above_maximum"])
def test_a_rule_the_program_marks_refer_is_referred(world, referred):
    rule, setup, _ = DECLINES[referred]
    _update(world.program, refer_rules=[referred])
    loan, decision = world.finance(setup(world))
    _check_explained(
        decision, outcome="in_review", rule=rule, rule_outcome="refer", code="program_rule_refer"
    )
    assert decision.reasons[0]["detail"].startswith(f"{referred}:")
    assert decision.inputs["refer_rules"] == [referred]
    _check_referred(world, loan)


def test_an_order_dated_after_the_business_date_past_the_tolerance_is_declined():
    business_date = _inputs().business_date
    for days, outcome in ((0, "approved"), (1, "approved"), (2, "declined"), (3000, "declined")):
        order_date = business_date + dt.timedelta(days=days)
        result = engine.decide(_inputs(order_date=order_date))
        assert result.outcome == outcome, days
        if outcome == "declined":
            assert _codes(result) == ["order_date_in_future"]
            assert _rule(result, "order_age").outcome == engine.DECLINE
    strict = engine.decide(
        _inputs(order_date=business_date + dt.timedelta(days=1), max_order_future_days=0)
    )
    assert _codes(strict) == ["order_date_in_future"]


def test_a_future_dated_order_cannot_be_referred_instead():
    late = _inputs().business_date + dt.timedelta(days=30)
    for refer_rules in (("order_date_in_future",), ("order_too_old",)):
        result = engine.decide(_inputs(order_date=late, refer_rules=refer_rules))
        assert result.outcome == "declined" and _codes(result) == ["order_date_in_future"]


def test_every_reason_code_has_words_for_the_agent():
    from lending.views.words.decisions import REASONS

    assert set(engine.REASON_TEXT) <= set(REASONS)


def test_refer_rules_cannot_soften_a_hard_decline(world):
    _update(world.program, refer_rules=["line_frozen"])
    _update(world.line, frozen=True)
    _, decision = world.finance(world.order())
    assert decision.outcome == "declined"
    assert [r["code"] for r in decision.reasons] == ["line_frozen"]


def test_a_clean_request_is_approved_with_every_rule_passing(world):
    loan, decision = world.finance(world.order())
    assert decision.outcome == "approved" and decision.reasons == []
    assert [r["rule"] for r in decision.rules] == RULE_NAMES and _failing(decision) == []
    assert loan.status == "disbursing" and loan.approved_at is not None
    assert not Review.objects.filter(loan=loan).exists()


# --- pure tests of decide ---------------------------------------------------------------------


def _inputs(**changes: Any) -> engine.DecisionInputs:
    """Inputs on which every rule passes; ``changes`` break some of them."""
    base = engine.DecisionInputs(
        order_id=1,
        order_status="confirmed",
        order_amount=Decimal("10000.00"),
        order_currency="CNY",
        order_date=dt.date(2026, 11, 1),
        business_date=dt.date(2026, 11, 20),
        already_financed=False,
        agent_status="active",
        relationship_active=True,
        agent_max_dpd=0,
        line_limit=Decimal("100000.00"),
        line_available=Decimal("100000.00"),
        line_frozen=False,
        risk_grade="B",
        program_status="active",
        program_currency="CNY",
        program_available=Decimal("1000000.00"),
        min_principal=Decimal("1000.00"),
        max_principal=Decimal("50000.00"),
        auto_approve_limit=Decimal("20000.00"),
        auto_approve_grade="C",
        max_order_age_days=90,
        max_order_future_days=1,
        max_dpd_tolerated=0,
        principal=Decimal("8000.00"),
    )
    return dataclasses.replace(base, **changes)


def _rule(result: engine.DecisionResult, name: str) -> engine.RuleResult:
    return next(r for r in result.rules if r.rule == name)


def _codes(result: engine.DecisionResult) -> list[str]:
    return [r["code"] for r in result.reasons]


def test_decide_approves_clean_inputs_and_runs_every_rule():
    result = engine.decide(_inputs())
    assert result.outcome == "approved" and result.reasons == [] and result.reserves_credit
    assert [r.rule for r in result.rules] == RULE_NAMES
    assert {r.outcome for r in result.rules} == {engine.PASS}


def test_declines_beat_referrals_but_referrals_stay_on_record():
    result = engine.decide(
        _inputs(order_status="cancelled", principal=Decimal("30000.00"), risk_grade="E")
    )
    assert result.outcome == "declined" and not result.reserves_credit
    assert _codes(result) == ["order_cancelled"]
    assert _rule(result, "auto_approve_limit").outcome == engine.REFER
    assert _rule(result, "auto_approve_grade").outcome == engine.REFER


def test_every_decline_that_applies_is_listed_in_rule_order():
    result = engine.decide(
        _inputs(
            order_status="delivered",
            already_financed=True,
            order_currency="USD",
            agent_status="inactive",
            line_frozen=True,
            agent_max_dpd=3,
            principal=Decimal("60000.00"),
            line_available=Decimal("100.00"),
            program_available=Decimal("0.00"),
            program_status="suspended",
        )
    )
    assert _codes(result) == [
        "order_not_financeable",
        "order_already_financed",
        "currency_mismatch",
        "program_inactive",
        "agent_inactive",
        "line_frozen",
        "agent_overdue",
        "amount_above_maximum",
        "insufficient_credit_line",
        "insufficient_program_limit",
    ]
    assert all(reason["detail"] for reason in result.reasons)


def test_every_referral_that_applies_is_listed():
    result = engine.decide(_inputs(principal=Decimal("20000.01"), risk_grade="D"))
    assert result.outcome == "in_review" and result.reserves_credit
    assert _codes(result) == ["above_auto_approve_limit", "grade_below_auto_approve"]


def test_program_referral_with_another_hard_decline_still_declines():
    result = engine.decide(
        _inputs(agent_max_dpd=10, refer_rules=("agent_overdue",), line_frozen=True)
    )
    assert result.outcome == "declined" and _codes(result) == ["line_frozen"]
    assert _rule(result, "agent_overdue").code == "program_rule_refer"


def test_program_refer_applies_only_to_referable_rules():
    assert engine.decide(_inputs(line_frozen=True, refer_rules=("line_frozen",))).outcome == (
        "declined"
    )
    result = engine.decide(_inputs(agent_max_dpd=10, refer_rules=("agent_overdue",)))
    assert result.outcome == "in_review" and _codes(result) == ["program_rule_refer"]


@pytest.mark.parametrize(
    ("changes", "outcome"),
    [
        ({"principal": Decimal("20000.00")}, "approved"),  # at the auto-approve limit
        ({"principal": Decimal("20000.01")}, "in_review"),
        ({"risk_grade": "C"}, "approved"),  # at the auto-approve grade
        ({"risk_grade": "A"}, "approved"),
        ({"order_date": dt.date(2026, 8, 22)}, "approved"),  # exactly 90 days old
        ({"order_date": dt.date(2026, 8, 21)}, "declined"),
        ({"principal": Decimal("1000.00")}, "approved"),  # at the minimum
        ({"principal": Decimal("999.99")}, "declined"),
        ({"line_available": Decimal("8000.00")}, "approved"),  # exactly enough headroom
        ({"program_available": Decimal("7999.99")}, "declined"),
        ({"agent_max_dpd": 2, "max_dpd_tolerated": 2}, "approved"),
        ({"order_status": "shipped"}, "approved"),
    ],
)
def test_boundaries(changes, outcome):
    assert engine.decide(_inputs(**changes)).outcome == outcome


def test_inputs_serialise_without_floats():
    data = _inputs().as_json()
    assert data["principal"] == "8000.00" and data["order_age_days"] == 19
    assert data["business_date"] == "2026-11-20" and data["refer_rules"] == []
    assert not any(isinstance(value, float) for value in data.values())


def test_stored_rules_and_inputs_hold_every_field_in_order():
    """What a decision record stores: each rule's every field, each input's every field (in
    declaration order, then the derived order age), whatever the outcome."""
    for changes in (
        {},
        {"line_frozen": True},
        {"agent_max_dpd": 9, "refer_rules": ("agent_overdue",)},
    ):
        result = engine.decide(_inputs(**changes))
        assert result.rules_json() == [dataclasses.asdict(r) for r in result.rules]
        names = [f.name for f in dataclasses.fields(engine.DecisionInputs)]
        assert list(result.inputs.as_json()) == [*names, "order_age_days"]
