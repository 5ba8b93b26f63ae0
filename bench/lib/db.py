"""The bench's own PostgreSQL database, Django set up on it, the app's environment, Redis.

Everything runs on loopback only, and a database is only ever dropped if its name starts with
``scf_bench``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
SCRATCH_PREFIX = "scf_bench"


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


def bench_dsn(url: str) -> dict[str, Any]:
    """psycopg2's keywords for the bench database itself."""
    name, dsn = admin_dsn(url)
    return {**dsn, "dbname": name}


def scratch_name(url: str, prefix: str = SCRATCH_PREFIX) -> str:
    """The bench database's name; refuses any that does not start with ``prefix`` (a bench's
    own scratch database, ``scf_bench*`` at the least)."""
    name = admin_dsn(url)[0]
    if not name.startswith(prefix):
        raise SystemExit(f"the bench database's name must start with {prefix}, not {name!r}")
    return name


def ensure_database(url: str, *, fresh: bool = False) -> bool:
    """Create the bench database if it is missing (dropped first when ``fresh``, its sessions
    ended); True when it already existed and was kept."""
    import psycopg2
    from psycopg2 import sql

    name, dsn = admin_dsn(url)
    if fresh:
        scratch_name(url)
    conn = psycopg2.connect(**dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            if fresh:
                drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                cur.execute(drop.format(sql.Identifier(name)))
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cur.fetchone() is not None:
                return True
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return False
    finally:
        conn.close()


def app_env(url: str, **extra: str) -> dict[str, str]:
    """This process's environment with the production settings on the bench database, served
    on loopback and logging warnings only, for a server or worker the bench starts (or for this
    process: ``django_setup``); ``extra`` adds or overrides variables."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "scf.settings.base",
        "DATABASE_URL": url,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


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


def server_setting(name: str) -> str:
    """One of PostgreSQL's settings (``SHOW``) on Django's connection."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(f"SHOW {name}")
        return str(cur.fetchone()[0])


def analyze(*tables: str, vacuum: bool = False) -> None:
    """``ANALYZE`` (``VACUUM ANALYZE`` with ``vacuum``) the tables, or the whole database when
    none are named, on Django's connection."""
    from django.db import connection

    command = "VACUUM ANALYZE" if vacuum else "ANALYZE"
    with connection.cursor() as cur:
        for table in tables or ("",):
            cur.execute(f"{command} {connection.ops.quote_name(table)}" if table else command)


def redis_flush(url: str) -> None:
    """Empty the bench's own Redis database (a loopback ``redis://`` URL only)."""
    import redis

    parts = urlsplit(url)
    if parts.scheme != "redis" or (parts.hostname or "") not in LOOPBACK:
        raise SystemExit(f"the bench's Redis must be a loopback redis:// URL, not {url!r}")
    redis.Redis.from_url(url).flushdb()
