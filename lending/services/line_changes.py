"""One chunk of the nightly credit run, written set-based (``lending.services.line_management``).

The chunk's lines are already locked. Scores, proposals and audit rows go in with ``COPY``
(``lending.scoring.bulk``); grades and limits with one ``UPDATE ... FROM (VALUES ...)`` per 1,000
lines; older proposals of the same lines are superseded in one statement.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import connection

from ..models import (
    PROPOSAL_OPEN,
    AgentScore,
    AuditLog,
    CreditLine,
    CreditModel,
    LineProposal,
    Program,
    ProposalStatus,
)
from ..scoring.bulk import BulkRows, reserve_ids
from ..scoring.features import BY_NAME, FeatureFrame
from ..scoring.scores import Scores, reason_entries
from .audit import SYSTEM
from .line_formula import Policy, Target


@dataclass
class RunResult:
    program_id: int
    as_of: dt.date
    model_version: int | None
    dry_run: bool = False
    lines: int = 0
    scored: int = 0
    already_scored: int = 0
    regraded: int = 0
    increased: int = 0
    decreased: int = 0
    queued: int = 0
    frozen: int = 0
    grades: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class Run:
    program: Program
    as_of: dt.date
    model: CreditModel
    frame: FeatureFrame
    scores: Scores
    policy: Policy
    result: RunResult
    now: dt.datetime


@dataclass
class Change:
    line_id: int
    agent_id: int
    row: int
    old_limit: Decimal
    before: dict[str, str] = field(default_factory=dict)
    after: dict[str, str] = field(default_factory=dict)
    target: Target | None = None


def scores_write(run: Run, rows: Sequence[int]) -> dict[int, int]:
    """Store the rows' scores (``COPY`` on PostgreSQL); returns their ids by line."""
    frame, scores, context = run.frame, run.scores, run.frame.context
    bulk, ids = BulkRows(AgentScore), reserve_ids(AgentScore, len(rows))
    by_line = {}
    for i, score_id, values in zip(rows, ids, frame.stored(rows), strict=True):
        by_line[context["line_id"][i]] = score_id
        bulk.add(
            id=score_id,
            credit_line_id=context["line_id"][i],
            agent_id=context["agent_id"][i],
            program_id=run.program.pk,
            model_id=run.model.pk,
            model_version=run.model.version,
            as_of=run.as_of,
            probability=Decimal(f"{scores.probability[i]:.6f}"),
            points=int(scores.points[i]),
            grade=scores.grades[i],
            reasons=reason_entries(scores.reasons[i], values),
            features=values,
            created_at=run.now,
        )
    bulk.write()
    return by_line


def _update_lines(column: str, pairs: list[tuple[int, Any]], now: dt.datetime) -> None:
    """Set ``column`` per line in one ``UPDATE ... FROM (VALUES ...)`` per 1,000 lines."""
    qn = connection.ops.quote_name
    stamp = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        for start in range(0, len(pairs), 1000):
            chunk = pairs[start : start + 1000]
            values = ", ".join(["(%s, %s)"] * len(chunk))
            sql = (
                f"UPDATE lending_creditline SET {qn(column)} = v.column2, updated_at = %s "  # noqa: S608 - column from code
                f"FROM (VALUES {values}) AS v WHERE lending_creditline.id = v.column1"
            )
            cursor.execute(sql, [stamp, *(value for pair in chunk for value in pair)])


def _proposals(run: Run, changes: list[Change], status: str, scores: dict[int, int]) -> list[int]:
    """Write a proposal per change; returns their ids."""
    changes = [c for c in changes if c.target is not None]
    bulk, ids = BulkRows(LineProposal), reserve_ids(LineProposal, len(changes))
    for change, proposal_id in zip(changes, ids, strict=True):
        target = change.target
        if target is None:
            continue
        bulk.add(
            id=proposal_id,
            credit_line_id=change.line_id,
            agent_id=change.agent_id,
            program_id=run.program.pk,
            score_id=scores.get(change.line_id),
            as_of=run.as_of,
            grade=run.scores.grades[change.row],
            current_limit=change.old_limit,
            proposed_limit=target.proposed,
            utilisation=Decimal(target.inputs["utilisation"]),
            inputs=target.inputs,
            reasons=target.reasons,
            status=status,
            applied_at=run.now if status == ProposalStatus.APPLIED else None,
            created_at=run.now,
        )
    bulk.write()
    return ids


def _supersede(run: Run, line_ids: list[int], keep: set[int]) -> None:
    LineProposal.objects.filter(credit_line_id__in=line_ids, status__in=PROPOSAL_OPEN).exclude(
        pk__in=keep
    ).update(status=ProposalStatus.SUPERSEDED, decided_at=run.now)


def _still_waiting(changes: list[Change]) -> dict[int, int]:
    """Lines whose waiting proposal asks for the very limit proposed again: line -> proposal."""
    wanted = {c.line_id: c.target.proposed for c in changes if c.target and c.target.needs_approval}
    waiting = LineProposal.objects.filter(
        credit_line_id__in=list(wanted), status=ProposalStatus.AWAITING_APPROVAL
    ).values_list("credit_line_id", "pk", "proposed_limit")
    return {line: pk for line, pk, limit in waiting if limit == wanted[line]}


def _note(run: Run, change: Change) -> str:
    i = change.row
    reasons = ", ".join(BY_NAME[f].reason_code for f in run.scores.reasons[i]) or "none"
    parts = [
        f"Nightly credit review as of {run.as_of.isoformat()}, model v{run.model.version}: "
        f"grade {run.scores.grades[i]} (probability {run.scores.probability[i]:.4f}; reasons: {reasons})."
    ]
    if change.target is not None and "limit" in change.after:
        parts.append(
            "Limit: " + "; ".join(f"{r['code']}: {r['detail']}" for r in change.target.reasons)
        )
    return " ".join(parts)


def _audit(run: Run, changes: list[Change], queued: list[tuple[Change, int]]) -> None:
    """One audit row per line changed, one per proposal queued (written with ``COPY``)."""
    bulk = BulkRows(AuditLog, with_pk=False)
    system = {"actor_id": None, "actor_label": SYSTEM, "created_at": run.now}
    for change in changes:
        if change.after:
            bulk.add(
                **system,
                action="credit_line.update",
                object_type=CreditLine._meta.label_lower,
                object_id=str(change.line_id),
                before=change.before,
                after=change.after,
                note=_note(run, change),
            )
    for change, proposal_id in queued:
        target = change.target
        if target is None:
            continue
        bulk.add(
            **system,
            action="line_proposal.queue",
            object_type=LineProposal._meta.label_lower,
            object_id=str(proposal_id),
            after={
                "line": change.line_id,
                "current": f"{change.old_limit:.2f}",
                "proposed": f"{target.proposed:.2f}",
            },
            note="; ".join(f"{r['code']}: {r['detail']}" for r in target.reasons),
        )
    bulk.write()


def changes_apply(run: Run, changes: list[Change], scores: dict[int, int]) -> None:
    """Supersede older proposals, set grades and automatic limits, queue large increases."""
    keep = _still_waiting(changes)
    _supersede(run, [c.line_id for c in changes], set(keep.values()))
    auto = [c for c in changes if c.target is not None and not c.target.needs_approval]
    queued = [
        c
        for c in changes
        if c.target is not None and c.target.needs_approval and c.line_id not in keep
    ]
    for c in auto:
        if c.target is not None:
            c.before["limit"], c.after["limit"] = f"{c.old_limit:.2f}", f"{c.target.proposed:.2f}"
    grades = [(c.line_id, c.after["risk_grade"]) for c in changes if "risk_grade" in c.after]
    _update_lines("risk_grade", grades, run.now)
    _update_lines("limit", [(c.line_id, c.target.proposed) for c in auto if c.target], run.now)
    _proposals(run, auto, ProposalStatus.APPLIED, scores)
    queued_ids = _proposals(run, queued, ProposalStatus.AWAITING_APPROVAL, scores)
    _audit(run, changes, list(zip(queued, queued_ids, strict=True)))
    result = run.result
    result.regraded += len(grades)
    result.increased += sum(1 for c in auto if c.target and c.target.change > 0)
    result.decreased += sum(1 for c in auto if c.target and c.target.change < 0)
    result.queued += len(queued)


def changes_preview(run: Run, changes: list[Change]) -> None:
    """Dry run: record what would change as ``proposed`` rows; change nothing else."""
    LineProposal.objects.filter(
        credit_line_id__in=[c.line_id for c in changes], status=ProposalStatus.PROPOSED
    ).update(status=ProposalStatus.SUPERSEDED, decided_at=run.now)
    previews = [c for c in changes if c.target is not None]
    _proposals(run, previews, ProposalStatus.PROPOSED, {})
    run.result.regraded += sum(1 for c in changes if "risk_grade" in c.after)
    run.result.increased += sum(1 for c in previews if c.target and c.target.change > 0)
    run.result.decreased += sum(1 for c in previews if c.target and c.target.change < 0)
