"""Reads for credit lines and data-driven credit: the lines a user may see, an agent's grade and
what would raise its line, a line's score history, a program's grade mix, the line-proposal queue
and the stored models.

Who sees what (rows a user may not see are ``None``, so the API answers 404):

- lines: an agent its own, an enterprise admin those in its programs, bank staff all;
- an agent sees its own lines' grades and what would raise them (never the probability, the
  points or the model's internals); an enterprise admin the same for the lines in its programs;
- bank staff see everything: the score, its probability and points, the reason codes, the feature
  values, the history of scores, proposals and line changes, the queue and the models;
- the grade mix of a program is for bank staff and the program's own enterprise admin.

Each read is a fixed number of queries whatever the history's length (grouped aggregates, one
query per list, ``select_related`` for what a row shows).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from orders.models import Role, User

from ..models import (
    AgentScore,
    AuditLog,
    CreditLine,
    CreditModel,
    LineProposal,
    Program,
    ProposalStatus,
)
from ..scoring.features import BY_NAME
from ..scoring.scorecard import GRADES
from ..services.line_formula import Policy, line_per_monthly_volume, volume_line
from .audit import object_audit
from .ledger import MONEY, ZERO
from .programs import dashboard_programs
from .scope import scope_for

EXTRA_MONTHLY_VOLUME = Decimal("10000.00")
HISTORY_LENGTH = 90


@dataclass(frozen=True)
class Action:
    """Something the agent can do about a reason its score gives."""

    code: str
    detail: str
    hint: str
    value: str | None


@dataclass(frozen=True)
class Outlook:
    """What the line formula gives now, at the next grade, and per extra monthly orders."""

    volume_90: Decimal
    line_at_grade: Decimal
    next_grade: str | None
    line_at_next_grade: Decimal | None
    extra_monthly_volume: Decimal
    line_per_extra_volume: Decimal
    min_line: Decimal
    max_line: Decimal


@dataclass(frozen=True)
class AgentCredit:
    line: CreditLine
    score: AgentScore | None
    outlook: Outlook | None
    actions: list[Action]
    pending: LineProposal | None


def credit_lines_visible_to(user: User) -> QuerySet[CreditLine]:
    """Lines a user may see: an agent its own, an enterprise admin those in its programs, bank
    staff their bank's."""
    if getattr(user, "is_bank_staff", False):
        return scope_for(user, CreditLine.objects.all(), "program__bank")
    role = getattr(user, "role", None)
    if role == Role.ENTERPRISE_ADMIN:
        return CreditLine.objects.filter(program__enterprise_id=user.enterprise_id)
    if role == Role.AGENT and user.agent_id is not None:
        return CreditLine.objects.filter(agent_id=user.agent_id)
    return CreditLine.objects.none()


def credit_line_for_agent(
    *, user: User, agent_id: int, program_id: int | None = None
) -> CreditLine | None:
    """The agent's line in ``program_id``, or in its first program (lowest id) the user may see."""
    lines = credit_lines_visible_to(user).filter(agent_id=agent_id)
    if program_id is not None:
        lines = lines.filter(program_id=program_id)
    return lines.select_related("agent", "program").order_by("program_id").first()


def credit_line_list(*, user: User) -> list[CreditLine]:
    """The lines ``user`` may see with their programs, by program."""
    return list(credit_lines_visible_to(user).select_related("program").order_by("program_id"))


def _latest_score(line: CreditLine) -> AgentScore | None:
    return (
        AgentScore.objects.filter(credit_line=line)
        .select_related("model")
        .order_by("-as_of", "-id")
        .first()
    )


def _next_grade(grade: str) -> str | None:
    index = GRADES.index(grade) if grade in GRADES else 0
    return GRADES[index - 1] if index > 0 else None


def _outlook(line: CreditLine, score: AgentScore) -> Outlook:
    program, policy = line.program, Policy.of(line.program)
    volume = Decimal(score.features.get("order_amount_90") or "0")
    better = _next_grade(line.risk_grade)

    def at(grade: str) -> Decimal:
        return volume_line(
            volume_90=volume,
            grade=grade,
            advance_rate=program.advance_rate,
            tenor_days=program.tenor_days,
            program_limit=program.limit,
            policy=policy,
        )

    return Outlook(
        volume_90=volume,
        line_at_grade=at(line.risk_grade),
        next_grade=better,
        line_at_next_grade=at(better) if better else None,
        extra_monthly_volume=EXTRA_MONTHLY_VOLUME,
        line_per_extra_volume=line_per_monthly_volume(
            amount=EXTRA_MONTHLY_VOLUME,
            grade=line.risk_grade,
            advance_rate=program.advance_rate,
            tenor_days=program.tenor_days,
        ),
        min_line=policy.min_line,
        max_line=min(policy.max_line, program.limit),
    )


def _actions(score: AgentScore) -> list[Action]:
    actions = []
    for reason in score.reasons:
        feature = BY_NAME.get(reason.get("feature", ""))
        if feature is not None:
            actions.append(
                Action(feature.reason_code, feature.reason, feature.hint, reason.get("value"))
            )
    return actions


def agent_credit(*, user: User, agent_id: int, program_id: int | None = None) -> AgentCredit | None:
    """An agent's grade on a line, the latest score, what would raise the line, any pending raise."""
    line = credit_line_for_agent(user=user, agent_id=agent_id, program_id=program_id)
    if line is None:
        return None
    score = _latest_score(line)
    pending = LineProposal.objects.filter(
        credit_line=line, status=ProposalStatus.AWAITING_APPROVAL
    ).first()
    return AgentCredit(
        line=line,
        score=score,
        outlook=_outlook(line, score) if score is not None else None,
        actions=_actions(score) if score is not None else [],
        pending=pending,
    )


@dataclass(frozen=True)
class CreditHistory:
    line: CreditLine
    scores: list[AgentScore]
    proposals: list[LineProposal]
    changes: list[AuditLog]


def credit_history(
    *, user: User, agent_id: int, program_id: int | None = None, length: int = HISTORY_LENGTH
) -> CreditHistory | None:
    """Bank staff only: a line's latest scores, proposals and audited changes, newest first."""
    if not getattr(user, "is_bank_staff", False):
        return None
    line = credit_line_for_agent(user=user, agent_id=agent_id, program_id=program_id)
    if line is None:
        return None
    scores = AgentScore.objects.filter(credit_line=line).order_by("-as_of", "-id")[:length]
    proposals = (
        LineProposal.objects.filter(credit_line=line)
        .select_related("first_approver", "second_approver", "decided_by")
        .order_by("-created_at", "-id")[:length]
    )
    changes = object_audit(obj=line).order_by("-created_at", "-id")[:length]
    return CreditHistory(line, list(scores), list(proposals), list(changes))


@dataclass(frozen=True)
class GradeRow:
    grade: str
    lines: int
    limit: Decimal
    outstanding: Decimal
    share: Decimal  # of the program's lines


@dataclass(frozen=True)
class GradeMix:
    program: Program
    as_of: dt.date | None
    model_version: int | None
    lines: int
    grades: list[GradeRow]


def program_grade_mix(*, user: User, program_id: int) -> GradeMix | None:
    """Lines per current grade with their limits and outstanding, and the latest scoring run."""
    program = dashboard_programs(user).filter(pk=program_id).first()
    if program is None:
        return None
    zero = Value(ZERO, output_field=MONEY)
    rows = {
        row["risk_grade"]: row
        for row in CreditLine.objects.filter(program=program)
        .values("risk_grade")
        .annotate(
            n=Count("pk"),
            total=Coalesce(Sum("limit"), zero),
            used=Coalesce(Sum("outstanding_principal"), zero),
        )
        .order_by()
    }
    count = sum(row["n"] for row in rows.values())
    grades = [
        GradeRow(
            grade=grade,
            lines=rows.get(grade, {}).get("n", 0),
            limit=rows.get(grade, {}).get("total", ZERO),
            outstanding=rows.get(grade, {}).get("used", ZERO),
            share=(Decimal(rows.get(grade, {}).get("n", 0)) / count).quantize(Decimal("0.0001"))
            if count
            else Decimal("0.0000"),
        )
        for grade in GRADES
    ]
    latest = AgentScore.objects.filter(program=program).order_by("-as_of", "-id").first()
    return GradeMix(
        program=program,
        as_of=latest.as_of if latest else None,
        model_version=latest.model_version if latest else None,
        lines=count,
        grades=grades,
    )


PROPOSAL_RELATED = (
    "agent",
    "program",
    "credit_line",
    "score",
    "first_approver",
    "second_approver",
    "decided_by",
)


def _proposals(user: User) -> QuerySet[LineProposal]:
    return scope_for(user, LineProposal.objects.select_related(*PROPOSAL_RELATED), "program__bank")


def line_proposal_queue(*, user: User, status: str | None = None) -> QuerySet[LineProposal]:
    """The user's bank's proposals oldest first: those awaiting approval by default, or those
    in ``status``."""
    status = status or ProposalStatus.AWAITING_APPROVAL
    return _proposals(user).filter(status=status).order_by("created_at", "id")


def line_proposal_get(*, user: User, proposal_id: int) -> LineProposal | None:
    """One of the user's bank's proposals, or ``None``."""
    return _proposals(user).filter(pk=proposal_id).first()


def credit_model_list() -> QuerySet[CreditModel]:
    return CreditModel.objects.order_by("-version")
