"""The finance bench's report: the table of phases, the targets, the books, and the plot."""

from __future__ import annotations

import argparse
import os
from collections import Counter
from pathlib import Path
from typing import Any

from bench.finance.phases import PhaseResult
from bench.lib.cpu import machine_speed_ms
from bench.lib.db import server_setting
from bench.lib.report import environment

TARGET_RATE = 300.0
TARGET_P99_MS = 100.0
TARGET_RATIO = 1 / 3


def run_environment(args: argparse.Namespace) -> dict[str, Any]:
    return environment(
        synchronous_commit=server_setting("synchronous_commit"),
        load_average_before=os.getloadavg(),
        machine_speed_ms_before=machine_speed_ms(),
        clients=args.clients,
        requests=args.requests,
        warmup=args.warmup,
        agents_per_phase=args.agents,
        inprocess_procs=args.inprocess_procs,
        disbursement_tasks="eager (in the request)"
        if args.broker_url == "eager"
        else f"queued on {args.broker_url}, not consumed during the run",
        servers=[s.label for s in args.servers],
    )


def report(env: dict[str, Any], results: list[PhaseResult], problems: list[str]) -> dict[str, Any]:
    print()
    print(
        f"Finance decisions: PostgreSQL {env['postgresql']}, {env['cpus']} CPUs, Python "
        f"{env['python']}, {env['requests']} measured clicks per phase, {env['agents_per_phase']} "
        f"agents per phase (load before: {env['load_average_before'][0]:.2f})"
    )
    print(
        f"machine speed: a fixed Python workload took {env['machine_speed_ms_before']:.0f} ms "
        f"before the phases and {env.get('machine_speed_ms_after', float('nan')):.0f} ms after "
        "(the lower, the faster; compare runs of different days by it)"
    )
    head = (
        f"{'path':<44} {'conc':>4} {'dec/s':>7} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7} "
        f"| {'CPU ms/decision: app':>20} {'pg':>5} {'client':>6} {'other':>5} | {'cap/s':>5}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        print(
            f"{r.label:<44} {r.concurrency:>4} {r.rate:>7.0f} {r.pct(50):>7.1f} {r.pct(95):>7.1f} "
            f"{r.pct(99):>7.1f} {max(r.latencies_ms, default=0):>7.1f} | {r.cpu_ms('app'):>20.2f} "
            f"{r.cpu_ms('postgres'):>5.2f} {r.cpu_ms('client'):>6.2f} {r.cpu_ms('other'):>5.2f} "
            f"| {r.capacity:>5.0f}"
        )
    print(
        "(latencies in ms; 'other' is CPU used by anything else on the machine meanwhile; raw SQL "
        "runs in the client process; cap/s = cores / (app + pg + client CPU per decision))"
    )
    for r in results:
        extra = (
            f", {r.queries:.1f} queries and {r.db_ms:.2f} ms in the database per decision"
            if r.queries
            else ""
        )
        retry = f", {r.retries} reconnect retries" if r.retries else ""
        print(f"  {r.label}: outcomes {dict(r.outcomes)}{extra}{retry}")
        if r.waits:
            print(f"    busy backends on average: {r.waits['active_backends']}")
            for what, n in r.waits["waits"].items():
                print(f"      {n:>6.2f}  {what}")
        for line in [*r.errors[:3], *r.notes]:
            print(f"    {line}")
    # Targets are judged on this checkout; other checkouts (@PATH) are shown for comparison.
    http = [r for r in results if r.key.startswith("http") and "@" not in r.key]
    raw = next((r for r in results if r.key == "raw-sql"), None)
    best = max(http, key=lambda r: r.rate, default=None)
    verdicts: dict[str, Any] = {}
    for other in (r for r in results if r.key.startswith("http") and "@" in r.key):
        versus = f", {other.rate / best.rate:.2f}x this checkout's best" if best else ""
        print(f"for comparison, {other.label}: {other.rate:.0f} decisions/s{versus}")
    if best:
        verdicts["best_http"] = best.label
        verdicts["rate_met"] = best.rate >= TARGET_RATE
        verdicts["p99_met"] = best.pct(99) < TARGET_P99_MS
        print(
            f"best HTTP setting: {best.label}: {best.rate:.0f} decisions/s "
            f"(target >= {TARGET_RATE:.0f}: {'met' if verdicts['rate_met'] else 'MISSED'}), "
            f"p99 {best.pct(99):.1f} ms (target < {TARGET_P99_MS:.0f}: "
            f"{'met' if verdicts['p99_met'] else 'MISSED'})"
        )
        if raw and raw.rate:
            ratio = best.rate / raw.rate
            verdicts["api_over_raw"] = round(ratio, 3)
            verdicts["ratio_met"] = ratio >= TARGET_RATIO
            print(
                f"ratio API/raw SQL: {best.rate:.0f} / {raw.rate:.0f} = {ratio:.2f} "
                f"(target >= 0.33: {'met' if verdicts['ratio_met'] else 'MISSED'})"
            )
    verdicts["books_ok"] = not problems
    print(f"books: {'consistent' if not problems else 'PROBLEMS'}")
    for p in problems[:20]:
        print(f"  {p}")
    return verdicts


def plot(tag: str, env: dict[str, Any], results: list[PhaseResult], path: Path) -> None:
    """Two panels over each phase's run: every click's latency at the moment its reply came
    (with the p99 target), and decisions per second in half-second bins (with the rate target).
    The slow seconds a percentile hides show here."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat, rate) = plt.subplots(1, 2, figsize=(12, 4.2), constrained_layout=True)
    width = 0.5
    for r in results:
        t0 = min(d - ms / 1000 for d, ms in zip(r.done_at, r.latencies_ms, strict=True))
        times = [d - t0 for d in r.done_at]
        label = f"{r.label}: {r.rate:.0f}/s, p99 {r.pct(99):.0f} ms"
        dots = lat.scatter(times, r.latencies_ms, s=2, alpha=0.35, label=label)
        bins = Counter(int(t / width) for t in times)
        last = max(bins)
        xs = [(i + 0.5) * width for i in range(last)]  # the last bin is partial: left out
        rate.plot(xs, [bins[i] / width for i in range(last)], color=dots.get_facecolor()[0][:3])
    lat.axhline(TARGET_P99_MS, color="red", linestyle="--", linewidth=1, label="p99 target")
    top = max(max(r.latencies_ms) for r in results)
    lat.set(xlabel="seconds into the phase", ylabel="latency of the click (ms)")
    lat.set_ylim(0, max(1.25 * top, 1.25 * TARGET_P99_MS))
    lat.legend(loc="upper right", fontsize=7, markerscale=4)
    rate.axhline(TARGET_RATE, color="red", linestyle="--", linewidth=1, label="rate target")
    rate.set(xlabel="seconds into the phase", ylabel="decisions per second (0.5 s bins)")
    rate.set_ylim(bottom=0)
    rate.legend(loc="lower right", fontsize=7)
    fig.suptitle(
        f"Finance clicks, run {tag}: {env['clients']} clients, {env['requests']} clicks per phase, "
        f"{env['cpus']} CPUs, machine speed {env['machine_speed_ms_before']:.0f} ms",
        fontsize=10,
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)
