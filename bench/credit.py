"""Credit scoring benchmark: the nightly scoring and line proposals for 100,000 agents.

Setup (timed, but not the target): in its own PostgreSQL database (``scf_bench_credit``), one
program with ``--agents`` synthetic agents and a year of history from the documented generator
(``integrations.demo.history``, ``detail=False``: orders, loans, repayments), then
``VACUUM ANALYZE`` as autovacuum would after a load; then ``credit_train`` on that history. A
database that already holds the cohort is reused: scores, proposals and their audit rows are
cleared and every line starts from its generated limit and grade again (the database is scratch);
``--fresh`` drops and recreates it.

Timed (the target: under 60 s on this 2-core machine): ``credit_nightly`` as of the last day of
the history, which for every line computes the features in one SQL statement, scores them,
stores the scores, regrades, computes the proposed limit, applies cuts and small raises, queues
large raises and audits every change, in chunks of 2,000 lines each in its own transaction. The
phases are timed by wrapping the functions the run calls. A second run on the same day shows the
cost of the idempotency check (everything already scored).

Usage (PostgreSQL must answer on loopback)::

    .venv/bin/python -m bench.credit [--agents 100000] [--fresh] [--json bench-credit.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.lib.db import analyze, django_setup, ensure_database
from bench.lib.report import environment, load_average, write_json

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/scf_bench_credit"
COHORT = "BENCH"
PREFIX = "BEN"
TODAY = dt.date(2026, 6, 30)
TARGET_SECONDS = 60.0
SEED = 2026


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.credit", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--agents", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365, help="days of history")
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the bench db")
    parser.add_argument("--retrain", action="store_true", help="train a new model even if one is")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


def timed(label: str, timings: dict[str, float], fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            timings[label] += time.perf_counter() - started

    return wrapper


# --- setup --------------------------------------------------------------------------------------


def cohort(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The bench program with its history: generated once, reused after."""
    from integrations.demo.history import cohort_program, history_generate
    from lending.models import CreditLine, Program

    program = Program.objects.filter(code=f"PRG-{COHORT}").first()
    if program is not None and CreditLine.objects.filter(program=program).count() == args.agents:
        return program, {"reused": True}
    if program is not None:
        raise SystemExit("the bench database holds another cohort: run with --fresh")
    started = time.perf_counter()
    program = cohort_program(code=COHORT)
    history = history_generate(
        program=program,
        agents=args.agents,
        today=TODAY,
        seed=SEED,
        days=args.days,
        prefix=PREFIX,
        detail=False,
    )
    generated = time.perf_counter() - started
    started = time.perf_counter()
    analyze(vacuum=True)
    return program, {
        "reused": False,
        "generate_seconds": round(generated, 1),
        "vacuum_analyze_seconds": round(time.perf_counter() - started, 1),
        "orders": history.orders,
        "loans": history.loans,
        "loans_30dpd": history.bad_loans,
        "repayments": history.repayments,
    }


def model(*, retrain: bool) -> dict[str, Any]:
    from lending.models import CreditModel
    from lending.scoring.training import promoted_model
    from lending.services.credit_models import credit_model_train

    if retrain:
        CreditModel.objects.all().delete()  # scratch database; the scores went in reset()
    current = promoted_model()
    if current is not None:
        return {"version": current.version, "auc": str(current.auc), "trained_now": False}
    started = time.perf_counter()
    trained = credit_model_train(as_of=TODAY)
    return {
        "version": trained.version,
        "auc": str(trained.auc),
        "ks": str(trained.ks),
        "baseline_auc": trained.metrics["holdout"]["baseline"]["auc"],
        "training_loans": trained.metrics["train"]["rows"] + trained.metrics["holdout"]["rows"],
        "train_seconds": round(time.perf_counter() - started, 1),
        "trained_now": True,
    }


def snapshot_lines(program: Any) -> None:
    """Remember every line's limit and grade as generated, so each run starts from them."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_credit_line_start")
        cursor.execute(
            'CREATE TABLE bench_credit_line_start AS SELECT id, "limit", risk_grade '
            "FROM lending_creditline WHERE program_id = %s",
            [program.pk],
        )


def reset(program: Any) -> None:
    """Put the bench program back as generated: limits and grades, no scores, proposals or the
    audit rows of earlier runs (this database is scratch)."""
    import pgtrigger
    from django.db import connection

    from lending.models import AgentScore, AuditLog, LineProposal

    LineProposal.objects.filter(program=program).delete()
    AgentScore.objects.filter(program=program).delete()
    # Append-only on PostgreSQL: only this scratch-database reset may remove audit rows.
    with pgtrigger.ignore("lending.AuditLog:audit_append_only_delete"):
        AuditLog.objects.filter(
            actor_label="system", action__in=["credit_line.update", "line_proposal.queue"]
        ).delete()
    with connection.cursor() as cursor:
        cursor.execute(
            'UPDATE lending_creditline AS cl SET "limit" = s."limit", risk_grade = s.risk_grade '
            "FROM bench_credit_line_start AS s WHERE cl.id = s.id"
        )
    analyze("lending_creditline", vacuum=True)


# --- the timed run ------------------------------------------------------------------------------


def nightly(program: Any) -> dict[str, Any]:
    """``credit_nightly`` for the bench program, with its phases timed."""
    from lending.services import line_management as lm

    timings: dict[str, float] = defaultdict(float)
    patched = {
        "features_as_of": "features (one SQL statement)",
        "score_frame": "scoring (NumPy)",
        "_lock": "lock the chunk's lines",
        "scores_write": "store the scores",
        "_plan": "formula per line",
        "changes_apply": "grades, limits, proposals, audit",
    }
    originals = {name: getattr(lm, name) for name in patched}
    for name, label in patched.items():
        setattr(lm, name, timed(label, timings, originals[name]))
    try:
        started = time.perf_counter()
        (run,) = lm.credit_nightly(as_of=TODAY, program_ids=[program.pk])
        total = time.perf_counter() - started
    finally:
        for name, fn in originals.items():
            setattr(lm, name, fn)
    phases = {label: round(seconds, 2) for label, seconds in timings.items()}
    phases["commits and the rest"] = round(total - sum(timings.values()), 2)
    return {"seconds": round(total, 2), "phases": phases, "run": _run(run)}


def _run(run: Any) -> dict[str, Any]:
    return {
        "lines": run.lines,
        "scored": run.scored,
        "already_scored": run.already_scored,
        "regraded": run.regraded,
        "raised": run.increased,
        "cut": run.decreased,
        "queued": run.queued,
        "grades": run.grades,
    }


def rerun(program: Any) -> dict[str, Any]:
    from lending.services.line_management import credit_nightly

    started = time.perf_counter()
    (run,) = credit_nightly(as_of=TODAY, program_ids=[program.pk])
    return {"seconds": round(time.perf_counter() - started, 2), "run": _run(run)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ensure_database(args.database_url, fresh=args.fresh)
    django_setup(args.database_url)
    env = environment(load_average_at_start=load_average())
    results: dict[str, Any] = {"environment": env, "agents": args.agents}
    program, results["setup"] = cohort(args)
    if not results["setup"]["reused"]:
        snapshot_lines(program)
    reset(program)
    results["model"] = model(retrain=args.retrain)
    results["nightly"] = nightly(program)
    results["rerun"] = rerun(program)
    seconds = results["nightly"]["seconds"]
    results["target_seconds"] = TARGET_SECONDS
    results["met"] = seconds < TARGET_SECONDS
    print(json.dumps(results, indent=2))
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
