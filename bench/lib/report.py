"""What every bench reports the same way: the machine and database it ran on, latency
percentiles, and the JSON file of its results."""

from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path
from typing import Any

from bench.lib.db import server_setting


def environment(**extra: Any) -> dict[str, Any]:
    """The machine and PostgreSQL the bench runs on; ``extra`` adds the bench's own settings."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "postgresql": server_setting("server_version"),
        **extra,
    }


def load_average() -> list[float]:
    """The machine's 1, 5 and 15 minute load averages, to two places."""
    return [round(x, 2) for x in os.getloadavg()]


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile: the smallest value with at least ``p`` % of the values at or
    below it (0.0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


def latency_summary(latencies_ms: list[float]) -> dict[str, float]:
    """p50, p95, p99 and max of the latencies, in ms to two places."""
    return {
        "p50": round(percentile(latencies_ms, 50), 2),
        "p95": round(percentile(latencies_ms, 95), 2),
        "p99": round(percentile(latencies_ms, 99), 2),
        "max": round(max(latencies_ms, default=0.0), 2),
    }


def write_json(path: Path, payload: Any) -> None:
    """The results as indented JSON (Decimal, dates and the like as their strings)."""
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
