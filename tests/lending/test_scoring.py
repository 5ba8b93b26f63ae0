"""Credit scoring: features against hand-computed figures, the scorecard's parts, training on a
synthetic history with a known ground truth, promotion, determinism, the commands."""

from __future__ import annotations

import datetime as dt
import json
import math
import statistics
from decimal import Decimal
from io import StringIO
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from integrations.demo.history import GeneratedHistory, history_generate
from lending.models import AgentScore, CreditLine, CreditModel, Loan, Repayment
from lending.scoring import scorecard as sc
from lending.scoring.features import FEATURE_NAMES, features_as_of
from lending.scoring.scores import score_frame
from lending.scoring.training import NotEnoughHistory, scorecard_of, time_split, training_set
from lending.services.credit_models import credit_model_train
from tests.lending.factories import CreditLineFactory, ProgramFactory
from tests.orders.factories import AgentFactory, EnterpriseFactory, OrderFactory

pytestmark = pytest.mark.django_db

D = dt.date(2026, 6, 30)
# The trained model must rank the hold-out clearly better than chance and than the naive rule;
# the generator's ground truth makes an oracle that knows each agent's true PD reach about 0.8.
AUC_FLOOR = 0.68
BASELINE_MARGIN = 0.05


# --- features on a small, hand-computed data set -------------------------------------------------


def _order(agent: Any, enterprise: Any, day: str, amount: str, status: str = "delivered") -> Any:
    return OrderFactory(
        agent=agent,
        enterprise=enterprise,
        order_date=dt.date.fromisoformat(day),
        amount=Decimal(amount),
        status=status,
    )


def _loan(line: CreditLine, order: Any, value: str, due: str, status: str) -> Loan:
    principal = (order.amount * Decimal("0.8")).quantize(Decimal("0.01"))
    return Loan.objects.create(
        program=line.program,
        credit_line=line,
        agent=line.agent,
        order=order,
        status=status,
        currency="CNY",
        order_amount=order.amount,
        principal=principal,
        advance_rate=Decimal("0.8000"),
        annual_rate=Decimal("0.054"),
        penalty_rate=Decimal("0.081"),
        day_count="ACT/360",
        tenor_days=90,
        grace_days=3,
        outstanding_principal=principal,
        value_date=dt.date.fromisoformat(value),
        due_date=dt.date.fromisoformat(due),
        reference=f"T{order.pk}",
        requested_at=dt.datetime.fromisoformat(f"{value}T09:00:00+08:00"),
    )


def _repay(loan: Loan, day: str, principal: str) -> None:
    Repayment.objects.create(
        loan=loan,
        reference=f"R{loan.pk}-{day}",
        amount=Decimal(principal),
        currency="CNY",
        value_date=dt.date.fromisoformat(day),
        source="api",
        to_principal=Decimal(principal),
        recorded_by="test",
        received_at=dt.datetime.fromisoformat(f"{day}T10:00:00+08:00"),
    )


@pytest.fixture
def small_book() -> dict[str, Any]:
    """One agent's orders and loans in one program, with noise the features must ignore."""
    enterprise, other = EnterpriseFactory(), EnterpriseFactory()
    agent, idle = (
        AgentFactory(enterprises=[enterprise, other]),
        AgentFactory(enterprises=[enterprise]),
    )
    program = ProgramFactory(enterprise=enterprise)
    line = CreditLineFactory(agent=agent, program=program, limit=Decimal("500000.00"))
    idle_line = CreditLineFactory(agent=idle, program=program, limit=Decimal("200000.00"))
    o = {
        "o1": _order(agent, enterprise, "2026-06-20", "10000.00", "confirmed"),
        "o2": _order(agent, enterprise, "2026-06-05", "20000.00", "shipped"),
        "o3": _order(agent, enterprise, "2026-05-15", "30000.00"),
        "o4": _order(agent, enterprise, "2026-04-10", "5000.00", "cancelled"),
        "o5": _order(agent, enterprise, "2026-01-10", "40000.00"),
        "o9": _order(agent, enterprise, "2026-02-01", "25000.00"),
        "o10": _order(agent, enterprise, "2026-02-20", "15000.00"),
        "o6": _order(agent, enterprise, "2025-03-01", "50000.00"),  # before the 365 days
    }
    _order(agent, enterprise, "2026-07-05", "99999.00", "confirmed")  # after D
    _order(agent, other, "2026-06-25", "7777.00", "confirmed")  # another enterprise
    l1 = _loan(line, o["o5"], "2026-01-12", "2026-04-12", "repaid")
    _repay(l1, "2026-04-10", "32000.00")  # on time
    l2 = _loan(line, o["o3"], "2026-05-16", "2026-08-14", "repaid")
    _repay(l2, "2026-07-02", "24000.00")  # after D: still owed on D
    l3 = _loan(line, o["o9"], "2026-02-02", "2026-05-04", "repaid")
    _repay(l3, "2026-04-30", "12000.00")
    _repay(l3, "2026-05-14", "8000.00")  # settled 10 days late
    l4 = _loan(line, o["o10"], "2026-02-21", "2026-05-22", "overdue")
    _repay(l4, "2026-05-01", "5000.00")  # 7,000 still owed, 39 days past due on D
    _loan(line, o["o4"], "2026-04-11", "2026-07-10", "active")  # financed, then cancelled
    return {"line": line, "idle": idle_line, "program": program}


def _values(frame: Any, line: CreditLine) -> dict[str, float]:
    row = frame.line_ids.index(line.pk)
    return {name: float(frame.matrix[row, j]) for j, name in enumerate(frame.names)}


def test_features_match_hand_computed_figures(small_book: dict[str, Any]) -> None:
    frame = features_as_of(D, program_id=small_book["program"].pk)
    f = _values(frame, small_book["line"])
    months = [30000, 30000, 0, 0, 40000, 40000, 0, 0, 0, 0, 0, 0]  # 30-day months back from D
    expected = {
        "order_count_30": 2,  # o1, o2
        "order_count_90": 3,  # + o3 (o4 is cancelled)
        "order_count_365": 6,  # + o5, o9, o10
        "order_amount_30": 30000,
        "order_amount_90": 60000,
        "order_amount_365": 140000,
        "volume_cv": statistics.pstdev(months) / statistics.mean(months),
        "tenure_days": 486,  # 2025-03-01 to 2026-06-30
        "cancel_rate": 1 / 7,
        "return_rate": 1 / 5,  # o4 was financed, then cancelled
        "financed_share": 115000 / 140000,
        "on_time_ratio": 1 / 3,  # of l1, l3, l4 (due before D): only l1
        "max_dpd": 39,
        "avg_dpd": (0 + 10 + 39) / 3,
        "current_dpd": 39,
        "overdue_principal": 7000,
        "utilisation": (24000 + 7000 + 4000) / 500000,
    }
    assert set(f) == set(FEATURE_NAMES)
    for name, value in expected.items():
        assert f[name] == pytest.approx(value, rel=1e-9), name


def test_features_of_a_line_without_history_are_zero_or_missing(small_book: dict[str, Any]) -> None:
    f = _values(features_as_of(D, program_id=small_book["program"].pk), small_book["idle"])
    zero = ["order_count_30", "order_amount_365", "tenure_days", "current_dpd", "utilisation"]
    missing = [
        "volume_cv",
        "cancel_rate",
        "return_rate",
        "financed_share",
        "on_time_ratio",
        "max_dpd",
    ]
    assert all(f[name] == 0 for name in zero)
    assert all(math.isnan(f[name]) for name in missing)


def test_features_see_only_what_was_known_on_the_date(small_book: dict[str, Any]) -> None:
    """On 10 May l3 is 6 days past due with 8,000 owed, l4 is not due yet, o3 is not ordered."""
    f = _values(features_as_of(dt.date(2026, 5, 10)), small_book["line"])
    assert f["current_dpd"] == 6
    assert f["overdue_principal"] == pytest.approx(8000)
    assert f["max_dpd"] == 6 and f["on_time_ratio"] == pytest.approx(1 / 2)  # l1 and l3 due
    assert f["order_count_30"] == 0 and f["order_count_90"] == 1  # o10 (o4 is cancelled)
    assert f["utilisation"] == pytest.approx((8000 + 7000 + 4000) / 500000)


# --- the scorecard's parts ------------------------------------------------------------------------


def test_grades_follow_the_probability_bands() -> None:
    p = np.array([0.0, 0.0199, 0.02, 0.0499, 0.05, 0.0999, 0.10, 0.1999, 0.20, 0.9])
    assert sc.grades_of(p) == ["A", "A", "B", "B", "C", "C", "D", "D", "E", "E"]
    # 600 points at odds of 50 good to 1 bad; 20 more per doubling of the odds.
    assert list(sc.points_of(np.array([1 / 51, 1 / 101]))) == [600, 620]


def test_bins_are_monotone_and_missing_values_get_their_own_bin() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 100, 4000)
    y = (rng.uniform(0, 1, 4000) < 0.02 + x / 400).astype(np.int64)  # riskier as x grows
    x[:400] = np.nan
    y[:400] = 1  # a missing value is very risky here
    bins = sc.fit_bins(x, y)
    assert 2 <= len(bins.woe) <= sc.MAX_BINS
    assert all(a > b for a, b in zip(bins.woe, bins.woe[1:], strict=False))  # safer to riskier
    assert bins.missing_woe < min(bins.woe)
    assert bins.transform(np.array([np.nan]))[0] == bins.missing_woe
    assert bins.iv > sc.MIN_IV


def test_reasons_name_the_features_that_cost_the_most_first() -> None:
    names = ("a", "b", "c")
    bins = {
        name: sc.Bins(
            edges=(0.5,), woe=(1.0, -1.0), missing_woe=0.0, iv=0.5, counts=((1, 1), (1, 1))
        )
        for name in names
    }
    card = sc.Scorecard(names, bins, (-0.5, -2.0, -1.0), -3.0)
    rows = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 1.0]])
    # Cost of a feature in its worse bin: 2 x |coefficient|.
    assert card.reasons(rows, names) == [["b", "a"], [], ["c", "a"]]
    # coefficient x WoE per feature: x > 0.5 has WoE -1, else +1.
    expected = -3.0 + np.array([0.5 + 2.0 - 1.0, -0.5 - 2.0 - 1.0, 0.5 - 2.0 + 1.0])
    assert np.allclose(card.log_odds(rows, names), expected)


def test_training_needs_enough_history() -> None:
    with pytest.raises(NotEnoughHistory):
        credit_model_train(as_of=D)
    assert not CreditModel.objects.exists()


# --- training on a synthetic history with a known ground truth -----------------------------------


def _cohort(agents: int, seed: int) -> GeneratedHistory:
    program = ProgramFactory(limit=Decimal("500000000.00"))
    return history_generate(
        program=program, agents=agents, today=D, seed=seed, days=540, detail=False
    )


def _oracle_auc(history: GeneratedHistory) -> float:
    """AUC on the hold-out of the generator's true PD: the best any model could do."""
    data = training_set(D)
    holdout, _ = time_split(data)
    lines = dict(Loan.objects.filter(pk__in=data.loan_ids).values_list("pk", "credit_line_id"))
    truth = np.array([history.true_pd[lines[loan]] for loan in data.loan_ids])
    return sc.auc(data.y[holdout], truth[holdout])


def test_trained_model_beats_the_naive_baseline_and_worse_models_are_not_promoted() -> None:
    history = _cohort(agents=300, seed=3)
    model = credit_model_train(as_of=D)
    holdout = model.metrics["holdout"]
    auc, baseline, oracle = holdout["auc"], holdout["baseline"]["auc"], _oracle_auc(history)
    print(
        f"hold-out AUC {auc:.4f}, KS {holdout['ks']:.4f}, baseline {baseline:.4f}, oracle {oracle:.4f}"
    )
    assert model.promoted and model.version == 1
    assert auc >= AUC_FLOOR
    assert auc >= baseline + BASELINE_MARGIN
    assert auc <= oracle + 0.03  # it cannot know more than the truth
    assert holdout["ks"] > 0.25
    calibration = holdout["calibration"]
    assert [row["grade"] for row in calibration] == ["A", "B", "C", "D", "E"]
    assert sum(row["count"] for row in calibration) == holdout["rows"]
    populated = [row for row in calibration if row["count"] >= 50]
    assert populated[-1]["observed"] > 2 * populated[0]["observed"]  # worse grades, more bads
    worse = credit_model_train(as_of=D, features=["cancel_rate", "order_count_30"])
    print(f"worse model: {worse.metrics['holdout']['auc']:.4f}; {worse.refusal_reason}")
    assert worse.version == 2 and not worse.promoted
    assert worse.refusal_reason.startswith("Worse than the promoted model v1 on the same hold-out")
    useless = credit_model_train(as_of=D, features=["tenure_days", "financed_share"])
    assert not useless.promoted and useless.refusal_reason.endswith("is below the floor 0.6.")
    assert CreditModel.objects.get(promoted=True) == model


def test_training_and_scoring_are_deterministic() -> None:
    _cohort(agents=150, seed=5)
    first = credit_model_train(as_of=D)
    second = credit_model_train(as_of=D)
    assert (first.features, first.bins, first.coefficients) == (
        second.features,
        second.bins,
        second.coefficients,
    )
    assert (
        first.intercept == second.intercept
        and first.metrics["holdout"] == second.metrics["holdout"]
    )
    assert second.promoted  # as good as the current one: not worse
    frame = features_as_of(D)
    a, b = (
        score_frame(frame, scorecard_of(first)),
        score_frame(features_as_of(D), scorecard_of(first)),
    )
    assert np.array_equal(a.probability, b.probability)
    assert a.grades == b.grades and a.reasons == b.reasons


def test_commands_train_then_score_every_line() -> None:
    _cohort(agents=150, seed=5)
    out = StringIO()
    call_command("credit_train", "--as-of", D.isoformat(), "--json", stdout=out)
    trained = json.loads(out.getvalue())
    assert trained["version"] == 1 and trained["promoted"] is True
    out = StringIO()
    call_command("credit_score", "--as-of", D.isoformat(), "--json", stdout=out)
    (run,) = json.loads(out.getvalue())
    assert run["lines"] == run["scored"] == 150 == AgentScore.objects.count()
    assert sum(run["grades"].values()) == 150
    stored = {s.credit_line_id: s.grade for s in AgentScore.objects.all()}
    assert stored == dict(CreditLine.objects.values_list("pk", "risk_grade"))


def test_score_command_needs_a_promoted_model() -> None:
    with pytest.raises(CommandError, match="no promoted model"):
        call_command("credit_score", stdout=StringIO())
