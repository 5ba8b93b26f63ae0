"""The demo's orders, as a sales system sends them: six months of them for the seed, and single
orders for ``feed_orders``."""

from __future__ import annotations

import datetime as dt
import random
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from orders.models import FeedChannel
from orders.services.ingest import orders_ingest
from scf.money import CENT

from .data import (
    CURRENCY,
    DISCOUNTS,
    ENTERPRISES,
    INGEST_BATCH,
    LINE_COUNT_WEIGHTS,
    LINE_COUNTS,
    ORDER_HISTORY_DAYS,
    STATUS_MIX,
    STATUS_VERSION,
    DemoData,
    Product,
)


def catalogue_for(enterprise_code: str) -> tuple[Product, ...]:
    """The products an enterprise sells; an unknown enterprise gets the first demo catalogue."""
    for profile in ENTERPRISES:
        if profile.code == enterprise_code:
            return profile.catalogue
    return ENTERPRISES[0].catalogue


def order_payload(
    rng: random.Random,
    catalogue: tuple[Product, ...],
    *,
    agent_code: str,
    external_id: str,
    order_date: dt.date,
    status: str = "confirmed",
    version: int = 1,
) -> dict[str, Any]:
    """An order as a sales system sends it: 1-5 lines whose amounts add up to the order amount."""
    count = rng.choices(LINE_COUNTS, weights=LINE_COUNT_WEIGHTS)[0]
    lines = []
    total = Decimal("0.00")
    for product in rng.sample(catalogue, min(count, len(catalogue))):
        quantity = rng.randint(product.min_qty, product.max_qty)
        price = (product.list_price * rng.choice(DISCOUNTS)).quantize(CENT, ROUND_HALF_EVEN)
        total += price * quantity
        line = {"sku": product.sku, "description": product.name}
        lines.append(line | {"quantity": quantity, "unit_price": str(price)})
    return {
        "external_id": external_id,
        "agent_code": agent_code,
        "amount": str(total.quantize(CENT)),
        "currency": CURRENCY,
        "status": status,
        "order_date": order_date.isoformat(),
        "version": version,
        "lines": lines,
    }


def _order_date(rng: random.Random, today: dt.date) -> dt.date:
    """A date in the last ``ORDER_HISTORY_DAYS`` days, more of them recent (a growing business),
    fewer on weekends."""
    for _ in range(2):
        age = min(int(rng.triangular(0, ORDER_HISTORY_DAYS, 0)), ORDER_HISTORY_DAYS - 1)
        day = today - dt.timedelta(days=age)
        if day.weekday() < 5 or rng.random() < 0.3:
            break
    return day


def _status(rng: random.Random, age_days: int) -> str:
    mix = next(m for limit, m in STATUS_MIX if age_days < limit)
    return rng.choices([s for s, _ in mix], weights=[w for _, w in mix])[0]


def _orders_plan(
    rng: random.Random, data: DemoData, count: int, today: dt.date
) -> dict[str, list[dict[str, Any]]]:
    """Order payloads per enterprise code; busy agents order more (log-normal weights)."""
    pairs = [(a.agent.code, e) for a in data.agents for e in a.enterprise_codes]
    # An agent's volume is split between the enterprises it buys from.
    size = {a.agent.code: rng.lognormvariate(0, 0.9) / len(a.enterprise_codes) for a in data.agents}
    weights = [size[agent] for agent, _ in pairs]
    picks = rng.choices(pairs, weights=weights, k=count) if pairs else []
    dated = sorted(((_order_date(rng, today), a, e) for a, e in picks), key=lambda p: p[0])
    plan: dict[str, list[dict[str, Any]]] = {e.enterprise.code: [] for e in data.enterprises}
    for order_date, agent_code, enterprise_code in dated:
        status = _status(rng, (today - order_date).days)
        sequence = len(plan[enterprise_code]) + 1
        plan[enterprise_code].append(
            order_payload(
                rng,
                catalogue_for(enterprise_code),
                agent_code=agent_code,
                external_id=f"SO-{order_date:%Y%m%d}-{sequence:05d}",
                order_date=order_date,
                status=status,
                version=STATUS_VERSION[status],
            )
        )
    return plan


def orders_create(rng: random.Random, data: DemoData, count: int, today: dt.date) -> None:
    plan = _orders_plan(rng, data, count, today)
    for demo in data.enterprises:
        payloads = plan[demo.enterprise.code]
        for start in range(0, len(payloads), INGEST_BATCH):
            orders_ingest(
                enterprise=demo.enterprise,
                payloads=payloads[start : start + INGEST_BATCH],
                channel=FeedChannel.BULK,
                event_id=f"demo-seed-{start // INGEST_BATCH + 1}",
            )
