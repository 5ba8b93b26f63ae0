"""Per-user rate limits for the expensive agent calls (finance and quote).

A fixed window per user and scope, counted with an atomic increment (Redis ``INCR`` in
production, one round trip, so every gunicorn process shares the count; the cache's ``add`` and
``incr`` in local memory otherwise). DRF's own ``UserRateThrottle`` keeps a list of timestamps per
user and rewrites it on every request: not atomic under a flash crowd, and a long list at
hundreds a minute. Over the limit, DRF answers 429 with ``Retry-After`` (seconds to the end of
the window) and the project's error shape, before the view runs, so nothing is written.

Rates come from ``settings.API_RATE_LIMITS`` (``{"finance": "120/min", ...}``, read at each
request so tests can override them). When the cache does not answer (Redis restarting), requests
are let through: a rate limit must never turn a cache outage into a finance outage.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

logger = logging.getLogger(__name__)

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
clock = time.time  # replaced in tests, so a window cannot end halfway through one


def parse_rate(rate: str) -> tuple[int, int]:
    """``"120/min"`` -> ``(120, 60)``; the period's first letter counts (s, m, h, d)."""
    count, _, period = rate.partition("/")
    return int(count), _PERIODS[period.strip()[0].lower()]


def window_count(key: str, *, ttl: int) -> int:
    """Add one to the count under ``key`` (a missing key counts from zero; it expires ``ttl``
    seconds after the window's first count) and return it.

    On Redis, one ``INCR`` on a client kept per cache backend (Django's cache API would make
    three round trips, ``add``, ``exists``, ``incr``, and build a new redis-py client for each,
    about 50 microseconds of CPU apiece), and ``EXPIRE`` once per window, after the first count.
    Should that ``EXPIRE`` never arrive (the process dies in between), the key only lingers:
    keys are per window, so the next window counts afresh all the same. Elsewhere (local
    memory) the cache's ``add`` and ``incr``."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        client = _counter_client(backend)
        full_key = backend.make_key(key)
        count = int(client.incr(full_key))
        if count == 1:
            client.expire(full_key, ttl)
        return count
    backend.add(key, 0, timeout=ttl)
    try:
        return int(backend.incr(key))
    except ValueError:  # expired between add and incr
        backend.set(key, 1, timeout=ttl)
        return 1


def _counter_client(backend: RedisCache) -> Any:
    """The backend's redis-py client for writes, made once per backend instance (Django keeps
    one instance per thread; the client shares the backend's connection pool)."""
    client = getattr(backend, "_scf_counter_client", None)
    if client is None:
        client = backend._cache.get_client(write=True)  # type: ignore[attr-defined]
        backend._scf_counter_client = client  # type: ignore[attr-defined]
    return client


class UserScopeRateThrottle(BaseThrottle):
    """Limits each authenticated user to ``API_RATE_LIMITS[scope]`` calls per window."""

    scope = ""
    _wait: float | None = None

    def allow_request(self, request: Request, view: APIView) -> bool:
        user = request.user
        rate = settings.API_RATE_LIMITS.get(self.scope)
        if not rate or user is None or not user.is_authenticated or user.pk is None:
            return True  # unauthenticated callers are refused by the permission check
        limit, period = parse_rate(rate)
        now = clock()
        window = int(now // period)
        key = f"throttle:{self.scope}:{user.pk}:{window}"
        try:
            count = window_count(key, ttl=period + 1)
        except Exception as exc:
            logger.warning(
                "rate limit cache unavailable; request allowed",
                extra={"scope": self.scope, "error": type(exc).__name__},
            )
            return True
        if count <= limit:
            return True
        self._wait = (window + 1) * period - now
        return False

    def wait(self) -> float | None:
        return self._wait


class FinanceRateThrottle(UserScopeRateThrottle):
    scope = "finance"


class QuoteRateThrottle(UserScopeRateThrottle):
    scope = "quote"
