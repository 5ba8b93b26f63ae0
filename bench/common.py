"""What every benchmark needs: its own PostgreSQL database, Django set up on it, gunicorn, threads.

Imported by the scripts beside it (``python bench/<name>.py`` puts this folder on the path).
Everything runs on loopback only, and a database is only ever dropped if its name starts with
``scf_bench``.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


# --- the database ---------------------------------------------------------------------------------


def admin_dsn(url: str) -> tuple[str, dict[str, Any]]:
    """The bench database's name, and how to reach the server's ``postgres`` database."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        raise SystemExit(f"DATABASE_URL must be PostgreSQL, not {parts.scheme!r}")
    host, name = parts.hostname or "127.0.0.1", unquote(parts.path[1:])
    if name.startswith("/"):  # a Unix socket's directory, as django-environ reads it
        host, name = name.rsplit("/", 1)  # postgres://postgres@//var/run/postgresql/NAME
    elif host not in LOOPBACK:
        raise SystemExit(
            "the benchmark runs on this machine only: use a PostgreSQL on 127.0.0.1 or its "
            "Unix socket (postgres://postgres@//var/run/postgresql/scf_bench_NAME)"
        )
    dsn: dict[str, Any] = {
        "host": host,
        "port": parts.port or 5432,
        "user": unquote(parts.username or "postgres"),
        "dbname": "postgres",
    }
    if parts.password:
        dsn["password"] = unquote(parts.password)
    return name, dsn


def ensure_database(url: str, *, fresh: bool = False) -> bool:
    """Create the bench database if it is missing (dropped first when ``fresh``, its sessions
    ended); True when it already existed and was kept."""
    import psycopg2
    from psycopg2 import sql

    name, dsn = admin_dsn(url)
    conn = psycopg2.connect(**dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            if fresh:
                if not name.startswith("scf_bench"):
                    raise SystemExit(f"only a scf_bench* database is ever dropped, not {name!r}")
                drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                cur.execute(drop.format(sql.Identifier(name)))
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cur.fetchone() is not None:
                return True
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return False
    finally:
        conn.close()


def django_setup(url: str, env: dict[str, str] | None = None) -> None:
    """Django on the bench database with production-like settings, migrated."""
    os.environ.update(env or {})
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "scf.settings.base"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.pop("REDIS_URL", None)  # local-memory cache: the bench measures the app, not Redis
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


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


# --- gunicorn -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


@contextlib.contextmanager
def gunicorn(
    args: Sequence[str], *, env: dict[str, str], log_path: Path, cwd: Path = ROOT
) -> Iterator[tuple[int, int]]:
    """Serve the app (``args``: workers, timeouts...) on a free loopback port until it answers
    ``/healthz``; yields (port, pid of the master, which leads its own process group) and stops
    the whole group however the caller ends."""
    executable = Path(sys.executable).parent / "gunicorn"
    if not executable.exists():
        raise SystemExit(f"no gunicorn beside {sys.executable}: run this with .venv/bin/python")
    port = free_port()
    command = [str(executable), "scf.wsgi:application", *args, "--bind", f"127.0.0.1:{port}"]
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=log, stderr=log, start_new_session=True
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


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process started with ``start_new_session=True`` and everything it started."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass
