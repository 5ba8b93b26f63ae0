"""Child processes in their own group (gunicorn, a Celery worker), threads, time bounds.

A child is started with ``start_new_session=True`` so that it and everything it starts can be
stopped as one group, however the bench ends: ``exit_on_sigterm`` turns SIGTERM into the same
unwinding as Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from bench.lib.db import ROOT, app_env
from bench.lib.http import request

# --- time and threads -----------------------------------------------------------------------------


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        return self.at - time.monotonic()


def run_threads(
    count: int, target: Callable[[int], None], *, join_timeout: float | None = None
) -> float:
    """Start ``count`` threads at once; wall time from their release to the last one's end."""
    barrier = threading.Barrier(count + 1)

    def run(i: int) -> None:
        barrier.wait()
        target(i)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join(join_timeout)
    return time.perf_counter() - start


def exit_on_sigterm() -> None:
    """SIGTERM runs the ``finally`` blocks (children stopped, partial report) as Ctrl-C does."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


# --- child processes ------------------------------------------------------------------------------


def stop_group(proc: subprocess.Popen[bytes], *, timeout: float = 20) -> None:
    """Stop a process started with ``start_new_session=True`` and everything it started."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(port: int) -> bool:
    try:
        return request(port, "GET", "/healthz", timeout=5)[0] == 200
    except OSError:
        return False


@contextlib.contextmanager
def gunicorn(
    url: str,
    args: Sequence[str],
    *,
    log_path: Path,
    root: Path = ROOT,
    env: dict[str, str] | None = None,
) -> Iterator[tuple[int, int]]:
    """Serve the app of ``root`` (this checkout unless told) on the bench database ``url``, with
    ``args`` (workers, timeouts...), on a free loopback port until it answers ``/healthz``;
    yields (port, pid of the master, which leads its own process group) and stops the whole
    group however the caller ends. ``env`` adds to the production settings."""
    executable = Path(sys.executable).parent / "gunicorn"
    if not executable.exists():
        raise SystemExit(f"no gunicorn beside {sys.executable}: run this with .venv/bin/python")
    port = free_port()
    command = [str(executable), "scf.wsgi:application", *args, "--log-level", "warning"]
    command += ["--bind", f"127.0.0.1:{port}"]
    environ = app_env(url, PYTHONPATH=str(root), **(env or {}))
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            command, cwd=root, env=environ, stdout=log, stderr=log, start_new_session=True
        )
    try:
        deadline = Deadline(30)
        while not _healthy(port):
            if proc.poll() is not None:
                raise SystemExit(f"gunicorn exited ({proc.returncode}); see {log_path}")
            if deadline.left() < 0:
                raise SystemExit(f"gunicorn did not answer /healthz in 30 s; see {log_path}")
            time.sleep(0.2)
        yield port, proc.pid
    finally:
        stop_group(proc)
