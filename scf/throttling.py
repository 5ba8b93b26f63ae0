"""Per-user rate limits for the expensive agent calls (finance and quote).

A fixed window per user and scope, counted with an atomic create-if-missing and increment (Redis
in production, one pipelined round trip, so every gunicorn process shares the count; the cache's
``add`` and ``incr`` in local memory otherwise). DRF's own ``UserRateThrottle`` keeps a list of
timestamps per user and rewrites it on every request: not atomic under a flash crowd, and a long
list at hundreds a minute. Over the limit, DRF answers 429
with ``Retry-After`` (seconds to the end of the window) and the project's error shape, before the
view runs, so nothing is written.

Rates come from ``settings.API_RATE_LIMITS`` (``{"finance": "120/min", ...}``, read at each
request so tests can override them). When the cache does not answer (Redis restarting), requests
are let through: a rate limit must never turn a cache outage into a finance outage.
"""

from __future__ import annotations

import logging
import time

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
    """Add one to the count under ``key`` (created at zero, expiring after ``ttl`` seconds) and
    return it. On Redis one round trip: ``SET key 0 EX ttl NX`` and ``INCR key`` pipelined (the
    cache API's ``add`` and ``incr`` would be three: ``incr`` checks that the key exists first).
    Elsewhere (local memory) the cache's ``add`` and ``incr``."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        full_key = backend.make_and_validate_key(key)
        # The backend's redis-py client: Django's cache API has no pipelined add-and-increment.
        client = backend._cache.get_client(full_key, write=True)  # type: ignore[attr-defined]
        pipe = client.pipeline(transaction=False)
        pipe.set(full_key, 0, ex=ttl, nx=True)
        pipe.incr(full_key)
        return int(pipe.execute()[1])
    backend.add(key, 0, timeout=ttl)
    try:
        return int(backend.incr(key))
    except ValueError:  # expired between add and incr
        backend.set(key, 1, timeout=ttl)
        return 1


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
