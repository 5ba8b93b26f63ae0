"""Line management: the formula, caps and step limits; the nightly run (grades, automatic changes,
the approval queue, frozen lines, audit, idempotency); maker-checker approval; the API."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

import pytest
from django.urls import include, path

from integrations.demo.history import history_generate
from lending.apis import credit
from lending.models import (
    AgentScore,
    AuditLog,
    CreditLine,
    CreditModel,
    CreditPolicy,
    LineProposal,
    ProposalStatus,
)
from lending.services.book_check import book_check
from lending.services.finance import loan_quote
from lending.services.line_formula import LineFacts, Policy, line_target
from lending.services.line_management import credit_nightly
from lending.services.line_proposals import line_proposal_approve
from lending.services.lines import credit_line_freeze, credit_line_update
from scf import clock
from scf.errors import ApplicationError
from tests.conftest import client_for
from tests.lending.factories import CreditLineFactory, ProgramFactory
from tests.orders.factories import AgentFactory, EnterpriseFactory, OrderFactory, UserFactory

# The credit endpoints, mounted as lending/urls.py will mount them.
urlpatterns = [path("api/v1/", include(credit.urlpatterns))]
pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

D = dt.date(2026, 6, 30)
K = Decimal(1000)


# --- the formula ----------------------------------------------------------------------------------


def facts(
    limit: int, volume: int, grade: str = "B", used: int = 0, program: int = 10**9
) -> LineFacts:
    """Amounts in thousands; terms: advance rate 0.8, 90-day tenor (need = volume x 0.8)."""
    return LineFacts(
        current_limit=limit * K,
        utilisation=used * K,
        volume_90=volume * K,
        grade=grade,
        advance_rate=Decimal("0.8"),
        tenor_days=90,
        program_limit=program * K,
    )


POLICY = Policy(
    min_line=100 * K,
    max_line=2000 * K,
    max_step_up=Decimal("0.5"),
    max_step_down=Decimal("0.3"),
    min_change=Decimal("0.05"),
    rounding=10 * K,
    auto_increase_max=50 * K,
)


def codes(target: Any) -> list[str]:
    return [r["code"] for r in target.reasons]


@pytest.mark.parametrize(
    ("line", "proposed", "reasons", "approval"),
    [
        # 330k of orders in 90 days: 110k a month x 0.8 x 3 months = 264k; x 0.85 (B) = 224.4k.
        (facts(200, 330), 220, ["volume_and_grade"], False),
        # Grade A takes the whole need, E a quarter.
        (facts(200, 330, "A"), 260, ["volume_and_grade"], True),
        (facts(200, 330, "E"), 140, ["volume_and_grade", "step_limit_down"], False),
        # 612k is wanted, but a night raises a line by 50 % at most: 300k, an increase of 100k.
        (facts(200, 900), 300, ["volume_and_grade", "step_limit_up"], True),
        # ... and cuts it by 30 % at most.
        (facts(1000, 90, "C"), 700, ["volume_and_grade", "step_limit_down"], False),
        # Caps: the policy's max line, the program's limit, the min line.
        (facts(1900, 3000), 2000, ["volume_and_grade", "capped_at_max_line"], True),
        (
            facts(400, 3000, program=450),
            450,
            ["volume_and_grade", "step_limit_up", "capped_at_max_line"],
            False,
        ),
        (facts(120, 10), 100, ["volume_and_grade", "step_limit_down", "raised_to_min_line"], False),
        # Never below what is used: the cut stops at outstanding + reserved.
        (
            facts(600, 150, used=450),
            450,
            ["volume_and_grade", "step_limit_down", "kept_at_utilisation"],
            False,
        ),
    ],
)
def test_proposals_follow_the_formula_caps_and_step_limits(
    line: LineFacts, proposed: int, reasons: list[str], approval: bool
) -> None:
    target = line_target(line, POLICY)
    assert target.proposed == proposed * K
    assert target.change == proposed * K - line.current_limit
    assert codes(target) == reasons
    assert target.needs_approval is approval


def test_small_changes_are_not_made() -> None:
    # 300k of orders at B: 204k -> 200k, no change; at C 168k -> 160k, 40k down: made.
    unchanged = line_target(facts(200, 300), POLICY)
    assert unchanged.proposed == 200 * K and not unchanged.changes
    assert codes(unchanged)[-1] == "within_dead_band"
    assert line_target(facts(200, 300, "C"), POLICY).proposed == 160 * K
    # A 5 % dead band on a large line: 1,000k -> 1,040k is under 50k, not made.
    assert not line_target(facts(1000, 1300, "A"), POLICY).changes


def test_a_line_at_zero_may_grow_to_the_minimum() -> None:
    target = line_target(facts(0, 330), POLICY)
    assert target.proposed == 100 * K and codes(target) == ["volume_and_grade", "step_limit_up"]


# --- the nightly run ------------------------------------------------------------------------------


def constant_model(probability: float, version: int = 1) -> CreditModel:
    """A promoted model without features: every line gets ``probability``."""
    CreditModel.objects.filter(promoted=True).update(promoted=False)
    return CreditModel.objects.create(
        version=version,
        trained_at=clock.now(),
        as_of=D,
        features=[],
        bins={},
        coefficients={},
        intercept=math.log(probability / (1 - probability)),
        auc=Decimal("0.5000"),
        ks=Decimal("0.0000"),
        promoted=True,
        promoted_at=clock.now(),
        trained_by="test",
    )


@pytest.fixture
def program() -> Any:
    program = ProgramFactory(enterprise=EnterpriseFactory(), limit=Decimal("100000000.00"))
    CreditPolicy.objects.create(
        program=program,
        min_line=100 * K,
        max_line=2000 * K,
        max_step_up=Decimal("0.5"),
        max_step_down=Decimal("0.3"),
        rounding=10 * K,
        auto_increase_max=50 * K,
    )
    return program


def line_with(
    program: Any, *, volume: int, limit: int, used: int = 0, frozen: bool = False
) -> CreditLine:
    """A C-graded line whose agent ordered ``volume`` thousand ten days before D."""
    agent = AgentFactory(enterprises=[program.enterprise])
    line = CreditLineFactory(agent=agent, program=program, limit=limit * K, risk_grade="C")
    OrderFactory(
        agent=agent,
        enterprise=program.enterprise,
        amount=volume * K,
        order_date=D - dt.timedelta(days=10),
        status="delivered",
    )
    CreditLine.objects.filter(pk=line.pk).update(outstanding_principal=used * K)
    if frozen:
        credit_line_freeze(actor=None, line=line, reason="Under investigation.")
    return line


@pytest.fixture
def lines(program: Any) -> dict[str, CreditLine]:
    """At grade B: a small raise, a cut stopped by utilisation, a large raise, a frozen line and
    one that stays."""
    return {
        "small_raise": line_with(program, volume=330, limit=200),
        "cut": line_with(program, volume=150, limit=600, used=450),
        "large_raise": line_with(program, volume=900, limit=200),
        "frozen": line_with(program, volume=900, limit=200, frozen=True),
        "same": line_with(program, volume=300, limit=200),
    }


def state(line: CreditLine) -> tuple[Decimal, str]:
    line.refresh_from_db()
    return line.limit, line.risk_grade


def test_nightly_applies_cuts_and_small_raises_and_queues_large_raises(
    lines: dict[str, Any],
) -> None:
    constant_model(0.03)  # grade B
    (run,) = credit_nightly(as_of=D)
    assert (run.scored, run.regraded, run.increased, run.decreased, run.queued, run.frozen) == (
        5,
        4,
        1,
        1,
        1,
        1,
    )
    assert state(lines["small_raise"]) == (220 * K, "B")
    assert state(lines["cut"]) == (450 * K, "B")  # wanted 420k, 450k is in use
    assert state(lines["large_raise"]) == (200 * K, "B")  # waits for approval
    assert state(lines["frozen"]) == (200 * K, "C")  # frozen: unchanged
    assert state(lines["same"]) == (200 * K, "B")
    proposals = {p.credit_line_id: p for p in LineProposal.objects.all()}
    assert set(proposals) == {lines[k].pk for k in ("small_raise", "cut", "large_raise")}
    assert proposals[lines["small_raise"].pk].status == ProposalStatus.APPLIED
    cut = proposals[lines["cut"].pk]
    assert (cut.status, cut.proposed_limit, cut.utilisation) == ("applied", 450 * K, 450 * K)
    assert codes(cut) == ["volume_and_grade", "step_limit_down", "kept_at_utilisation"]
    assert cut.inputs["target"] == "100000.00" and cut.inputs["multiplier"] == "0.85"
    large = proposals[lines["large_raise"].pk]
    assert (large.status, large.proposed_limit) == ("awaiting_approval", 300 * K)
    assert AgentScore.objects.count() == 5  # the frozen line is scored, not changed


def test_every_change_is_audited_with_its_reasons(lines: dict[str, Any]) -> None:
    constant_model(0.03)
    credit_nightly(as_of=D)
    audits = {
        int(a.object_id): a
        for a in AuditLog.objects.filter(action="credit_line.update", actor_label="system")
    }
    assert set(audits) == {lines[k].pk for k in ("small_raise", "cut", "large_raise", "same")}
    cut = audits[lines["cut"].pk]
    assert cut.before == {"risk_grade": "C", "limit": "600000.00"}
    assert cut.after == {"risk_grade": "B", "limit": "450000.00"}
    assert "model v1" in cut.note and "kept_at_utilisation" in cut.note
    assert audits[lines["same"].pk].after == {"risk_grade": "B"}
    queued = AuditLog.objects.get(action="line_proposal.queue")
    assert queued.after["proposed"] == "300000.00" and "step_limit_up" in queued.note


def test_running_the_night_twice_changes_nothing_more(lines: dict[str, Any]) -> None:
    constant_model(0.03)
    credit_nightly(as_of=D)
    counts = (LineProposal.objects.count(), AuditLog.objects.count(), AgentScore.objects.count())
    (again,) = credit_nightly(as_of=D)
    assert (again.scored, again.already_scored) == (0, 5)
    assert (
        LineProposal.objects.count(),
        AuditLog.objects.count(),
        AgentScore.objects.count(),
    ) == counts


def test_the_next_night_keeps_a_waiting_raise_or_supersedes_it(lines: dict[str, Any]) -> None:
    constant_model(0.03)
    credit_nightly(as_of=D)
    waiting = LineProposal.objects.get(status=ProposalStatus.AWAITING_APPROVAL)
    credit_nightly(as_of=D + dt.timedelta(days=1))  # the same raise again: the same case
    assert LineProposal.objects.get(status=ProposalStatus.AWAITING_APPROVAL) == waiting
    constant_model(0.5, version=2)  # grade E: a quarter of the need, the line is cut
    credit_nightly(as_of=D + dt.timedelta(days=2))
    waiting.refresh_from_db()
    assert waiting.status == ProposalStatus.SUPERSEDED
    assert state(lines["large_raise"]) == (180 * K, "E")


def test_a_dry_run_only_records_what_it_would_do(lines: dict[str, Any]) -> None:
    constant_model(0.03)
    (run,) = credit_nightly(as_of=D, dry_run=True)
    assert run.dry_run and run.increased == 2 and run.decreased == 1
    assert set(LineProposal.objects.values_list("status", flat=True)) == {"proposed"}
    assert all(state(line) == (line.limit, "C") for line in lines.values())
    assert not AgentScore.objects.exists()
    assert not AuditLog.objects.filter(action="credit_line.update", actor_label="system").exists()


def test_nothing_happens_without_a_promoted_model(lines: dict[str, Any]) -> None:
    assert credit_nightly(as_of=D) == []
    assert not LineProposal.objects.exists() and not AgentScore.objects.exists()


def test_the_decision_engine_uses_the_current_grade(program: Any) -> None:
    line = line_with(program, volume=300, limit=200)
    user = UserFactory(role="agent", agent=line.agent)
    order = OrderFactory(
        agent=line.agent, enterprise=program.enterprise, amount=Decimal("10000.00")
    )
    assert loan_quote(user=user, order_id=order.pk).decision.outcome == "approved"  # grade C
    constant_model(0.15)  # grade D, below the program's auto-approve grade C
    credit_nightly(as_of=D)
    quote = loan_quote(user=user, order_id=order.pk)
    assert quote.decision.outcome == "in_review"
    assert [r["code"] for r in quote.decision.reasons] == ["grade_below_auto_approve"]


# --- maker-checker on large raises ----------------------------------------------------------------


@pytest.fixture
def staff() -> dict[str, Any]:
    return {
        "reviewer": UserFactory(role="risk_reviewer"),
        "reviewer2": UserFactory(role="risk_reviewer"),
        "approver": UserFactory(role="risk_approver"),
    }


@pytest.fixture
def waiting(lines: dict[str, Any]) -> LineProposal:
    constant_model(0.03)
    credit_nightly(as_of=D)
    return LineProposal.objects.get(status=ProposalStatus.AWAITING_APPROVAL)


def approve(user: Any, proposal: LineProposal, note: str = "") -> Any:
    url = f"/api/v1/line-proposals/{proposal.pk}/approve/"
    return client_for(user).post(url, {"note": note}, format="json")


def test_a_large_raise_is_applied_after_two_people_approve(
    waiting: LineProposal, staff: dict[str, Any], lines: dict[str, Any]
) -> None:
    first = approve(staff["reviewer"], waiting, "Volumes checked with the enterprise.")
    assert first.status_code == 200, first.data
    assert (first.data["status"], first.data["first_approver"]) == (
        "awaiting_approval",
        staff["reviewer"].username,
    )
    assert state(lines["large_raise"])[0] == 200 * K  # not yet
    assert approve(staff["reviewer"], waiting).data["code"] == "maker_checker_same_user"
    assert approve(staff["reviewer2"], waiting).data["code"] == "approver_role_required"
    second = approve(staff["approver"], waiting)
    assert second.status_code == 200, second.data
    assert second.data["status"] == "approved" and second.data["applied_at"] is not None
    assert state(lines["large_raise"])[0] == 300 * K
    change = AuditLog.objects.filter(
        action="credit_line.update", object_id=str(lines["large_raise"].pk), actor__isnull=False
    ).get()
    assert (change.actor, change.before, change.after) == (
        staff["approver"],
        {"limit": "200000.00"},
        {"limit": "300000.00"},
    )
    actions = AuditLog.objects.filter(object_id=str(waiting.pk), object_type="lending.lineproposal")
    assert {a.action for a in actions} == {
        "line_proposal.queue",
        "line_proposal.first_approval",
        "line_proposal.approve",
    }
    assert approve(staff["approver"], waiting).data["code"] == "proposal_closed"


def test_a_rejected_raise_leaves_the_line_alone(
    waiting: LineProposal, staff: dict[str, Any], lines: dict[str, Any]
) -> None:
    client = client_for(staff["reviewer"])
    url = f"/api/v1/line-proposals/{waiting.pk}/reject/"
    assert client.post(url, {}, format="json").status_code == 422
    reply = client.post(url, {"reason": "Volumes look seasonal."}, format="json")
    assert reply.status_code == 200 and reply.data["status"] == "rejected"
    assert state(lines["large_raise"])[0] == 200 * K
    assert AuditLog.objects.filter(
        action="line_proposal.reject", note="Volumes look seasonal."
    ).exists()


def test_the_second_approval_is_refused_when_the_line_changed_or_froze(
    waiting: LineProposal, staff: dict[str, Any], lines: dict[str, Any]
) -> None:
    line = lines["large_raise"]
    line_proposal_approve(user=staff["reviewer"], proposal_id=waiting.pk)
    credit_line_update(actor=staff["approver"], line=line, limit=250 * K)
    with pytest.raises(ApplicationError) as stale:
        line_proposal_approve(user=staff["approver"], proposal_id=waiting.pk)
    assert stale.value.code == "proposal_stale"
    credit_line_update(actor=staff["approver"], line=line, limit=200 * K)
    credit_line_freeze(actor=staff["approver"], line=line, reason="Fraud alert.")
    assert approve(staff["approver"], waiting).data["code"] == "line_frozen"
    assert state(line)[0] == 200 * K


def test_only_risk_staff_work_the_queue(waiting: LineProposal, staff: dict[str, Any]) -> None:
    ops = UserFactory(role="ops_admin")
    assert client_for(ops).get("/api/v1/line-proposals/").data["count"] == 1
    assert approve(ops, waiting).status_code == 403
    agent_user = UserFactory(role="agent", agent=waiting.agent)
    assert client_for(agent_user).get("/api/v1/line-proposals/").status_code == 403
    listed = client_for(staff["reviewer"]).get("/api/v1/line-proposals/?status=applied")
    assert listed.data["count"] == 2


# --- what people see ------------------------------------------------------------------------------


def recent_orders_model() -> CreditModel:
    """One feature: fewer than 3 orders in 30 days is risky (WoE -1), else safe (+1)."""
    model = constant_model(0.03)
    model.features = ["order_count_30"]
    model.bins = {
        "order_count_30": {
            "edges": [2.0],
            "woe": [-1.0, 1.0],
            "missing_woe": 0.0,
            "iv": 0.3,
            "counts": [[10, 5], [30, 2]],
        }
    }
    model.coefficients = {"order_count_30": -1.0}
    model.save()
    return model


def test_the_agent_sees_its_grade_and_what_would_raise_its_line(program: Any) -> None:
    line = line_with(program, volume=330, limit=200)
    recent_orders_model()  # one order in 30 days: p = sigmoid(logit(0.03) + 1) = 7.76 %: C
    credit_nightly(as_of=D)
    user = UserFactory(role="agent", agent=line.agent)
    reply = client_for(user).get(f"/api/v1/agents/{line.agent_id}/credit/")
    assert reply.status_code == 200, reply.data
    data = reply.data
    assert (data["grade"], data["score"], data["scored_on"]) == ("C", None, D.isoformat())
    assert data["outlook"] == {
        "volume_90": "330000.00",
        "line_at_grade": "180000.00",  # 264k x 0.70
        "next_grade": "B",
        "line_at_next_grade": "220000.00",  # 264k x 0.85
        "extra_monthly_volume": "10000.00",
        "line_per_extra_volume": "16800.00",  # 10k x 0.8 x 3 x 0.70
        "min_line": "100000.00",
        "max_line": "2000000.00",
    }
    assert [a["code"] for a in data["actions"]] == ["few_recent_orders"]
    assert data["actions"][0]["hint"] == "Keep ordering every month."
    other = line_with(program, volume=100, limit=200)
    assert client_for(user).get(f"/api/v1/agents/{other.agent_id}/credit/").status_code == 404


def test_risk_staff_see_the_score_its_reasons_and_history(program: Any) -> None:
    line = line_with(program, volume=330, limit=200)
    recent_orders_model()
    credit_nightly(as_of=D)
    reviewer = UserFactory(role="risk_reviewer")
    score = client_for(reviewer).get(f"/api/v1/agents/{line.agent_id}/credit/").data["score"]
    probability = 1 / (1 + math.exp(-(math.log(0.03 / 0.97) + 1.0)))  # one risky bin
    assert (score["grade"], score["model_version"]) == ("C", 1)
    assert score["probability"] == f"{probability:.6f}"
    assert (
        score["reasons"][0]["code"] == "few_recent_orders" and score["reasons"][0]["value"] == "1"
    )
    assert score["features"]["order_amount_90"] == "330000.00"
    history = client_for(reviewer).get(f"/api/v1/agents/{line.agent_id}/credit/history/").data
    assert len(history["scores"]) == 1 and history["grade"] == "C"
    assert [c["action"] for c in history["changes"]] == ["credit_line.update"]
    # Already C: only the limit moved, from 200k to 264k x 0.70 = 180k.
    assert history["changes"][0]["after"] == {"limit": "180000.00"}
    agent_user = UserFactory(role="agent", agent=line.agent)
    assert (
        client_for(agent_user).get(f"/api/v1/agents/{line.agent_id}/credit/history/").status_code
        == 403
    )


def test_the_program_grade_mix_is_for_its_enterprise_and_the_bank(
    lines: dict[str, Any], program: Any
) -> None:
    constant_model(0.03)
    credit_nightly(as_of=D)
    admin = UserFactory(role="enterprise_admin", enterprise=program.enterprise)
    mix = client_for(admin).get(f"/api/v1/programs/{program.pk}/grade-mix/").data
    assert (mix["lines"], mix["as_of"], mix["model_version"]) == (5, D.isoformat(), 1)
    grades = {row["grade"]: row for row in mix["grades"]}
    assert (grades["B"]["lines"], grades["C"]["lines"], grades["A"]["lines"]) == (4, 1, 0)
    assert grades["B"]["share"] == "0.8000" and grades["C"]["limit"] == "200000.00"
    stranger = UserFactory(role="enterprise_admin", enterprise=EnterpriseFactory())
    assert client_for(stranger).get(f"/api/v1/programs/{program.pk}/grade-mix/").status_code == 404
    agent_user = UserFactory(role="agent", agent=lines["same"].agent)
    assert (
        client_for(agent_user).get(f"/api/v1/programs/{program.pk}/grade-mix/").status_code == 404
    )


def test_a_generated_history_agrees_with_the_ledger(program: Any) -> None:
    """The demo's synthetic past keeps the book consistent: ``ledger_check`` finds nothing."""
    history = history_generate(program=program, agents=20, today=D, seed=1, days=200)
    assert history.loans > 0 and history.open_principal > 0
    assert book_check() == []


def test_the_nightly_task_scores_every_active_program(lines: dict[str, Any]) -> None:
    from lending.tasks_credit import nightly_credit

    constant_model(0.03)
    summary = nightly_credit.apply().get()
    assert (summary["programs"], summary["scored"], summary["regraded"]) == (1, 5, 4)
    changed = summary["raised"] + summary["cut"] + summary["queued"]
    assert changed == LineProposal.objects.count()
    program = lines["same"].program
    yesterday = clock.business_date(program.time_zone) - dt.timedelta(days=1)
    assert set(AgentScore.objects.values_list("as_of", flat=True)) == {yesterday}
