"""``python -m bench.finance``: the options, the phases in order, the books, the report."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import bench.finance
from bench.finance.clicks import (
    DEFAULT_BROKER_URL,
    DEFAULT_DATABASE_URL,
    Cohort,
    analyze_and_checkpoint,
    broker_flush,
    click_env,
    seed_cohort,
    seed_program,
)
from bench.finance.phases import (
    PhaseResult,
    ServerSpec,
    bench_http,
    bench_inprocess,
    profile_service,
)
from bench.finance.raw import bench_raw
from bench.finance.report import (
    TARGET_P99_MS,
    TARGET_RATE,
    TARGET_RATIO,
    plot,
    report,
    run_environment,
)
from bench.finance.tripartite import tripartite_agents, tripartite_terms
from bench.lib.books import line_books, program_books
from bench.lib.cpu import machine_speed_ms
from bench.lib.db import app_env, django_setup, ensure_database
from bench.lib.processes import Deadline, exit_on_sigterm
from bench.lib.report import write_json


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    cpus = os.cpu_count() or 1
    description = (bench.finance.__doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m bench.finance", description=description)
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    )
    parser.add_argument(
        "--servers",
        default=f"sync:{cpus + 1}",
        help="comma-separated gunicorn settings, sync:W or gthread:WxT (default sync:cores+1, "
        "as make web's WEB_CONCURRENCY: more processes than cores add contention, not overlap); "
        "append @PATH to serve another checkout of the app (a prototype) side by side",
    )
    parser.add_argument(
        "--broker-url",
        default=DEFAULT_BROKER_URL,
        help="Celery broker for the disbursement tasks (flushed: use a database of its own), "
        "or 'eager' to pay out inside each request",
    )
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument("--requests", type=int, default=5000, help="measured clicks per phase")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured clicks first")
    parser.add_argument("--agents", type=int, default=200, help="agents per phase")
    parser.add_argument("--inprocess-procs", type=int, default=2 * cpus)
    parser.add_argument(
        "--skip", default="", help="comma-separated phases to skip: http,service,django,raw"
    )
    parser.add_argument("--profile", type=int, default=0, help="cProfile N loan_finance calls")
    parser.add_argument("--profile-out", type=Path, help="save the cProfile stats here")
    parser.add_argument(
        "--profile-stack",
        action="store_true",
        help="profile the whole Django + DRF stack (WSGIHandler) instead of loan_finance",
    )
    parser.add_argument("--max-seconds", type=float, default=900.0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--plot",
        type=Path,
        help="also draw each HTTP phase's latencies and rate over its run to this PNG "
        "(needs matplotlib: pip install -e '.[bench]')",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--tripartite",
        action="store_true",
        help="also run the in-process phases under a program with tripartite terms (margin)",
    )
    args = parser.parse_args(argv)
    try:
        args.servers = [ServerSpec.parse(s.strip()) for s in args.servers.split(",") if s.strip()]
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.plot:  # before the run, not after it
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise SystemExit(
                "--plot needs matplotlib: .venv/bin/pip install -e '.[bench]'"
            ) from None
    exit_on_sigterm()
    dl = Deadline(args.max_seconds)
    ensure_database(args.database_url)
    django_setup(args.database_url, app_env(args.database_url, **click_env(args.broker_url)))
    broker_flush(args.broker_url)
    env = run_environment(args)
    serial = int(time.time())
    tag = f"{serial:x}"[-7:].upper()
    setup = seed_program(tag, serial)
    wanted = [f"h{i}" for i in range(len(args.servers))] if "http" not in args.skip else []
    wanted += [m for m in ("service", "django", "raw") if m not in args.skip]
    if args.profile:
        wanted = ["prof"]
    clicks = args.requests + args.warmup
    start = time.perf_counter()
    for n, name in enumerate(wanted):
        count = args.profile + 50 if name == "prof" else clicks
        setup.cohorts[name] = seed_cohort(
            setup, name, serial, n * args.agents, args.agents, count, args.seed + n
        )
    tri = None
    if args.tripartite and not args.profile:
        tri = seed_program(f"{tag}T", serial + 1)
        tripartite_terms(tri)
        for n, mode in enumerate(m for m in ("service", "django") if m not in args.skip):
            first = (len(wanted) + n) * args.agents
            cohort = seed_cohort(tri, mode, serial + 1, first, args.agents, clicks, args.seed + n)
            tripartite_agents(tri, cohort)
            tri.cohorts[mode] = cohort
    analyze_and_checkpoint()
    print(
        f"run {tag}: seeded {len(wanted)} cohorts of {args.agents} agents and analyzed in "
        f"{time.perf_counter() - start:.1f} s",
        flush=True,
    )
    if args.profile:
        profile_service(
            setup.cohorts["prof"], args.profile, args.profile_out, args.profile_stack, tag
        )
        return 0
    results: list[PhaseResult] = []
    phases: dict[str, tuple[Cohort, PhaseResult]] = {}

    def record(name: str, res: PhaseResult) -> None:
        results.append(res)
        phases[res.key] = (setup.cohorts[name], res)
        print(f"  {res.label}: {res.rate:.0f} decisions/s, p99 {res.pct(99):.1f} ms", flush=True)

    try:
        for i, spec in enumerate(args.servers if "http" not in args.skip else []):
            cohort = setup.cohorts[f"h{i}"]
            record(f"h{i}", bench_http(args.database_url, spec, cohort, tag, args, dl))
        for mode in ("service", "django"):
            if mode not in args.skip and dl.left() > 0:
                record(mode, bench_inprocess(mode, setup.cohorts[mode], tag, args))
        if "raw" not in args.skip and dl.left() > 0:
            record("raw", bench_raw(args.database_url, setup, setup.cohorts["raw"], args))
        for mode, cohort in (tri.cohorts if tri is not None else {}).items():
            if dl.left() > 0:
                res = bench_inprocess(mode, cohort, tag, args)
                res.key, res.label = f"{res.key}-tripartite", f"{res.label}, tripartite terms"
                results.append(res)
                phases[res.key] = (cohort, res)
                print(f"  {res.label}: {res.rate:.0f} decisions/s, p99 {res.pct(99):.1f} ms")
    except (KeyboardInterrupt, SystemExit) as exc:
        # Stopped (Ctrl-C, SIGTERM): report the phases that finished.
        print(f"interrupted ({exc!r}); reporting the finished phases", flush=True)
    broker_flush(args.broker_url)
    env["machine_speed_ms_after"] = machine_speed_ms()
    problems = [
        problem
        for key, (cohort, res) in phases.items()
        for problem in line_books(
            key, cohort.line_ids, len(cohort.clicks), res.outcomes, complete=not res.notes
        )
    ]
    problems += program_books(setup.program_id)
    if tri is not None:
        problems += program_books(tri.program_id)
    verdicts = report(env, results, problems)
    if args.json:
        payload = {
            "run": tag,
            "environment": env,
            "targets": {"rate": TARGET_RATE, "p99_ms": TARGET_P99_MS, "api_over_raw": TARGET_RATIO},
            "verdicts": verdicts,
            "results": {r.key: r.summary() for r in results},
            "problems": problems,
        }
        write_json(args.json, payload)
        print(f"results written to {args.json}")
    plotted = [r for r in results if r.done_at]
    if args.plot and plotted:
        plot(tag, env, plotted, args.plot)
        print(f"plot written to {args.plot}")
    elif args.plot:
        print("no HTTP phase finished: nothing to plot")
    return 1 if problems or any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
