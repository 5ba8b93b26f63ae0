"""Per-user rate limits on quote and finance, one count for every door (API and portal): 429,
Retry-After, the error shape or a friendly page, nothing written."""

from __future__ import annotations

import time
from typing import Any
from unittest import mock

import pytest
import redis
from django.conf import settings
from django.core.cache import cache, caches
from django.test import Client, override_settings

from lending.models import Decision, IdempotencyRecord, Loan
from scf import throttling
from scf.throttling import parse_rate, window_count
from tests.conftest import REDIS_URL, client_for
from tests.lending.conftest import finance
from tests.lending.factories import CreditLineFactory, ProgramFactory
from tests.orders.factories import AgentFactory, OrderFactory, UserFactory

pytestmark = pytest.mark.django_db

# One second into a minute: every request of a test falls in the same window.
NOW = (int(time.time()) // 60) * 60 + 1.0


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: Any) -> Any:
    # A cache outage in an earlier test must not leave this process skipping the cache.
    monkeypatch.setattr(throttling, "_cache_retry_at", 0.0)
    with mock.patch("scf.throttling.clock", return_value=NOW):
        yield


def forget_counts(user: Any) -> None:
    """Counts live in the shared cache keyed by user id: start this user's windows at zero."""
    window = int(NOW // 60)
    for scope in ("finance", "quote"):
        cache.delete_many([f"throttle:{scope}:{user.pk}:{window}"])


@pytest.fixture
def side(enterprise: Any) -> Any:
    program = ProgramFactory(enterprise=enterprise)

    def make() -> tuple[Any, Any]:
        client, orders, _ = make_with_portal()
        return client, orders

    def make_with_portal() -> tuple[Any, Any, Client]:
        agent = AgentFactory(enterprises=[enterprise])
        CreditLineFactory(agent=agent, program=program)
        user = UserFactory(role="agent", agent=agent)
        forget_counts(user)
        orders = [OrderFactory(agent=agent, enterprise=enterprise) for _ in range(4)]
        portal = Client()
        portal.force_login(user)
        return client_for(user), orders, portal

    make.with_portal = make_with_portal  # type: ignore[attr-defined]
    return make


def portal_finance(portal: Client, order_id: int, key: str, **extra: Any) -> Any:
    return portal.post(f"/orders/{order_id}/finance/", {"idempotency_key": key}, **extra)


def nothing_written_for(order: Any, key: str) -> bool:
    return not (
        Loan.objects.filter(order=order).exists()
        or Decision.objects.filter(loan__order=order).exists()
        or IdempotencyRecord.objects.filter(key=key).exists()
    )


def test_default_rates_are_generous_and_the_test_rates_do_not_trip_the_race_tests() -> None:
    from scf.settings import base

    assert parse_rate(base.API_RATE_LIMITS["finance"]) == (120, 60)
    assert parse_rate(base.API_RATE_LIMITS["quote"]) == (600, 60)
    assert parse_rate(settings.API_RATE_LIMITS["finance"])[0] >= 10_000


def test_parse_rate_reads_count_and_period() -> None:
    assert parse_rate("5/s") == (5, 1)
    assert parse_rate("120/min") == (120, 60)
    assert parse_rate("1000/hour") == (1000, 3600)
    assert parse_rate("7/day") == (7, 86400)


@override_settings(API_RATE_LIMITS={"finance": "2/min", "quote": "600/min"})
def test_finance_over_the_limit_is_429_with_retry_after_and_writes_nothing(side: Any) -> None:
    client, orders = side()
    for i, order in enumerate(orders[:2]):
        assert finance(client, order.pk, key=f"k-{i}").status_code == 201

    response = finance(client, orders[2].pk, key="k-2")
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert response.json()["fields"] == {}
    assert "detail" in response.json()
    assert int(response["Retry-After"]) == 59  # to the end of the minute
    assert not Loan.objects.filter(order=orders[2]).exists()
    assert not Decision.objects.filter(loan__order=orders[2]).exists()
    assert not IdempotencyRecord.objects.filter(key="k-2").exists()


@override_settings(API_RATE_LIMITS={"finance": "2/min", "quote": "600/min"})
def test_the_limit_is_per_user(side: Any) -> None:
    first, first_orders = side()
    second, second_orders = side()
    for i, order in enumerate(first_orders[:3]):
        finance(first, order.pk, key=f"a-{i}")
    assert finance(first, first_orders[3].pk, key="a-3").status_code == 429
    assert finance(second, second_orders[0].pk, key="b-0").status_code == 201


@override_settings(API_RATE_LIMITS={"finance": "120/min", "quote": "3/min"})
def test_quote_over_the_limit_is_429_with_retry_after(side: Any) -> None:
    client, orders = side()
    url = f"/api/v1/orders/{orders[0].pk}/quote/"
    for _ in range(3):
        assert client.post(url).status_code == 200
    response = client.post(url)
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert int(response["Retry-After"]) >= 1
    # Finance has its own count.
    assert finance(client, orders[1].pk, key="q-1").status_code == 201


@override_settings(API_RATE_LIMITS={"finance": "2/min", "quote": "600/min"})
def test_the_portal_counts_against_the_same_finance_limit_as_the_api(side: Any) -> None:
    """Found: right after the API had answered 429, 130 finance posts through the portal in
    5 s all ran. Now both doors enter the service that counts."""
    api, orders, portal = side.with_portal()
    assert finance(api, orders[0].pk, key="api-0").status_code == 201
    assert finance(api, orders[1].pk, key="api-1").status_code == 201
    assert finance(api, orders[2].pk, key="api-2").status_code == 429

    page = portal_finance(portal, orders[2].pk, key="portal-2")
    assert page.status_code == 429
    assert int(page["Retry-After"]) == 59
    body = page.content.decode()
    assert 'data-error="throttled"' in body and "Please wait 59 seconds" in body
    assert "<html" in body  # without JavaScript: the whole page around the dialog
    assert nothing_written_for(orders[2], "portal-2")


@override_settings(API_RATE_LIMITS={"finance": "2/min", "quote": "600/min"})
def test_portal_clicks_use_up_the_limit_the_api_then_refuses(side: Any) -> None:
    api, orders, portal = side.with_portal()
    assert portal_finance(portal, orders[0].pk, key="p-0").status_code == 200
    assert portal_finance(portal, orders[1].pk, key="p-1").status_code == 200
    assert Loan.objects.filter(order__in=orders[:2]).count() == 2

    # htmx: told to put the dialog where the quote goes, whatever the button targeted
    htmx = portal_finance(portal, orders[2].pk, key="p-2", HTTP_HX_REQUEST="true")
    assert htmx.status_code == 429
    assert htmx["HX-Retarget"] == "#finance-dialog" and htmx["HX-Reswap"] == "innerHTML"
    assert "<html" not in htmx.content.decode()
    assert 'data-error="throttled"' in htmx.content.decode()

    response = finance(api, orders[3].pk, key="a-3")
    assert response.status_code == 429 and response.json()["code"] == "throttled"
    assert nothing_written_for(orders[2], "p-2") and nothing_written_for(orders[3], "a-3")
    # The refused key was not used up: after the window it finances the order.
    with mock.patch("scf.throttling.clock", return_value=NOW + 60):
        assert portal_finance(portal, orders[2].pk, key="p-2").status_code == 200
    assert Loan.objects.filter(order=orders[2]).count() == 1


@override_settings(API_RATE_LIMITS={"finance": "120/min", "quote": "2/min"})
def test_the_portal_quote_counts_against_the_quote_limit(side: Any) -> None:
    api, orders, portal = side.with_portal()
    assert api.post(f"/api/v1/orders/{orders[0].pk}/quote/").status_code == 200
    assert portal.get(f"/orders/{orders[0].pk}/quote/").status_code == 200
    page = portal.get(f"/orders/{orders[0].pk}/quote/", HTTP_HX_REQUEST="true")
    assert page.status_code == 429
    assert 'data-error="throttled"' in page.content.decode()
    assert api.post(f"/api/v1/orders/{orders[0].pk}/quote/").status_code == 429


# A Redis nobody listens on: every cache call fails to connect, as during a Redis restart.
DEAD_REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:9/0",
    }
}


@override_settings(API_RATE_LIMITS={"finance": "1/min", "quote": "1/min"})
def test_a_cache_outage_lets_requests_through(side: Any) -> None:
    client, orders = side()
    with override_settings(CACHES=DEAD_REDIS):
        for i, order in enumerate(orders[:3]):
            assert finance(client, order.pk, key=f"c-{i}").status_code == 201
    assert Loan.objects.filter(order__in=orders[:3]).count() == 3


@override_settings(
    API_RATE_LIMITS={"finance": "1/min", "quote": "1/min"}, RATE_LIMIT_CACHE_RETRY_SECONDS=30
)
def test_after_a_cache_failure_the_limiter_leaves_the_cache_alone_for_a_while(side: Any) -> None:
    """A hung Redis costs each request the cache's timeout: after one failure, the process lets
    requests through without asking, until RATE_LIMIT_CACHE_RETRY_SECONDS have passed."""
    client, orders = side()
    asked = mock.Mock(side_effect=ConnectionError("no answer"))
    with mock.patch("scf.throttling.window_count", asked):
        for i, order in enumerate(orders[:3]):
            assert finance(client, order.pk, key=f"r-{i}").status_code == 201
        assert asked.call_count == 1
        with mock.patch("scf.throttling.time.monotonic", return_value=time.monotonic() + 31):
            assert finance(client, orders[3].pk, key="r-3").status_code == 201
        assert asked.call_count == 2


@pytest.mark.redis
def test_on_redis_a_window_counts_in_one_round_trip_and_expires() -> None:
    location = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    with override_settings(CACHES={"default": location}):
        key = f"throttle:test:{time.time_ns()}"
        backend = caches["default"]
        full_key = backend.make_key(key)
        sent: list[tuple[Any, ...]] = []
        real = redis.Redis.execute_command

        def execute_command(client: Any, *args: Any, **kwargs: Any) -> Any:
            sent.append(args[:1])
            return real(client, *args, **kwargs)

        with mock.patch.object(redis.Redis, "execute_command", execute_command):
            assert [window_count(key, ttl=61) for _ in range(3)] == [1, 2, 3]
        # One command per count; the window's expiry set once, with its first count.
        assert sent == [("INCRBY",), ("EXPIRE",), ("INCRBY",), ("INCRBY",)]
        client = backend._cache.get_client(full_key, write=True)
        assert 0 < client.ttl(full_key) <= 61
        backend.delete(key)


def test_in_local_memory_a_window_counts_and_starts_again_after_it_expires() -> None:
    location = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "t"}
    with override_settings(CACHES={"default": location}):
        assert [window_count("throttle:test:mem", ttl=60) for _ in range(3)] == [1, 2, 3]
        caches["default"].delete("throttle:test:mem")
        assert window_count("throttle:test:mem", ttl=60) == 1
