"""The finance bench's measured phases: clicks over HTTP against gunicorn, and in-process
(``loan_finance``, or the Django + DRF stack without sockets) in several processes; and a
cProfile of clicks in this process."""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import json
import multiprocessing as mp
import os
import pstats
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.finance.clicks import (
    FINANCE_PATH,
    Click,
    Cohort,
    analyze_click_tables,
    click_env,
    click_headers,
    click_runner,
)
from bench.lib.cpu import CpuMeter
from bench.lib.db import ROOT, bench_dsn
from bench.lib.http import Client, HttpError
from bench.lib.processes import Deadline, gunicorn, run_threads
from bench.lib.report import latency_summary, percentile


@dataclass(frozen=True)
class ServerSpec:
    """``sync:W`` or ``gthread:WxT``, optionally ``@PATH``: serve that checkout of the app (a
    prototype, say) instead of this one, against the same database, for side-by-side runs."""

    kind: str  # sync | gthread
    workers: int
    threads: int = 1
    root: Path = ROOT

    @classmethod
    def parse(cls, text: str) -> ServerSpec:
        text, _, root = text.partition("@")
        path = Path(root).resolve() if root else ROOT
        if not (path / "scf" / "wsgi.py").exists():
            raise argparse.ArgumentTypeError(f"no app at {path}")
        kind, _, size = text.partition(":")
        if kind == "sync" and size.isdigit():
            return cls("sync", int(size), root=path)
        if kind == "gthread" and "x" in size:
            workers, threads = size.split("x", 1)
            return cls("gthread", int(workers), int(threads), root=path)
        raise argparse.ArgumentTypeError(f"expected sync:W or gthread:WxT[@PATH], not {text!r}")

    @property
    def label(self) -> str:
        name = (
            f"sync {self.workers} workers"
            if self.kind == "sync"
            else (f"gthread {self.workers}x{self.threads}")
        )
        return name if self.root == ROOT else f"{name} @{self.root.name}"

    def args(self) -> list[str]:
        extra = ["--worker-class", "gthread", "--threads", str(self.threads)]
        return ["--workers", str(self.workers), *(extra if self.kind == "gthread" else [])]


@dataclass
class PhaseResult:
    key: str
    label: str
    concurrency: int
    decisions: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    done_at: list[float] = field(default_factory=list)  # HTTP: perf_counter at each reply
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    retries: int = 0
    cpu: dict[str, float] = field(default_factory=dict)
    queries: float = 0.0  # per decision, in-process service only
    db_ms: float = 0.0  # wall time inside the database per decision, in-process service only
    waits: dict[str, Any] = field(default_factory=dict)  # what busy backends waited on
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.decisions / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        return percentile(self.latencies_ms, p)

    def cpu_ms(self, part: str) -> float:
        return 1000 * self.cpu.get(part, 0.0) / self.decisions if self.decisions else 0.0

    @property
    def capacity(self) -> float:
        """Decisions/s the machine's CPUs would allow if this were all they did: cores divided
        by the CPU this phase spent per decision (app + PostgreSQL + client), ignoring lock
        waits. A shared machine lowers the measured rate; this estimate stays put."""
        spent = sum(self.cpu_ms(k) for k in ("app", "postgres", "client"))
        return 1000 * (os.cpu_count() or 1) / spent if spent else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "concurrency": self.concurrency,
            "decisions": self.decisions,
            "seconds": round(self.seconds, 3),
            "decisions_per_second": round(self.rate, 1),
            "latency_ms": latency_summary(self.latencies_ms),
            "outcomes": dict(self.outcomes),
            "cpu_ms_per_decision": {k: round(self.cpu_ms(k), 3) for k in self.cpu},
            "cpu_bound_capacity_per_second": round(self.capacity, 1),
            "queries_per_decision": round(self.queries, 2),
            "db_ms_per_decision": round(self.db_ms, 3),
            "backend_waits": self.waits,
            "errors": self.errors[:10],
            "retries": self.retries,
            "notes": self.notes,
        }


# --- HTTP -----------------------------------------------------------------------------------


def drive(
    port: int, tag: str, clicks: list[Click], clients: int, deadline: Deadline, res: PhaseResult
) -> float:
    """``clients`` threads take the next unused click until none are left; returns wall time."""
    counter = itertools.count()
    lock = threading.Lock()
    stopped = threading.Event()

    def client(_: int) -> None:
        conn = Client(port)
        latencies: list[float] = []
        finished: list[float] = []
        outcomes = Counter[str]()
        errors: list[str] = []
        while True:
            i = next(counter)
            if i >= len(clicks):
                break
            if deadline.left() < 0:
                stopped.set()
                break
            click = clicks[i]
            start = time.perf_counter()
            try:
                status, body = conn.post(
                    FINANCE_PATH.format(order_id=click.order_id), click_headers(tag, click)
                )
            except (OSError, HttpError) as exc:
                errors.append(f"order {click.order_id}: {exc!r}")
                continue
            done = time.perf_counter()
            latencies.append((done - start) * 1000)
            finished.append(done)
            if status == 201:
                outcomes[json.loads(body)["decision"]["outcome"]] += 1
            else:
                errors.append(f"order {click.order_id}: HTTP {status} {body[:160]!r}")
        conn.close()
        with lock:
            res.latencies_ms.extend(latencies)
            res.done_at.extend(finished)
            res.outcomes.update(outcomes)
            res.errors.extend(errors)
            res.retries += conn.retries

    wall = run_threads(clients, client)
    if stopped.is_set():
        res.notes.append("stopped early: time bound reached")
    return wall


def bench_http(
    url: str, spec: ServerSpec, cohort: Cohort, tag: str, args: argparse.Namespace, dl: Deadline
) -> PhaseResult:
    key = f"http-{spec.kind}-{spec.workers}x{spec.threads}"
    if spec.root != ROOT:
        key += f"@{spec.root.name}"
    res = PhaseResult(key, f"HTTP {spec.label}", args.clients)
    log_path = Path(tempfile.gettempdir()) / f"scf-bench-finance-gunicorn-{os.getpid()}.log"
    warm, measured = cohort.clicks[: args.warmup], cohort.clicks[args.warmup :]
    server_args = [*spec.args(), "--timeout", "60", "--backlog", "2048"]
    env = click_env(args.broker_url)
    with gunicorn(url, server_args, log_path=log_path, root=spec.root, env=env) as (port, master):
        scratch = PhaseResult("warmup", "warm-up", args.clients)
        drive(port, tag, warm, args.clients, dl, scratch)
        if scratch.errors:
            res.notes.append(f"warm-up errors: {scratch.errors[:2]}")
        analyze_click_tables()
        meter = CpuMeter(lambda pid, comm, pgrp: pgrp == master, bench_dsn(url))
        with meter:
            res.seconds = drive(port, tag, measured, args.clients, dl, res)
    res.cpu, res.waits = meter.result, meter.wait_profile()
    res.decisions = len(res.latencies_ms)
    return res


# --- in-process -----------------------------------------------------------------------------


def _inprocess_child(
    mode: str, tag: str, clicks: list[Click], barrier: Any, out: Any, done: Any, warm: int
) -> None:
    """One process: warm up, wait for the parent's analyze (``analyze_click_tables``), then
    finance its share of the clicks serially. Its database
    connection stays open until the parent has read the backends' CPU time (``done``)."""
    from django.db import connection

    one = click_runner(mode == "service", tag, clicks)
    stats = {"queries": 0, "db": 0.0}

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            stats["queries"] += 1
            stats["db"] += time.perf_counter() - start

    latencies: list[float] = []
    outcomes = Counter[str]()
    errors: list[str] = []
    for click in clicks[:warm]:
        one(click)
    barrier.wait()  # warmed up; the parent analyzes
    barrier.wait()  # go
    with connection.execute_wrapper(count):
        for click in clicks[warm:]:
            start = time.perf_counter()
            try:
                outcomes[one(click)] += 1
            except Exception as exc:
                errors.append(f"order {click.order_id}: {exc!r}")
                continue
            latencies.append((time.perf_counter() - start) * 1000)
    out.put((latencies, dict(outcomes), errors, stats["queries"], stats["db"]))
    done.wait(60)
    connection.close()


def bench_inprocess(mode: str, cohort: Cohort, tag: str, args: argparse.Namespace) -> PhaseResult:
    from django.db import connections

    procs = args.inprocess_procs
    label = {"service": "loan_finance", "django": "Django+DRF stack (WSGI, no sockets)"}[mode]
    res = PhaseResult(f"inprocess-{mode}", f"in-process {label}, {procs} procs", procs)
    warm_each = max(1, args.warmup // procs)
    shares = [cohort.clicks[i::procs] for i in range(procs)]
    ctx = mp.get_context("fork")
    barrier, out, done = ctx.Barrier(procs + 1), ctx.Queue(), ctx.Event()
    connections.close_all()  # children must not share the parent's socket
    children = [
        ctx.Process(target=_inprocess_child, args=(mode, tag, share, barrier, out, done, warm_each))
        for share in shares
    ]
    for child in children:
        child.start()
    pids = {c.pid for c in children}
    meter = CpuMeter(lambda pid, comm, pgrp: pid in pids, bench_dsn(os.environ["DATABASE_URL"]))
    try:
        barrier.wait(timeout=300)
        analyze_click_tables()
        barrier.wait(timeout=60)
        start = time.perf_counter()
        with meter:
            gathered = [out.get(timeout=600) for _ in children]
            res.seconds = time.perf_counter() - start
    except BaseException:
        for child in children:
            child.terminate()
        raise
    done.set()
    for child in children:
        child.join(timeout=30)
    queries, db = 0, 0.0
    for latencies, outcomes, errors, q, d in gathered:
        res.latencies_ms.extend(latencies)
        res.outcomes.update(outcomes)
        res.errors.extend(errors)
        queries, db = queries + q, db + d
    res.decisions = len(res.latencies_ms)
    res.cpu, res.waits = meter.result, meter.wait_profile()
    if res.decisions:
        res.queries, res.db_ms = queries / res.decisions, 1000 * db / res.decisions
    return res


def profile_service(cohort: Cohort, calls: int, out: Path | None, stack: bool, tag: str) -> None:
    """cProfile of ``calls`` clicks in this process, serially, after 50 unprofiled."""
    one = click_runner(not stack, tag, cohort.clicks)
    for click in cohort.clicks[:50]:
        one(click)
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    for click in cohort.clicks[50 : 50 + calls]:
        one(click)
    profiler.disable()
    wall = time.perf_counter() - start
    what = "Django + DRF stack (WSGIHandler)" if stack else "loan_finance"
    print(f"\n{what}, serial, profiled: {calls} calls in {wall:.2f} s")
    for order in ("tottime", "cumulative"):
        buf = io.StringIO()
        pstats.Stats(profiler, stream=buf).sort_stats(order).print_stats(30)
        print(buf.getvalue())
    if out:
        profiler.dump_stats(str(out))
        print(f"stats saved to {out}")
