"""Per-user rate limits for the expensive agent calls (finance and quote): one limiter for every
door.

``rate_limit`` is called where the service is entered (``loan_quote``, ``loan_finance_once``), so
the API, the portal and any later door share one count per user and scope, and none can go
around it. Over the limit it raises ``RateLimited`` (429, ``throttled``) before anything is
claimed or written; the API answers it with ``Retry-After`` (seconds to the end of the window)
and the project's error shape (``scf.api``), the portal with a page that says how long to wait.

A fixed window per user and scope, counted with an atomic increment (Redis ``INCR`` in
production, one round trip, so every gunicorn process shares the count; the cache's ``add`` and
``incr`` in local memory otherwise). DRF's own ``UserRateThrottle`` keeps a list of timestamps per
user and rewrites it on every request: not atomic under a flash crowd, and a long list at
hundreds a minute.

Rates come from ``settings.API_RATE_LIMITS`` (``{"finance": "120/min", ...}``, read at each
call so tests can override them). When the cache does not answer (Redis restarting, or hung: the
cache's socket timeouts bound the wait), the call is let through: a rate limit must never turn a
cache outage into a finance outage. For ``RATE_LIMIT_CACHE_RETRY_SECONDS`` after such a failure
the process does not ask the cache at all, so a hung Redis costs one request a second per
process its timeout, not every request.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

from scf.errors import ApplicationError

logger = logging.getLogger(__name__)

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
clock = time.time  # replaced in tests, so a window cannot end halfway through one
_cache_retry_at: float = 0  # monotonic time before which this process does not ask the cache


class RateLimited(ApplicationError):
    """Over the per-user limit: retry after ``retry_after`` seconds (the end of the window)."""

    code = "throttled"
    status_code = 429

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


def parse_rate(rate: str) -> tuple[int, int]:
    """``"120/min"`` -> ``(120, 60)``; the period's first letter counts (s, m, h, d)."""
    count, _, period = rate.partition("/")
    return int(count), _PERIODS[period.strip()[0].lower()]


def rate_limit(*, user_id: int, scope: str) -> None:
    """Count one ``scope`` call for the user; ``RateLimited`` when it is over the limit."""
    global _cache_retry_at
    rate = settings.API_RATE_LIMITS.get(scope)
    if not rate or time.monotonic() < _cache_retry_at:
        return
    limit, period = parse_rate(rate)
    now = clock()
    window = int(now // period)
    try:
        count = window_count(f"throttle:{scope}:{user_id}:{window}", ttl=period + 1)
    except Exception as exc:
        _cache_retry_at = time.monotonic() + settings.RATE_LIMIT_CACHE_RETRY_SECONDS
        logger.warning(
            "rate limit cache unavailable; requests allowed",
            extra={"scope": scope, "error": type(exc).__name__},
        )
        return
    if count > limit:
        wait = math.ceil((window + 1) * period - now)
        raise RateLimited(
            f"Too many requests. Try again in {wait} seconds.", retry_after=max(wait, 1)
        )


def window_count(key: str, *, ttl: int) -> int:
    """Add one to the count under ``key`` (a missing key counts from zero; it expires ``ttl``
    seconds after the window's first count) and return it.

    On Redis, one ``INCR`` on a client kept per cache backend (Django's cache API would make
    three round trips, ``add``, ``exists``, ``incr``, and build a new redis-py client for each),
    and ``EXPIRE`` once per window, after the first count.
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
    one instance per thread; the client shares the backend's connection pool, and with it the
    cache's socket timeouts)."""
    client = getattr(backend, "_scf_counter_client", None)
    if client is None:
        client = backend._cache.get_client(write=True)  # type: ignore[attr-defined]
        backend._scf_counter_client = client  # type: ignore[attr-defined]
    return client
