"""Request and task ids in JSON logs, ``/metrics`` (content, access, multi-process), ``/healthz``."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.db.utils import OperationalError
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families

from lending.models import CobRun, Decision, Disbursement
from scf.celery import app as celery_app
from scf.logging import JsonFormatter, RedactSecretsFilter, logging_config
from tests.conftest import REDIS_URL
from tests.lending.conftest import finance
from tests.lending.factories import CreditLineFactory, ProgramFactory
from tests.orders.factories import OrderFactory

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The configured console handler, writing JSON lines into a buffer, everything at INFO+."""
    handler = next(
        h
        for h in logging.getLogger().handlers
        if any(isinstance(f, RedactSecretsFilter) for f in h.filters)
    )
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    old_stream, old_formatter = handler.setStream(buffer), handler.formatter
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        yield buffer
    finally:
        root.setLevel(old_level)
        handler.setFormatter(old_formatter)
        handler.setStream(old_stream)  # type: ignore[arg-type]


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


# --- request ids and JSON logs -----------------------------------------------------------------


@pytest.mark.django_db
def test_every_response_gets_a_request_id_and_a_sane_incoming_one_is_kept() -> None:
    fresh = Client().get("/healthz")
    assert len(fresh["X-Request-ID"]) == 32 and int(fresh["X-Request-ID"], 16) >= 0
    assert Client().get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a:42").headers["X-Request-ID"] == (
        "lb-7f3a:42"
    )
    for insane in ("two words", "x" * 65, "<script>", "a\u00e9b"):
        echoed = Client().get("/healthz", HTTP_X_REQUEST_ID=insane)["X-Request-ID"]
        assert echoed != insane and len(echoed) == 32


@pytest.mark.django_db
def test_log_lines_are_json_objects_carrying_the_request_id(json_log: io.StringIO) -> None:
    response = Client().post(
        "/api/v1/integrations/orders/webhook/",
        data=b"{}",
        content_type="application/json",
        HTTP_X_REQUEST_ID="req-obs-1",
    )
    assert response.status_code == 401
    records = lines(json_log)
    rejected = [r for r in records if r["message"] == "order webhook rejected"]
    assert rejected, records
    line = rejected[0]
    assert line["request_id"] == "req-obs-1"
    assert line["level"] == "WARNING"
    assert line["logger"] == "integrations.feed.signing"
    assert line["reason"] == "missing_headers"  # extras travel as fields
    assert dt.datetime.fromisoformat(line["time"]).tzinfo is not None
    assert line["task_id"] is None
    # Outside a request there is no id.
    logging.getLogger("scf.test").warning("after the request")
    assert lines(json_log)[-1]["request_id"] is None


@celery_app.task(name="tests.security.log_something")
def log_something() -> None:
    logging.getLogger("scf.test.task").warning("inside the task")


def test_log_lines_in_a_celery_task_carry_its_task_id(json_log: io.StringIO) -> None:
    result = log_something.apply(task_id="task-obs-1")
    assert result.successful()
    logging.getLogger("scf.test.task").warning("after the task")
    inside, after = [r for r in lines(json_log) if r["logger"] == "scf.test.task"]
    assert inside["task_id"] == "task-obs-1"
    assert after["task_id"] is None


def test_production_logs_json_and_development_logs_plain(monkeypatch: Any) -> None:
    import importlib

    monkeypatch.setenv("DJANGO_SECRET_KEY", "x" * 60)
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    production = importlib.reload(importlib.import_module("scf.settings.production"))

    assert production.LOGGING["handlers"]["console"]["formatter"] == "json"
    assert logging_config(level="INFO", fmt="plain")["handlers"]["console"]["formatter"] == "plain"
    assert production.CELERY_WORKER_HIJACK_ROOT_LOGGER is False


# --- /metrics ----------------------------------------------------------------------------------


def scrape(client: Client | None = None, **extra: Any) -> dict[str, dict[tuple[Any, ...], float]]:
    response = (client or Client()).get("/metrics", **extra)
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("text/plain")
    samples: dict[str, dict[tuple[Any, ...], float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[key] = sample.value
    return samples


def test_metrics_report_latency_decisions_disbursements_and_cob(
    agent: Any, agent_client: Any
) -> None:
    program = ProgramFactory(enterprise=agent.enterprises.first())
    CreditLineFactory(agent=agent, program=program)
    order = OrderFactory(agent=agent, enterprise=program.enterprise)
    assert finance(agent_client, order.pk, key="m-1").status_code == 201
    now = dt.datetime.now(dt.UTC)
    CobRun.objects.create(
        program=program,
        business_date=dt.date(2026, 1, 5),
        started_at=now - dt.timedelta(seconds=2.5),
        finished_at=now,
    )

    samples = scrape()

    latency = samples["scf_http_request_duration_seconds_count"]
    finance_key = (("method", "POST"), ("status", "2xx"), ("view", "orders-finance"))
    assert latency[finance_key] >= 1, sorted(latency)
    buckets = samples["scf_http_request_duration_seconds_bucket"]
    assert buckets[(("le", "+Inf"), *finance_key)] == latency[finance_key]
    decisions = samples["scf_decisions_total"]
    for outcome in ("approved", "in_review", "declined"):
        expected = Decision.objects.filter(outcome=outcome).count()
        assert decisions[(("outcome", outcome),)] == expected
    assert sum(decisions.values()) == Decision.objects.count() >= 1
    disbursements = samples["scf_disbursements"]
    for status in ("pending", "sent", "settled", "failed"):
        assert (
            disbursements[(("status", status),)]
            == Disbursement.objects.filter(status=status).count()
        )
    assert samples["scf_cob_duration_seconds_count"][()] == 1
    assert samples["scf_cob_duration_seconds_sum"][()] == pytest.approx(2.5)
    assert samples["scf_cob_last_duration_seconds"][(("program", str(program.pk)),)] == (
        pytest.approx(2.5)
    )


@pytest.mark.django_db
def test_metrics_are_refused_from_other_addresses() -> None:
    assert Client(REMOTE_ADDR="203.0.113.9").get("/metrics").status_code == 404
    assert Client(REMOTE_ADDR="::1").get("/metrics").status_code == 200
    bearer = {"HTTP_AUTHORIZATION": "Bearer metrics-token-0123456789"}
    with override_settings(
        METRICS_ALLOWED_IPS=["203.0.113.0/24"], METRICS_TOKEN="metrics-token-0123456789"
    ):
        assert Client(REMOTE_ADDR="203.0.113.9").get("/metrics", **bearer).status_code == 200
        assert Client().get("/metrics", **bearer).status_code == 404


@pytest.mark.django_db
def test_metrics_without_a_token_are_served_to_loopback_only() -> None:
    """Without a token nothing but the address says who asks, so only this machine may; a
    wider METRICS_ALLOWED_IPS is honoured only together with a token."""
    with override_settings(METRICS_ALLOWED_IPS=["*"], METRICS_TOKEN=""):
        assert Client(REMOTE_ADDR="203.0.113.9").get("/metrics").status_code == 404
        assert Client(REMOTE_ADDR="10.0.0.7").get("/metrics").status_code == 404
        assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200
        assert Client(REMOTE_ADDR="::1").get("/metrics").status_code == 200
    with override_settings(METRICS_ALLOWED_IPS=["203.0.113.0/24"], METRICS_TOKEN=""):
        assert Client(REMOTE_ADDR="203.0.113.9").get("/metrics").status_code == 404


def series(samples: dict[str, dict[tuple[Any, ...], float]]) -> set[tuple[Any, ...]]:
    return set(samples["scf_http_request_duration_seconds_count"])


@pytest.mark.django_db
def test_made_up_methods_paths_and_statuses_add_no_latency_series() -> None:
    """Found: 150 requests with invented HTTP methods doubled the scrape, one series each."""
    client = Client()
    for method in ("BREW", "GET"):  # the buckets junk falls into exist once, then never grow
        client.generic(method, "/no-such-page-0")
        client.generic(method, "/")
    before = series(scrape())
    for i in range(150):
        client.generic(f"X{i}-{uuid.uuid4().hex[:6]}", f"/no-such-page-{i}/")
        client.generic(f"m{i}", "/")
        client.get(f"/junk/{uuid.uuid4().hex}")
    after = series(scrape())
    assert after - before <= {  # at most the scrapes' own series
        (("method", "GET"), ("status", "2xx"), ("view", "metrics"))
    }
    labels = {name: {dict(key)[name] for key in after} for name in ("method", "status")}
    assert labels["method"] <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    assert labels["status"] <= {"1xx", "2xx", "3xx", "4xx", "5xx", "other"}
    assert "other" in labels["method"]


@pytest.mark.django_db
@override_settings(METRICS_TOKEN="metrics-token-0123456789")
def test_metrics_token_is_required_when_set() -> None:
    assert Client().get("/metrics").status_code == 404
    wrong = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 404
    ok = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token-0123456789")
    assert ok.status_code == 200


@pytest.mark.redis
@pytest.mark.django_db
def test_queue_depth_is_read_from_redis_and_a_dead_broker_is_reported() -> None:
    import redis

    queue = f"scf-metrics-test-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(REDIS_URL)
    client.lpush(queue, "a", "b", "c")
    client.lpush(f"{queue}\x06\x163", "d")  # a priority sub-queue counts too
    try:
        with override_settings(
            CELERY_TASK_ALWAYS_EAGER=False,
            CELERY_BROKER_URL=REDIS_URL,
            METRICS_CELERY_QUEUES=[queue],
        ):
            samples = scrape()
            assert samples["scf_celery_broker_up"][()] == 1
            assert samples["scf_celery_queue_length"][(("queue", queue),)] == 4
        with override_settings(
            CELERY_TASK_ALWAYS_EAGER=False,
            CELERY_BROKER_URL="redis://127.0.0.1:1/0",
            METRICS_CELERY_QUEUES=[queue],
        ):
            started = time.monotonic()
            samples = scrape()
            assert time.monotonic() - started < 5
            assert samples["scf_celery_broker_up"][()] == 0
            assert "scf_celery_queue_length" not in samples
            assert "scf_decisions_total" in samples  # the rest of the scrape still answers
    finally:
        client.delete(queue, f"{queue}\x06\x163")


def test_request_latency_is_merged_across_processes_in_multiprocess_mode(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "scf.settings.test",
        "DATABASE_URL": "sqlite://:memory:",
        "LOG_LEVEL": "ERROR",
    }
    observe = (
        "import django; django.setup(); from scf.metrics import observe_request; "
        "observe_request(view='v', method='GET', status=200, seconds=0.01)"
    )
    for _ in range(2):  # two worker processes, each observing one request
        subprocess.run([sys.executable, "-c", observe], cwd=ROOT, env=env, check=True, timeout=120)
    report = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from scf.metrics import exposition; "
            "import sys; sys.stdout.write(exposition().decode())",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
    ).stdout
    counts = [
        s.value
        for family in text_string_to_metric_families(report)
        for s in family.samples
        if s.name == "scf_http_request_duration_seconds_count" and s.labels.get("view") == "v"
    ]
    assert counts == [2.0]


# --- /healthz ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_healthz_reports_database_and_eager_broker() -> None:
    body = Client().get("/healthz").json()
    assert body == {"status": "ok", "database": "ok", "broker": "eager"}


@pytest.mark.django_db
def test_healthz_is_503_with_retry_after_when_the_database_does_not_answer() -> None:
    with mock.patch("scf.health.connection.cursor", side_effect=OperationalError("down")):
        response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "unavailable"
    assert response.json()["status"] == "unavailable"
    assert int(response["Retry-After"]) >= 1


@pytest.fixture
def broker_url() -> Iterator[Any]:
    old = celery_app.conf.broker_url

    def use(url: str) -> None:
        celery_app.conf.broker_url = url

    with override_settings(CELERY_TASK_ALWAYS_EAGER=False):
        yield use
    celery_app.conf.broker_url = old


@pytest.mark.django_db
def test_healthz_reports_an_unreachable_broker(broker_url: Any) -> None:
    broker_url("redis://127.0.0.1:1/0")
    response = Client().get("/healthz")
    assert response.status_code == 200  # the database answers: still serving
    assert response.json() == {"status": "degraded", "database": "ok", "broker": "unavailable"}
    assert "Retry-After" not in response


@pytest.mark.redis
@pytest.mark.django_db
def test_healthz_reports_a_reachable_broker(broker_url: Any) -> None:
    broker_url(REDIS_URL)
    assert Client().get("/healthz").json()["broker"] == "ok"
