"""``feed_orders``: push new orders through the signed webhook of a running server.

Plays a core enterprise's sales system: realistic orders for that enterprise's agents (codes from
the demo credentials file), one event per order with a unique ``event_id``, signed with the
enterprise's webhook secret, sent by a few threads each with its own ``requests.Session``.
"""

from __future__ import annotations

import json
import random
import secrets
import threading
import time
import uuid
from argparse import ArgumentParser
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from integrations.demo.orders import catalogue_for, order_payload
from integrations.feed.signing import sign

WEBHOOK_PATH = "/api/v1/integrations/orders/webhook/"
FAILURES_SHOWN = 5


@dataclass(frozen=True)
class Reply:
    number: int
    status: int | None  # None when no reply came (connection error, timeout)
    outcome: str  # "applied"/"duplicate"/"stale", an error code, or the exception's name
    text: str

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def key(self) -> str:
        return f"{self.status if self.status is not None else 'no reply'} {self.outcome}"


@dataclass(frozen=True)
class Target:
    url: str
    enterprise_code: str
    secret: str
    timeout: float


def credentials_load(path: Path, enterprise_code: str | None) -> tuple[dict[str, Any], list[str]]:
    """The enterprise to send as (the named one, else the first) and its agents' codes."""
    try:
        credentials = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CommandError(f"Cannot read {path}: {exc}") from None
    enterprises = credentials.get("enterprises") or []
    chosen = next((e for e in enterprises if enterprise_code in (None, e.get("code"))), None)
    if chosen is None:
        raise CommandError(f"No enterprise {enterprise_code or '(none at all)'} in {path}.")
    agents = [
        a["code"]
        for a in credentials.get("agents", [])
        if chosen["code"] in a.get("enterprise_codes", [])
    ]
    if not agents:
        raise CommandError(f"No agents of {chosen['code']} in {path}.")
    return chosen, agents


def events_make(
    rng: random.Random, enterprise_code: str, agent_codes: list[str], count: int
) -> list[dict[str, Any]]:
    """``count`` new confirmed orders dated today, with ids no earlier run has used."""
    today = timezone.localdate()
    run = secrets.token_hex(3).upper()
    catalogue = catalogue_for(enterprise_code)
    return [
        {
            "event_id": f"evt-{uuid.uuid4().hex}",
            "type": "order.upserted",
            "order": order_payload(
                rng,
                catalogue,
                agent_code=rng.choice(agent_codes),
                external_id=f"SO-{today:%Y%m%d}-W{run}{number:06d}",
                order_date=today,
            ),
        }
        for number in range(1, count + 1)
    ]


def event_send(session: requests.Session, target: Target, number: int, event: object) -> Reply:
    body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-SCF-Enterprise": target.enterprise_code,
        "X-SCF-Timestamp": timestamp,
        "X-SCF-Signature": sign(target.secret, timestamp, body),
    }
    try:
        response = session.post(target.url, data=body, headers=headers, timeout=target.timeout)
    except requests.RequestException as exc:
        return Reply(number, None, type(exc).__name__, str(exc))
    try:
        reply = response.json()
    except ValueError:
        reply = {}
    outcome = (reply.get("status") or reply.get("code")) if isinstance(reply, dict) else None
    return Reply(number, response.status_code, str(outcome or "-"), response.text[:300])


def events_send(target: Target, events: list[dict[str, Any]], concurrency: int) -> list[Reply]:
    """Send every event, ``concurrency`` at a time; one session (connection pool) per thread."""
    local = threading.local()
    sessions: list[requests.Session] = []
    lock = threading.Lock()

    def send(numbered: tuple[int, dict[str, Any]]) -> Reply:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            with lock:
                sessions.append(local.session)
        return event_send(local.session, target, *numbered)

    try:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            return list(pool.map(send, enumerate(events, start=1)))
    finally:
        for session in sessions:
            session.close()


class Command(BaseCommand):
    help = "Push N new orders through the signed order webhook of a running server."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--url", required=True, help="server base URL, e.g. http://127.0.0.1:8000"
        )
        parser.add_argument("--count", type=int, required=True)
        parser.add_argument("--credentials", default="demo.json")
        parser.add_argument("--enterprise", help="enterprise code (default: the first in the file)")
        parser.add_argument("--concurrency", type=int, default=4)
        parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
        parser.add_argument("--seed", type=int, help="seed for the generated orders")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["count"] < 1 or options["concurrency"] < 1:
            raise CommandError("--count and --concurrency must be at least 1.")
        enterprise, agents = credentials_load(Path(options["credentials"]), options["enterprise"])
        target = Target(
            url=options["url"].rstrip("/") + WEBHOOK_PATH,
            enterprise_code=enterprise["code"],
            secret=enterprise["webhook_secret"],
            timeout=options["timeout"],
        )
        rng = random.Random(options["seed"])
        events = events_make(rng, target.enterprise_code, agents, options["count"])
        started = time.monotonic()
        replies = events_send(target, events, options["concurrency"])
        self._report(target, replies, time.monotonic() - started, options["concurrency"])

    def _report(self, target: Target, replies: list[Reply], seconds: float, threads: int) -> None:
        rate = len(replies) / seconds if seconds > 0 else float("inf")
        self.stdout.write(
            f"Sent {len(replies)} orders as {target.enterprise_code} to {target.url} "
            f"in {seconds:.2f} s ({rate:.1f} orders/s, concurrency {threads})."
        )
        for key, n in sorted(Counter(r.key for r in replies).items()):
            self.stdout.write(f"  {key}: {n}")
        failed = [r for r in replies if not r.ok]
        for reply in failed[:FAILURES_SHOWN]:
            self.stdout.write(f"  order #{reply.number}: {reply.key}: {reply.text}")
        if failed:
            raise CommandError(f"{len(failed)} of {len(replies)} orders were not accepted.")
