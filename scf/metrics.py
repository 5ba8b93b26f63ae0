"""Prometheus metrics at ``GET /metrics``.

Two kinds, chosen so that gunicorn's several worker processes report one truth:

- Request latency (``scf_http_request_duration_seconds{view,method,status}``: the route's
  name, the method if a standard one (else ``other``), the status class ``2xx``..``5xx``) is
  observed in each process. With ``PROMETHEUS_MULTIPROC_DIR`` set (before the process starts; gunicorn's
  ``--env`` or the service's environment), prometheus_client writes it to memory-mapped files in
  that directory and the scrape merges every process's files; without it, a single process
  reports its own.
- Business figures are read from the database (or Redis) at scrape time by the collectors the
  apps register (``business_collector_register``; lending's are in ``lending/metrics.py``), so
  every process answers the same and nothing is lost on restart; and the Celery queue depth
  (``scf_celery_queue_length``, ``LLEN`` of each queue's Redis lists; ``scf_celery_broker_up`` is
  0 and the depth absent when Redis does not answer).

Access: without ``METRICS_TOKEN``, loopback clients only (whatever ``METRICS_ALLOWED_IPS``
says). With it, a request must carry ``Authorization: Bearer <token>`` and come from
``METRICS_ALLOWED_IPS`` (default loopback only; ``*`` for any). A reverse proxy on the same host
makes every client look like loopback: set the token there. Anything else gets a 404, so the
endpoint is not advertised.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from collections.abc import Iterable, Iterator
from typing import Any

from django.conf import settings
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Registered in prometheus_client's default registry; in multiprocess mode its values live in
# PROMETHEUS_MULTIPROC_DIR instead of this process's memory.
REQUEST_LATENCY = Histogram(
    "scf_http_request_duration_seconds",
    "Time to answer an HTTP request, by view, method and status class.",
    ["view", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

# Every label value comes from a fixed set, whatever the client sends: each new value is a new
# series in every process (and a file in PROMETHEUS_MULTIPROC_DIR), so a client inventing HTTP
# methods could otherwise grow the scrape without bound. The view label is the route's name
# from the URL conf (or ``<unresolved>``, set by ``scf.middleware``), never the path.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER = "other"


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else OTHER


def status_label(status: int) -> str:
    """``201`` -> ``"2xx"``; anything outside 100-599 is ``other``."""
    return f"{status // 100}xx" if 100 <= status <= 599 else OTHER


def observe_request(*, view: str, method: str, status: int, seconds: float) -> None:
    REQUEST_LATENCY.labels(
        view=view, method=method_label(method), status=status_label(status)
    ).observe(seconds)


# Collectors of figures read at scrape time, by name: each app registers its own from its
# AppConfig.ready (lending's decisions, disbursements and close of business), so this module
# knows no app's models.
_business: dict[str, Collector] = {}


def business_collector_register(name: str, collector: Collector) -> None:
    """Report ``collector``'s figures at every scrape (registering a name again replaces it)."""
    _business[name] = collector


class QueueCollector(Collector):
    """The Celery queue depth and whether the broker answered."""

    def collect(self) -> Iterator[Metric]:
        url = settings.CELERY_BROKER_URL
        if settings.CELERY_TASK_ALWAYS_EAGER or not url.startswith(("redis://", "rediss://")):
            return
        up = GaugeMetricFamily("scf_celery_broker_up", "1 when the Celery broker answered.")
        try:
            depths = queue_depths(url, settings.METRICS_CELERY_QUEUES)
        except Exception as exc:  # Redis down: say so, never fail the scrape
            logger.warning("metrics: broker unavailable", extra={"error": type(exc).__name__})
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        family = GaugeMetricFamily(
            "scf_celery_queue_length", "Tasks waiting in each Celery queue.", labels=["queue"]
        )
        for queue, depth in depths.items():
            family.add_metric([queue], depth)
        yield family


def queue_depths(url: str, queues: Iterable[str]) -> dict[str, int]:
    """``LLEN`` of each queue, its priority sub-queues included (kombu's ``<q>\\x06\\x16<n>``)."""
    import redis

    client = redis.Redis.from_url(
        url,
        socket_connect_timeout=settings.BROKER_CONNECT_TIMEOUT,
        socket_timeout=settings.BROKER_READ_TIMEOUT,
    )
    try:
        depths: dict[str, int] = {}
        for queue in queues:
            keys = [queue, *(f"{queue}\x06\x16{p}" for p in range(1, 10))]
            with client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.llen(key)
                depths[queue] = sum(int(n) for n in pipe.execute())
        return depths
    finally:
        client.close()


def safely(source: Any) -> Iterator[Metric]:
    """The metrics ``source()`` yields; none if it fails (logged), so the scrape goes on."""
    try:
        yield from source()
    except Exception as exc:  # a database hiccup must not take the latency metrics down
        logger.warning("metrics: collector failed", extra={"error": type(exc).__name__})


def exposition() -> bytes:
    """What a scrape reports: every process's request metrics, and the business figures."""
    from prometheus_client import REGISTRY

    business = CollectorRegistry()
    for collector in _business.values():
        business.register(collector)
    business.register(QueueCollector())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        merged = CollectorRegistry()
        MultiProcessCollector(merged)
        return generate_latest(merged) + generate_latest(business)
    return generate_latest(REGISTRY) + generate_latest(business)


def client_allowed(request: HttpRequest) -> bool:
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    token = settings.METRICS_TOKEN
    if not token:  # no secret to check: this machine only, whatever METRICS_ALLOWED_IPS says
        return address.is_loopback
    sent = request.headers.get("Authorization", "")
    if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        return False
    allowed = settings.METRICS_ALLOWED_IPS
    return "*" in allowed or any(
        address in ipaddress.ip_network(net, strict=False) for net in allowed
    )


def metrics_view(request: HttpRequest) -> HttpResponse:
    if request.method != "GET" or not client_allowed(request):
        raise Http404
    return HttpResponse(exposition(), content_type=CONTENT_TYPE)


def counts_by(family: Any, model: Any, field: str, values: list[str]) -> Any:
    """One sample per value of ``field`` (0 for values no row has), counted in one query."""
    counts = dict(model.objects.values_list(field).annotate(n=Count("id")).values_list(field, "n"))
    for value in values:
        family.add_metric([value], counts.get(value, 0))
    return family
