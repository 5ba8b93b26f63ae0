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
the night twice changes nothing. The chunk's writes are ``lending.services.line_changes``; the
run's timing against the nightly budget is in docs/performance.md.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from django.db import transaction

from orders.models import PartyStatus
from scf import clock

from ..locks import lines_locked
from ..models import AgentScore, CreditModel, Program, ProgramStatus
from ..scoring import scorecard as sc
from ..scoring.features import features_as_of
from ..scoring.scores import score_frame
from ..scoring.training import promoted_model, scorecard_of
from .line_changes import Change, Run, RunResult, changes_apply, changes_preview, scores_write
from .line_formula import LineFacts, Policy, line_target

CHUNK = 2000
VOLUME_FEATURE = "order_amount_90"


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


def _facts(run: Run, row: int, state: _Locked, grade: str) -> LineFacts:
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


def _plan(run: Run, rows: Sequence[int], locked: dict[int, _Locked]) -> list[Change]:
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
        change = Change(line_id, run.frame.context["agent_id"][i], i, state.limit)
        if grade != state.grade:
            change.before["risk_grade"], change.after["risk_grade"] = state.grade, grade
        if state.agent_active:
            target = line_target(_facts(run, i, state, grade), run.policy)
            change.target = target if target.changes else None
        changes.append(change)
    return changes


@transaction.atomic
def _run_chunk(run: Run, rows: range, dry_run: bool) -> None:
    """One transaction: lock the chunk's lines, score, regrade, apply or queue, audit."""
    line_ids = [run.frame.context["line_id"][i] for i in rows]
    locked = _lock(line_ids)
    if dry_run:
        changes_preview(run, _plan(run, rows, locked))
        return
    done = set(
        AgentScore.objects.filter(
            credit_line_id__in=line_ids, as_of=run.as_of, model=run.model
        ).values_list("credit_line_id", flat=True)
    )
    todo = [i for i in rows if run.frame.context["line_id"][i] not in done]
    run.result.already_scored += len(rows) - len(todo)
    run.result.scored += len(todo)
    scores = scores_write(run, todo)
    changes_apply(run, _plan(run, todo, locked), scores)


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
    run = Run(program, as_of, model, frame, scores, Policy.of(program), result, clock.now())
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
