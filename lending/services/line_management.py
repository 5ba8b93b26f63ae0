"""Nightly line management: score every line, keep its grade current, propose and apply limits.

For each active program, as of its last closed business day D (yesterday in its time zone):

1. **Score.** One SQL statement computes every line's features as of D
   (``lending.scoring.features``); the promoted scorecard gives each a probability of a loan going
   30+ days past due, a grade A-E, points and its top reason codes. Each score is stored
   (``AgentScore``) with the model version and the feature values.
2. **Regrade.** A line whose grade changed gets the new ``risk_grade``: the decision engine reads
   it on the next finance request (referral below the program's auto-approve grade).
3. **Propose a limit** with the formula of ``lending.services.line_formula`` (``line_target``:
   from the 90-day order volume and the grade, within the program's caps and step limits, never
   below what the line uses).
4. **Apply or queue.** Decreases and increases up to the policy's ``auto_increase_max`` are applied
   at once; larger increases become a ``LineProposal`` awaiting maker-checker approval
   (``lending.services.line_proposals``). A newer proposal supersedes an older one still open.

Frozen lines are scored (so risk staff see the score) but keep their grade and limit. Lines of an
agent that is not active keep their limit. Every change is audited (``credit_line.update``, the
same action as a manual change through ``credit_line_update``, with the same rule: never below
outstanding + reserved, checked on the locked row) with its reasons, in the transaction that
makes it; a queued raise is audited as ``line_proposal.queue``.

Scale: the work is set-based. Lines are handled in chunks of ``CHUNK`` in their own transaction:
the chunk's lines are locked in id order (``lending.locks``; the finance service locks one
line at a time, so nothing deadlocks and a finance request waits one chunk at most), the limits are
checked against the locked figures, grades and limits are set with one ``UPDATE ... FROM
(VALUES ...)`` per 1,000 lines, and scores, proposals and audit rows are written with ``COPY``
(``lending.scoring.bulk``). A line already scored for D by the same model is skipped, so running
the night twice changes nothing. Its timing against the nightly budget: docs/performance.md.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
from django.db import connection, transaction

from orders.models import PartyStatus
from scf import clock

from ..locks import lines_locked
from ..models import (
    PROPOSAL_OPEN,
    AgentScore,
    AuditLog,
    CreditLine,
    CreditModel,
    LineProposal,
    Program,
    ProgramStatus,
    ProposalStatus,
)
from ..scoring import scorecard as sc
from ..scoring.bulk import BulkRows, reserve_ids
from ..scoring.features import BY_NAME, FeatureFrame, features_as_of
from ..scoring.scores import Scores, reason_entries, score_frame
from ..scoring.training import promoted_model, scorecard_of
from .audit import SYSTEM
from .line_formula import LineFacts, Policy, Target, line_target

CHUNK = 2000
VOLUME_FEATURE = "order_amount_90"


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
class _Run:
    program: Program
    as_of: dt.date
    model: CreditModel
    frame: FeatureFrame
    scores: Scores
    policy: Policy
    result: RunResult
    now: dt.datetime


@dataclass
class _Locked:
    limit: Decimal
    utilisation: Decimal
    frozen: bool
    grade: str
    agent_active: bool


def _chunks(count: int, size: int) -> Iterator[range]:
    for start in range(0, count, size):
        yield range(start, min(count, start + size))


def _lock(line_ids: list[int]) -> dict[int, _Locked]:
    """Lock the lines in id order and read their figures under the lock."""
    rows = (
        lines_locked()
        .filter(pk__in=line_ids)
        .order_by("pk")
        .values_list(
            "pk",
            "limit",
            "outstanding_principal",
            "reserved",
            "frozen",
            "risk_grade",
            "agent__status",
        )
    )
    return {
        pk: _Locked(limit, outstanding + reserved, frozen, grade, status == PartyStatus.ACTIVE)
        for pk, limit, outstanding, reserved, frozen, grade, status in rows
    }


# --- one chunk: scores, grades, limits, proposals, audit ----------------------------------------


@dataclass
class _Change:
    line_id: int
    agent_id: int
    row: int
    old_limit: Decimal
    before: dict[str, str] = field(default_factory=dict)
    after: dict[str, str] = field(default_factory=dict)
    target: Target | None = None


def _write_scores(run: _Run, rows: Sequence[int]) -> dict[int, int]:
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


def _facts(run: _Run, row: int, state: _Locked, grade: str) -> LineFacts:
    volume = run.frame.column(VOLUME_FEATURE)[row]
    return LineFacts(
        current_limit=state.limit,
        utilisation=state.utilisation,
        volume_90=Decimal(f"{0.0 if np.isnan(volume) else volume:.2f}"),
        grade=grade,
        advance_rate=run.program.advance_rate,
        tenor_days=run.program.tenor_days,
        program_limit=run.program.limit,
    )


def _plan(run: _Run, rows: Sequence[int], locked: dict[int, _Locked]) -> list[_Change]:
    """What changes on each unfrozen line: its grade, and (active agents) its limit."""
    changes = []
    for i in rows:
        line_id = run.frame.context["line_id"][i]
        state = locked.get(line_id)
        if state is None:
            continue
        if state.frozen:
            run.result.frozen += 1
            continue
        grade = run.scores.grades[i]
        change = _Change(line_id, run.frame.context["agent_id"][i], i, state.limit)
        if grade != state.grade:
            change.before["risk_grade"], change.after["risk_grade"] = state.grade, grade
        if state.agent_active:
            target = line_target(_facts(run, i, state, grade), run.policy)
            change.target = target if target.changes else None
        changes.append(change)
    return changes


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


def _proposals(run: _Run, changes: list[_Change], status: str, scores: dict[int, int]) -> list[int]:
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


def _supersede(run: _Run, line_ids: list[int], keep: set[int]) -> None:
    LineProposal.objects.filter(credit_line_id__in=line_ids, status__in=PROPOSAL_OPEN).exclude(
        pk__in=keep
    ).update(status=ProposalStatus.SUPERSEDED, decided_at=run.now)


def _still_waiting(changes: list[_Change]) -> dict[int, int]:
    """Lines whose waiting proposal asks for the very limit proposed again: line -> proposal."""
    wanted = {c.line_id: c.target.proposed for c in changes if c.target and c.target.needs_approval}
    waiting = LineProposal.objects.filter(
        credit_line_id__in=list(wanted), status=ProposalStatus.AWAITING_APPROVAL
    ).values_list("credit_line_id", "pk", "proposed_limit")
    return {line: pk for line, pk, limit in waiting if limit == wanted[line]}


def _note(run: _Run, change: _Change) -> str:
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


def _audit(run: _Run, changes: list[_Change], queued: list[tuple[_Change, int]]) -> None:
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


def _apply(run: _Run, changes: list[_Change], scores: dict[int, int]) -> None:
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


def _preview(run: _Run, changes: list[_Change]) -> None:
    """Dry run: record what would change as ``proposed`` rows; change nothing else."""
    LineProposal.objects.filter(
        credit_line_id__in=[c.line_id for c in changes], status=ProposalStatus.PROPOSED
    ).update(status=ProposalStatus.SUPERSEDED, decided_at=run.now)
    previews = [c for c in changes if c.target is not None]
    _proposals(run, previews, ProposalStatus.PROPOSED, {})
    run.result.regraded += sum(1 for c in changes if "risk_grade" in c.after)
    run.result.increased += sum(1 for c in previews if c.target and c.target.change > 0)
    run.result.decreased += sum(1 for c in previews if c.target and c.target.change < 0)


@transaction.atomic
def _run_chunk(run: _Run, rows: range, dry_run: bool) -> None:
    """One transaction: lock the chunk's lines, score, regrade, apply or queue, audit."""
    line_ids = [run.frame.context["line_id"][i] for i in rows]
    locked = _lock(line_ids)
    if dry_run:
        _preview(run, _plan(run, rows, locked))
        return
    done = set(
        AgentScore.objects.filter(
            credit_line_id__in=line_ids, as_of=run.as_of, model=run.model
        ).values_list("credit_line_id", flat=True)
    )
    todo = [i for i in rows if run.frame.context["line_id"][i] not in done]
    run.result.already_scored += len(rows) - len(todo)
    run.result.scored += len(todo)
    scores = _write_scores(run, todo)
    _apply(run, _plan(run, todo, locked), scores)


def program_credit_run(
    *,
    program: Program,
    as_of: dt.date,
    model: CreditModel,
    card: sc.Scorecard | None = None,
    dry_run: bool = False,
) -> RunResult:
    """Score, regrade and manage every line of ``program`` as of ``as_of`` (see the module)."""
    started = time.monotonic()
    frame = features_as_of(as_of, program_id=program.pk)
    scores = score_frame(frame, card or scorecard_of(model))
    result = RunResult(program.pk, as_of, model.version, dry_run, lines=len(frame))
    run = _Run(program, as_of, model, frame, scores, Policy.of(program), result, clock.now())
    for rows in _chunks(len(frame), CHUNK):
        _run_chunk(run, rows, dry_run)
    result.grades = {g: scores.grades.count(g) for g in sc.GRADES}
    result.seconds = round(time.monotonic() - started, 3)
    return result


def credit_nightly(
    *, as_of: dt.date | None = None, program_ids: Sequence[int] | None = None, dry_run: bool = False
) -> list[RunResult]:
    """The nightly job: every active program, as of its last closed day (or ``as_of``).

    Does nothing (returns ``[]``) until a model has been promoted. Safe to run twice: lines
    already scored for the day by the same model are skipped.
    """
    model = promoted_model()
    if model is None:
        return []
    card = scorecard_of(model)
    programs = Program.objects.filter(status=ProgramStatus.ACTIVE).order_by("pk")
    if program_ids is not None:
        programs = programs.filter(pk__in=program_ids)
    return [
        program_credit_run(
            program=program,
            as_of=as_of or clock.business_date(program.time_zone) - dt.timedelta(days=1),
            model=model,
            card=card,
            dry_run=dry_run,
        )
        for program in programs
    ]
