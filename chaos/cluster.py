"""A throwaway platform on loopback for the chaos scripts: its own PostgreSQL cluster, its own
Redis (the broker; with ``cache=True`` also the cache and rate limits), gunicorn, a Celery worker
and beat, each of which can be killed (or frozen) and started again without touching anyone
else's servers.

Everything lives under one directory (``/tmp/scf-chaos-<pid>`` by default): the PostgreSQL data
directory (``initdb`` with the Debian binaries, run as the ``postgres`` user when we are root),
the beat schedule and every log. ``Cluster.close()`` stops it all; the directory is kept for the
logs unless ``keep=False``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv" / "bin"
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))

# Short leases, backoffs and sweeps, so a crash is recovered in seconds, not minutes; a sandbox
# bank with a little latency and a few faults of its own; an in-worker random kill now and then.
PLATFORM_ENV = {
    "DJANGO_SETTINGS_MODULE": "scf.settings.base",
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    "DISBURSEMENT_LEASE_SECONDS": "5",
    "DISBURSEMENT_SWEEP_INTERVAL_SECONDS": "3",
    "DISBURSEMENT_SWEEP_MIN_AGE_SECONDS": "5",
    "DISBURSEMENT_RETRY_BACKOFF_SECONDS": "0.2",
    "DISBURSEMENT_RETRY_BACKOFF_MAX_SECONDS": "2",
    "DISBURSEMENT_MAX_RETRIES": "100",
    "DISBURSEMENT_POLL_SECONDS": "0.5",
    "DISBURSEMENT_POLL_MAX_SECONDS": "2",
    "CELERY_VISIBILITY_TIMEOUT": "20",
    # The load drivers click faster than a person: keep the per-user rate limits out of the way.
    "API_RATE_FINANCE": "100000/min",
    "API_RATE_QUOTE": "100000/min",
    "SANDBOX_BANK": json.dumps(
        {
            "latency_ms": 20,
            "settle_delay_seconds": 0.5,
            "timeout_after_accept_rate": 0.05,
            "unavailable_rate": 0.05,
            "duplicate_reply_rate": 0.05,
        }
    ),
    "LOG_LEVEL": "INFO",
}


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def wait_port(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while port_free(port):
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {seconds}s")
        time.sleep(0.1)


class Process:
    """One server process in its own process group, restartable, logging to a file."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.command, self.env, self.log = name, command, env, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - our own commands
                self.command,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def freeze(self) -> None:
        """SIGSTOP the process: its sockets stay open and accept connections (the kernel
        completes the handshakes), but nothing answers: a hung server, not a dead one."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=20)


class Cluster:
    def __init__(
        self,
        base: Path | None = None,
        *,
        pg_port: int = 5499,
        redis_port: int = 6390,
        web_port: int = 8099,
        worker_chaos: str = "",
        cache: bool = False,
        env: dict[str, str] | None = None,
        keep: bool = True,
    ) -> None:
        self.base = base or Path(f"/tmp/scf-chaos-{os.getpid()}")  # noqa: S108 - a throwaway
        self.pg_port, self.redis_port, self.web_port = pg_port, redis_port, web_port
        self.keep = keep
        for port in (pg_port, redis_port, web_port):
            if not port_free(port):
                raise SystemExit(f"port {port} is taken: pick others (see chaos/README.md)")
        self.base.mkdir(parents=True, exist_ok=True)
        self.pgdata = self.base / "pg"
        self.database_url = f"postgres://postgres@127.0.0.1:{pg_port}/scf_chaos"
        self.broker_url = f"redis://127.0.0.1:{redis_port}/0"
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "PYTHONPATH")},
            **PLATFORM_ENV,
            "DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": self.broker_url,
            "PYTHONPATH": str(ROOT),
            **(env or {}),
        }
        if cache:  # the cache and the rate limits on the same Redis, another database
            self.env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/1"
        worker_env = dict(self.env)
        worker_app = "scf"
        if worker_chaos:  # the crash tests' worker: its pool processes kill themselves
            worker_env |= {"SCF_CHAOS_KILL": worker_chaos, "SCF_CHAOS_LOG": str(self.kill_log)}
            worker_app = "chaos.worker"
        celery = str(VENV_BIN / "celery")
        self.redis = Process(
            "redis",
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.base)],
            self.env, self.base / "redis.log",
        )  # fmt: skip
        self.web = Process(
            "web",
            [str(VENV_BIN / "gunicorn"), "scf.wsgi:application", "--bind",
             f"127.0.0.1:{web_port}", "--workers", "3", "--timeout", "30",
             "--graceful-timeout", "5"],
            self.env, self.base / "web.log",
        )  # fmt: skip
        self.worker = Process(
            "worker",
            [celery, "-A", worker_app, "worker", "-P", "prefork", "-c", "4", "--without-heartbeat",
             "--without-gossip", "--without-mingle", "-n", "chaos@%h", "--loglevel", "INFO"],
            worker_env, self.base / "worker.log",
        )  # fmt: skip
        self.beat = Process(
            "beat",
            [celery, "-A", "scf", "beat", "-s", str(self.base / "beat-schedule"),
             "--loglevel", "INFO"],
            self.env, self.base / "beat.log",
        )  # fmt: skip

    @property
    def kill_log(self) -> Path:
        return self.base / "worker-kills.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    # --- PostgreSQL ---------------------------------------------------------------------------

    def _as_postgres(self, command: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command

    def _pg_ctl(self, *args: str) -> None:
        command = [str(PG_BIN / "pg_ctl"), "-D", str(self.pgdata), *args]
        subprocess.run(  # noqa: S603 - our own commands
            self._as_postgres(command), check=True, capture_output=True, timeout=60
        )

    def pg_init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres")
        command = [str(PG_BIN / "initdb"), "-D", str(self.pgdata), "-U", "postgres",
                   "--auth=trust", "-E", "UTF8", "--no-sync"]  # fmt: skip
        subprocess.run(  # noqa: S603 - our own commands
            self._as_postgres(command), check=True, capture_output=True, timeout=120
        )

    def pg_start(self) -> None:
        options = (
            f"-p {self.pg_port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.base}"
            " -c fsync=off -c max_connections=60"
        )
        self._pg_ctl(
            "-l", str(self.base / "postgres.log"), "-w", "-t", "60", "-o", options, "start"
        )

    def pg_kill(self) -> None:
        """Immediate shutdown: every backend quits at once, no checkpoint; the next start runs
        crash recovery (what a killed or restarted server does)."""
        self._pg_ctl("-m", "immediate", "-w", "stop")

    # --- the platform -------------------------------------------------------------------------

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own commands
            [str(VENV_BIN / "python"), "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
            timeout=600,
        )

    def start(self) -> None:
        self.pg_init()
        self.pg_start()
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.pg_port, user="postgres")
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute("CREATE DATABASE scf_chaos")
        conn.close()
        self.manage("migrate", "--noinput")
        self.redis.start()
        wait_port(self.redis_port)
        self.web.start()
        self.worker.start()
        self.beat.start()
        wait_port(self.web_port, 60)

    def processes(self) -> list[Process]:
        return [self.web, self.worker, self.beat, self.redis]

    def close(self) -> None:
        for process in self.processes():
            process.kill(signal.SIGTERM)
        with contextlib.suppress(subprocess.CalledProcessError):
            self._pg_ctl("-m", "fast", "-w", "stop")
        if not self.keep:
            shutil.rmtree(self.base, ignore_errors=True)

    def summary(self) -> dict[str, Any]:
        return {p.name: p.starts for p in self.processes()}
