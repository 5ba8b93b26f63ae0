"""Where the CPU goes: per process from /proc, what busy PostgreSQL backends wait on, and how
fast the machine is right now.

Wall time on a shared machine depends on what else runs; CPU time per unit of work does not,
which is why the benches report it beside their rates.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TICK = os.sysconf("SC_CLK_TCK")


def proc_times(database: str) -> dict[int, tuple[str, int, float]]:
    """pid -> (kind, process group, user+system CPU seconds) for every process we can read.

    kind is ``postgres`` for the bench database's backends (autovacuum included),
    ``postgres-other`` for everything else of PostgreSQL (other databases' backends, and the
    WAL writer, checkpointer and background writer, which serve every database), else the
    command name.
    """
    out: dict[int, tuple[str, int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                data = f.read()
            comm = data[data.index("(") + 1 : data.rindex(")")]
            if comm == "postgres":
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    title = f.read().decode(errors="replace")
                ours = f" {database} " in title
                comm = "postgres" if ours else "postgres-other"
        except OSError:
            continue
        rest = data[data.rindex(")") + 2 :].split()
        out[int(entry)] = (comm, int(rest[2]), (int(rest[11]) + int(rest[12])) / TICK)
    return out


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy since it started."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]
    return (sum(parts[:8]) - idle) / TICK


def backend_cpu_seconds() -> float:
    """CPU time used so far by the PostgreSQL backend of Django's connection, to the
    nanosecond (``/proc/PID/schedstat``), read without a round trip to the backend."""
    from django.db import connection

    connection.ensure_connection()
    pid = connection.connection.get_backend_pid()
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e9


WAITS_SQL = """
SELECT wait_event_type, wait_event, left(regexp_replace(query, '\\s+', ' ', 'g'), 100)
FROM pg_stat_activity
WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()"""


@dataclass
class CpuMeter:
    """What a phase used: CPU seconds of the app under test (``is_app(pid, comm, pgrp)``),
    PostgreSQL, this client and the rest of the machine (from /proc), and what the busy backends
    were waiting on (sampled from ``pg_stat_activity`` every 20 ms on a connection of its own)."""

    is_app: Callable[[int, str, int], bool]
    dsn: dict[str, Any]
    start: dict[int, tuple[str, int, float]] = field(default_factory=dict)
    busy0: float = 0.0
    result: dict[str, float] = field(default_factory=dict)
    samples: int = 0
    waits: Counter[str] = field(default_factory=Counter)
    active: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _sample(self) -> None:
        import psycopg2

        conn = psycopg2.connect(**self.dsn)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                while not self._stop.wait(0.02):
                    cur.execute(WAITS_SQL)
                    self.samples += 1
                    for kind, event, query in cur.fetchall():
                        self.active += 1
                        if kind in ("Lock", "IO", "LWLock"):
                            query = re.sub(r"\d[\d.]*", "N", query.strip())[:56]
                            self.waits[f"{kind}:{event} <- {query}"] += 1
                        elif kind is None:
                            self.waits["on CPU"] += 1
        finally:
            conn.close()

    def __enter__(self) -> CpuMeter:
        self.start, self.busy0 = proc_times(self.dsn["dbname"]), machine_busy()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        end, busy = proc_times(self.dsn["dbname"]), machine_busy()
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        split = Counter[str]()
        me = os.getpid()
        for pid, (comm, pgrp, cpu) in end.items():
            used = cpu - self.start.get(pid, (comm, pgrp, 0.0))[2]
            if pid == me:
                split["client"] += used
            elif self.is_app(pid, comm, pgrp):
                split["app"] += used
            elif comm == "postgres":
                split["postgres"] += used
        total = busy - self.busy0
        split["other"] = max(0.0, total - sum(split.values()))
        split["total"] = total
        self.result = dict(split)

    def wait_profile(self) -> dict[str, Any]:
        """Average busy backends, and per wait the average number of backends in it."""
        n = max(self.samples, 1)
        top = {k: round(v / n, 2) for k, v in self.waits.most_common(6)}
        return {"active_backends": round(self.active / n, 2), "waits": top}


def machine_speed_ms() -> float:
    """Median time of a fixed single-threaded Python workload (string, dict and arithmetic work
    like a request's), in ms: a shared machine's speed drifts within minutes and from day to
    day, so runs are compared by it (the lower, the faster) and pairs are run side by side."""

    def workload() -> int:
        counts: dict[str, int] = {}
        for i in range(200_000):
            key = f"k{i % 1000}"
            counts[key] = counts.get(key, 0) + i
        return len(counts)

    times = []
    for _ in range(5):
        start = time.perf_counter()
        workload()
        times.append((time.perf_counter() - start) * 1e3)
    return sorted(times)[2]
