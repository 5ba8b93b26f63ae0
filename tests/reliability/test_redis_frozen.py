"""A hung Redis must not stall the web tier (issue 18, item 1).

Redis is frozen with SIGSTOP, not stopped: its socket stays open, the kernel still completes
connections, and nothing answers. Without timeouts, every client waits until it resumes: the
health check (three of them held all three sync workers, and pages that never touch Redis waited
18 s), the rate limiter (redis-py's default 5 s on every quote and finance click) and a Celery
publish (kombu's Redis transport has no socket timeout of its own). Each test freezes a
``redis-server`` of its own (a free port); a watchdog resumes it after a few seconds, so the code
before the fix fails these tests instead of hanging them.

``chaos/redis_freeze.py`` runs the full scenario under load, with a worker and beat, and checks
that nothing is lost (docs/reliability.md).
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings
from django.test import Client, override_settings
from django.urls import get_resolver

from lending.models import Loan
from scf import throttling
from scf.celery import app as celery_app
from tests.conftest import client_for
from tests.lending.conftest import finance
from tests.orders.factories import OrderFactory
from tests.reliability.workers import (
    ROOT,
    RedisServer,
    agent_users,
    django_env,
    free_port,
    sending_to,
)

pytestmark = pytest.mark.redis

WATCHDOG_SECONDS = 8.0  # the old code waits for Redis: resume it then, and see the wait
HEALTH_BOUND = settings.HEALTH_CHECK_BROKER_TIMEOUT + 0.5


@pytest.fixture
def redis_server(tmp_path: Path, monkeypatch: Any) -> Iterator[RedisServer]:
    monkeypatch.setattr(throttling, "_cache_retry_at", 0.0)
    server = RedisServer(tmp_path).start()
    try:
        yield server
    finally:
        server.thaw()
        server.kill()


@contextmanager
def frozen(server: RedisServer) -> Iterator[RedisServer]:
    """``server`` frozen; resumed by a watchdog after WATCHDOG_SECONDS at the latest."""
    server.freeze()
    watchdog = threading.Timer(WATCHDOG_SECONDS, server.thaw)
    watchdog.start()
    try:
        yield server
    finally:
        watchdog.cancel()
        server.thaw()


@pytest.fixture
def frozen_redis(redis_server: RedisServer) -> Iterator[RedisServer]:
    get_resolver().url_patterns  # every view imported first, as a web process does
    with frozen(redis_server):
        yield redis_server


def timed(call: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    started = time.monotonic()
    try:
        result = call(*args, **kwargs)
    except Exception as exc:  # what a failed call raised is its result here
        result = exc
    return result, time.monotonic() - started


@pytest.mark.django_db
def test_healthz_answers_within_its_bound_and_reports_the_hung_broker(
    frozen_redis: RedisServer,
) -> None:
    with sending_to(frozen_redis.url), override_settings(CELERY_TASK_ALWAYS_EAGER=False):
        response, seconds = timed(Client().get, "/healthz")
        assert seconds < HEALTH_BOUND, f"healthz took {seconds:.1f}s"
        assert response.status_code == 200  # the database answers: keep sending traffic
        assert response.json() == {"status": "degraded", "database": "ok", "broker": "timeout"}

        # Checks that come while a probe is still running wait on that probe: one thread.
        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda _: timed(Client().get, "/healthz"), range(3)))
        assert max(seconds for _, seconds in answers) < HEALTH_BOUND
        probes = [t for t in threading.enumerate() if t.name == "healthz-broker"]
        assert len(probes) <= 1

        frozen_redis.thaw()
        deadline = time.monotonic() + 5
        while Client().get("/healthz").json()["broker"] != "ok":
            assert time.monotonic() < deadline, "the broker never came back as ok"
            time.sleep(0.1)


@pytest.mark.django_db
def test_a_finance_click_waits_at_most_the_cache_timeout_for_the_rate_limit(
    frozen_redis: RedisServer,
) -> None:
    cache = {**settings.CACHES["default"], "LOCATION": frozen_redis.url}
    [user] = agent_users(1)
    api = client_for(user)
    enterprise = user.agent.enterprises.first()
    orders = [OrderFactory(agent=user.agent, enterprise=enterprise) for _ in range(3)]
    with override_settings(CACHES={"default": cache}):
        first, seconds = timed(finance, api, orders[0].pk, key="f-0")
        assert first.status_code == 201  # the limiter gives up and lets the click through
        assert seconds < settings.CACHE_READ_TIMEOUT + settings.CACHE_CONNECT_TIMEOUT + 1.0
        # For a while the process does not ask the hung cache again: no wait at all.
        for i, order in enumerate(orders[1:], start=1):
            reply, seconds = timed(finance, api, order.pk, key=f"f-{i}")
            assert reply.status_code == 201 and seconds < 1.0
    assert Loan.objects.filter(order__in=orders).count() == 3


def test_a_publish_to_a_hung_broker_gives_up_within_its_bound(frozen_redis: RedisServer) -> None:
    """The relay's publish (a background thread of the web process) fails in seconds, and the
    outbox sweeper sends the payment later, instead of waiting on Redis for as long as it hangs."""
    with sending_to(frozen_redis.url) as app:
        error, seconds = timed(app.send_task, "integrations.disburse_loans", args=[[1]])
    assert isinstance(error, Exception)
    assert seconds < 5.0, f"the publish took {seconds:.1f}s"


def test_only_the_publishing_connections_have_the_short_timeouts() -> None:
    """A worker's consuming connection keeps kombu's defaults: with a short read timeout a
    worker stopped consuming for good after a freeze (chaos/redis_freeze.py)."""
    with celery_app.connection_for_write() as write, celery_app.connection_for_read() as read:
        assert write.transport_options["socket_timeout"] == settings.BROKER_READ_TIMEOUT
        assert write.transport_options["socket_connect_timeout"] == (
            settings.BROKER_CONNECT_TIMEOUT
        )
        assert "socket_timeout" not in read.transport_options
    with celery_app.connection_for_write(transport_options={"socket_timeout": 0.1}) as own:
        assert own.transport_options["socket_timeout"] == 0.1  # the health check sets its own


# --- the web tier, for real: gunicorn's sync workers ------------------------------------------


@pytest.fixture
def gunicorn(redis_server: RedisServer, tmp_path: Path) -> Iterator[str]:
    """gunicorn with 3 sync workers on the test database, its broker and cache on our Redis."""
    port = free_port()
    env = django_env(CELERY_BROKER_URL=redis_server.url, REDIS_URL=redis_server.url)
    log = (tmp_path / "gunicorn.log").open("ab")
    command = [
        str(ROOT / ".venv" / "bin" / "gunicorn"), "scf.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--workers", "3", "--timeout", "60",
        "--preload",  # the app imported once, before the fork: a quicker start
    ]  # fmt: skip
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90  # a busy machine starts slowly
        while True:
            try:
                requests.get(f"{base}/accounts/login/", timeout=5)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_health_checks_do_not_hold_the_sync_workers_while_redis_hangs(
    gunicorn: str, redis_server: RedisServer
) -> None:
    """Three health checks at once took all three workers; a page that never touches Redis
    then waited for Redis too."""
    with frozen(redis_server), ThreadPoolExecutor(4) as pool:
        checks = [pool.submit(timed, requests.get, f"{gunicorn}/healthz", timeout=30)]
        checks += [pool.submit(timed, requests.get, f"{gunicorn}/healthz", timeout=30)]
        checks += [pool.submit(timed, requests.get, f"{gunicorn}/healthz", timeout=30)]
        time.sleep(0.1)  # the checks are in the workers
        page, page_seconds = timed(requests.get, f"{gunicorn}/accounts/login/", timeout=30)
        answers = [check.result() for check in checks]
    assert page.status_code == 200
    assert page_seconds < HEALTH_BOUND + 1.0, f"the page waited {page_seconds:.1f}s"
    for response, seconds in answers:
        assert response.status_code == 200 and response.json()["status"] == "degraded"
        assert seconds < HEALTH_BOUND + 1.0, f"a health check took {seconds:.1f}s"
