"""Soak under crashes (issue 5, scenarios 17 and 7): steady finance and repayment load on a
throwaway platform (``chaos/cluster.py``: its own PostgreSQL, Redis, gunicorn, worker and beat,
on loopback) while the worker, Redis and PostgreSQL are killed at random and started again.

Clients behave as the API asks: a 503 or a dropped connection is retried after a short wait with
the same Idempotency-Key (finance) or the same reference (repayment). At the end, with everything
up again and the sweeper given time to finish, the script checks and prints:

* client side: replies by status; 5xx other than 503 (must be 0); requests with no reply within
  15 s (hangs, must be 0); orders whose retries did not converge on one loan (must be 0);
* ``manage.py ledger_check`` green; no journal entry with fewer than two lines;
* no disbursement left pending or sent; the sandbox bank and the ledger reconcile: settled
  transfers = disbursement entries, in count and in sum (difference 0), and the bank saw one
  request per end-to-end id (bank-side duplicates 0).

Exit status 0 only if every check holds. Bounded: ``--duration`` at most 600 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import queue
import random
import sys
import threading
import time
import uuid
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from chaos.cluster import Cluster

HANG_SECONDS = 15.0
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
RETRYABLE = {429, 502, 503, 504}


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.replies: Counter[str] = Counter()
        self.errors: list[str] = []
        self.finance_final: dict[int, tuple[int, int | None]] = {}  # order -> (status, loan id)
        self.repaid = 0
        self.repay_final: Counter[int] = Counter()
        self.events: list[str] = []

    def reply(self, kind: str, status: int | str) -> None:
        with self.lock:
            self.replies[f"{kind} {status}"] += 1

    def event(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        with self.lock:
            self.events.append(f"{stamp} {text}")
        print(f"[{stamp}] {text}", flush=True)


def is_server_error(status: str) -> bool:
    """A 5xx other than the API's clean 503 (an unclean 503 counts)."""
    return status == "503-unclean" or (status.isdigit() and int(status) >= 500 and status != "503")


def clean_503(response: requests.Response) -> bool:
    """The API's 503: its error shape, ``service_unavailable``, and a ``Retry-After``."""
    try:
        body = response.json()
    except ValueError:
        return False
    return (
        isinstance(body, dict)
        and body.get("code") == "service_unavailable"
        and set(body) >= {"code", "detail", "fields"}
        and response.headers.get("Retry-After", "").isdigit()
    )


def call(
    stats: Stats, kind: str, method: str, url: str, token: str, **kwargs: Any
) -> requests.Response | None:
    """One HTTP call; None for no reply (connection refused or reset, or a hang)."""
    try:
        response = requests.request(
            method,
            url,
            headers={"Authorization": f"Token {token}", **kwargs.pop("headers", {})},
            timeout=HANG_SECONDS,
            **kwargs,
        )
    except requests.Timeout:
        stats.reply(kind, "hang")
        return None
    except requests.ConnectionError:
        stats.reply(kind, "no-connection")
        return None
    stats.reply(kind, response.status_code)
    if response.status_code == 503 and not clean_503(response):
        stats.reply(kind, "503-unclean")
        with stats.lock:
            stats.errors.append(f"{kind} unclean 503: {response.text[:300]}")
    if response.status_code >= 500 and response.status_code != 503:
        with stats.lock:
            stats.errors.append(f"{kind} {response.status_code}: {response.text[:300]}")
    return response


def until_final(
    stats: Stats, stop: threading.Event, kind: str, method: str, url: str, token: str, **kw: Any
) -> requests.Response | None:
    """Retry the same request (same key or reference) until a reply that is not transient."""
    give_up = time.monotonic() + 180
    while time.monotonic() < give_up:
        response = call(stats, kind, method, url, token, **kw)
        if response is not None and response.status_code not in RETRYABLE:
            return response
        if stop.is_set() and time.monotonic() > give_up - 120:
            break
        time.sleep(0.5 + random.random() * 0.5)
    return None


# --- data --------------------------------------------------------------------------------------


def setup_data(agents: int, orders: int) -> tuple[list[tuple[str, list[int]]], str]:
    """Agents with lines and confirmed orders, and an operations user; returns (agent token,
    order ids) per agent, and the operations token."""
    import django

    django.setup()
    from rest_framework.authtoken.models import Token

    from orders.models import SalesOrder
    from tests.lending.factories import CreditLineFactory, ProgramFactory
    from tests.orders.factories import AgentFactory, OrderFactory, UserFactory

    program = ProgramFactory(limit=Decimal("1000000000.00"))
    result = []
    for _ in range(agents):
        agent = AgentFactory(enterprises=[program.enterprise])
        CreditLineFactory(agent=agent, program=program, limit=Decimal("500000000.00"))
        user = UserFactory(role="agent", agent=agent)
        rows = [
            OrderFactory.build(
                agent=agent,
                enterprise=program.enterprise,
                amount=Decimal(random.randint(2, 50) * 1000),
            )
            for _ in range(orders // agents)
        ]
        created = SalesOrder.objects.bulk_create(rows)
        result.append((Token.objects.create(user=user).key, [o.pk for o in created]))
    ops = UserFactory(role="ops_admin")
    return result, Token.objects.create(user=ops).key


# --- load --------------------------------------------------------------------------------------


def finance_loop(
    base: str, stats: Stats, stop: threading.Event, work: queue.Queue[tuple[str, int]],
    repayable: queue.Queue[tuple[str, int]], pace: float,
) -> None:  # fmt: skip
    while not stop.is_set():
        try:
            token, order_id = work.get_nowait()
        except queue.Empty:
            return
        key = str(uuid.uuid4())
        response = until_final(
            stats, stop, "finance", "POST", f"{base}/api/v1/orders/{order_id}/finance/", token,
            headers={"Idempotency-Key": key},
        )  # fmt: skip
        status = response.status_code if response is not None else 0
        loan_id = response.json()["loan"]["id"] if status == 201 and response is not None else None
        with stats.lock:
            stats.finance_final[order_id] = (status, loan_id)
        if loan_id is not None:
            repayable.put((token, loan_id))
        time.sleep(pace)


def repay_loop(
    base: str, stats: Stats, stop: threading.Event, repayable: queue.Queue[tuple[str, int]],
    ops_token: str,
) -> None:  # fmt: skip
    while not stop.is_set():
        try:
            token, loan_id = repayable.get(timeout=1)
        except queue.Empty:
            continue
        detail = call(stats, "loan", "GET", f"{base}/api/v1/loans/{loan_id}/", token)
        if detail is None or detail.status_code != 200:
            repayable.put((token, loan_id))
            time.sleep(0.5)
            continue
        loan = detail.json()
        if loan["status"] != "active":
            if loan["status"] in ("disbursing", "approved"):
                repayable.put((token, loan_id))  # not paid out yet: later
            time.sleep(0.2)
            continue
        outstanding = Decimal(loan["outstanding_principal"])
        amount = (
            outstanding if random.random() < 0.5 else (outstanding / 2).quantize(Decimal("0.01"))
        )
        today = dt.datetime.now(SHANGHAI).date()  # the programs' business date, now
        body = {"amount": str(amount), "value_date": str(today), "reference": uuid.uuid4().hex}
        response = until_final(
            stats, stop, "repay", "POST", f"{base}/api/v1/loans/{loan_id}/repayments/", ops_token,
            json=body,
        )  # fmt: skip
        with stats.lock:
            stats.repay_final[response.status_code if response is not None else 0] += 1
        if amount < outstanding:
            repayable.put((token, loan_id))


# --- chaos -------------------------------------------------------------------------------------


def chaos_loop(
    cluster: Cluster, stats: Stats, stop: threading.Event, targets: list[str], every: float
) -> Counter[str]:
    kills: Counter[str] = Counter()
    rng = random.Random()
    bag: list[str] = []
    while not stop.wait(rng.uniform(every * 0.5, every * 1.5)):
        if not bag:  # every target in turn, in a random order each round
            bag = rng.sample(targets, len(targets))
        target = bag.pop()
        down = rng.uniform(1.0, 5.0)
        stats.event(f"kill {target} (down {down:.1f}s)")
        if target == "postgres":
            cluster.pg_kill()
            time.sleep(down)
            cluster.pg_start()
        else:
            process = getattr(cluster, target)
            process.kill()
            time.sleep(down)
            process.start()
        kills[target] += 1
        stats.event(f"{target} back")
    return kills


def supervise(cluster: Cluster, stats: Stats, stop: threading.Event) -> None:
    """A process that died on its own (not by the chaos loop) is started again, and reported."""
    while not stop.wait(2):
        for process in (cluster.web, cluster.beat):
            if not process.alive():
                stats.event(f"{process.name} had died on its own: restarted")
                process.start()


# --- the checks --------------------------------------------------------------------------------


def settle_down(seconds: float) -> dict[str, int]:
    """Wait until no disbursement is pending or sent; the counts left (empty when done)."""
    from django.db import connections
    from django.db.models import Count

    from lending.models import Disbursement

    deadline = time.monotonic() + seconds
    while True:
        connections.close_all()  # ours may have died with a PostgreSQL restart
        try:
            left = dict(
                Disbursement.objects.filter(status__in=["pending", "sent"])
                .values_list("status")
                .annotate(n=Count("id"))
            )
        except Exception as exc:  # the database may still be coming back
            left = {"error": 1}
            print(f"waiting for the database: {exc}")
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(1)


def reconcile() -> dict[str, Any]:
    from django.db.models import Count, F, Sum

    from integrations.models import SandboxTransfer
    from lending.models import AccountCode, EntryKind, JournalEntry, JournalLine, Loan

    transfers = SandboxTransfer.objects.filter(status="settled").aggregate(
        n=Count("id"), total=Sum("amount")
    )
    disbursed = JournalLine.objects.filter(
        entry__kind=EntryKind.DISBURSEMENT, account=AccountCode.PRINCIPAL_RECEIVABLE
    ).aggregate(n=Count("entry_id", distinct=True), total=Sum("debit"))
    zero = Decimal("0.00")
    return {
        "bank_settled_transfers": transfers["n"],
        "bank_settled_sum": transfers["total"] or zero,
        "ledger_disbursement_entries": disbursed["n"],
        "ledger_disbursed_sum": disbursed["total"] or zero,
        "count_difference": transfers["n"] - disbursed["n"],
        "sum_difference": (transfers["total"] or zero) - (disbursed["total"] or zero),
        "bank_side_duplicates": SandboxTransfer.objects.aggregate(
            d=Sum(F("requests_received") - 1)
        )["d"]
        or 0,
        "bank_transfers_not_final": SandboxTransfer.objects.filter(status="accepted").count(),
        "orders_with_two_loans": Loan.objects.values("order_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count(),
        "entries_with_under_two_lines": JournalEntry.objects.annotate(n=Count("lines"))
        .filter(n__lt=2)
        .count(),
        "loans_by_status": dict(Loan.objects.values_list("status").annotate(n=Count("id"))),
    }


def converged(stats: Stats) -> tuple[int, int]:
    """(orders whose final 201 names their one loan, orders where that is not so)."""
    from lending.models import Loan

    loans: dict[int, list[int]] = {}
    for order_id, loan_id in Loan.objects.values_list("order_id", "id"):
        loans.setdefault(order_id, []).append(loan_id)
    good = bad = 0
    for order_id, (status, loan_id) in stats.finance_final.items():
        mine = loans.get(order_id, [])
        if status == 201 and mine == [loan_id]:
            good += 1
        elif status != 201 and len(mine) <= 1 and status != 0:
            good += 1  # a decline or a clean refusal: at most one loan, never two
        else:
            bad += 1
    return good, bad


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=300, help="seconds of load (max 600)")
    parser.add_argument("--kill", default="worker,redis,postgres", help="what to kill")
    parser.add_argument("--every", type=float, default=15, help="mean seconds between kills")
    parser.add_argument("--load", default="finance,repay", help="finance and/or repay")
    parser.add_argument("--clients", type=int, default=3, help="finance client threads")
    parser.add_argument(
        "--worker-chaos", default="before_bank:0.02,after_bank:0.02,after_commit:0.02"
    )
    parser.add_argument("--pg-port", type=int, default=5499)
    parser.add_argument("--redis-port", type=int, default=6390)
    parser.add_argument("--web-port", type=int, default=8099)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    duration = min(args.duration, 600.0)
    targets = [t for t in args.kill.split(",") if t]
    load = set(args.load.split(","))

    cluster = Cluster(
        args.dir,
        pg_port=args.pg_port,
        redis_port=args.redis_port,
        web_port=args.web_port,
        worker_chaos=args.worker_chaos,
    )
    stats = Stats()
    started = time.monotonic()
    stop, stop_chaos = threading.Event(), threading.Event()
    try:
        cluster.start()
        os.environ.update(cluster.env)
        expected_orders = int(duration * 8 * args.clients) + 100
        agents, ops_token = setup_data(agents=8, orders=expected_orders)
        stats.event(f"platform up in {cluster.base}; {expected_orders} orders ready")
        work: queue.Queue[tuple[str, int]] = queue.Queue()
        pairs = [(token, order) for token, orders in agents for order in orders]
        random.shuffle(pairs)
        for pair in pairs:
            work.put(pair)
        repayable: queue.Queue[tuple[str, int]] = queue.Queue()
        threads = []
        if "finance" in load:
            threads += [
                threading.Thread(
                    target=finance_loop, args=(cluster.url, stats, stop, work, repayable, 0.3)
                )
                for _ in range(args.clients)
            ]
        if "repay" in load:
            threads += [
                threading.Thread(
                    target=repay_loop, args=(cluster.url, stats, stop, repayable, ops_token)
                )
                for _ in range(2)
            ]
        threads.append(threading.Thread(target=supervise, args=(cluster, stats, stop_chaos)))
        for thread in threads:
            thread.daemon = True
            thread.start()
        kills: Counter[str] = Counter()
        chaos = threading.Thread(
            target=lambda: kills.update(
                chaos_loop(cluster, stats, stop_chaos, targets, args.every)
            ),
            daemon=True,
        )
        if targets:
            chaos.start()
        time.sleep(duration)
        stop_chaos.set()
        if targets:
            chaos.join()
        stats.event("chaos stopped; letting the clients finish their retries")
        stop.set()
        for thread in threads:
            thread.join(timeout=200)
        stats.event("load stopped; waiting for the sweeper to finish every payment")
        left = settle_down(300)
        check = cluster.manage("ledger_check", check=False)
        numbers = reconcile()
        good, bad = converged(stats)
        in_worker_kills = (
            Counter(line.split()[0] for line in cluster.kill_log.read_text().splitlines())
            if cluster.kill_log.exists()
            else Counter()
        )
    finally:
        stop_chaos.set()  # also on Ctrl-C: no thread may start a server again
        stop.set()
        cluster.close()

    server_errors = sum(n for k, n in stats.replies.items() if is_server_error(k.split()[1]))
    hangs = sum(n for k, n in stats.replies.items() if k.endswith(" hang"))
    print("\n==== soak summary ====")
    print(
        f"ran {time.monotonic() - started:.0f}s ({duration:.0f}s of load), logs in {cluster.base}"
    )
    print(f"kills: {dict(kills)}; in-worker SIGKILLs: {dict(in_worker_kills)}")
    print(f"process starts: {cluster.summary()}")
    print(f"client replies: {dict(sorted(stats.replies.items()))}")
    print(f"finance orders finished: {len(stats.finance_final)}; converged {good}, not {bad}")
    print(f"repayments by final status: {dict(stats.repay_final)}")
    print(f"server errors other than clean 503s: {server_errors}; hangs: {hangs}")
    for error in stats.errors[:10]:
        print(f"  {error}")
    print(f"disbursements not final after the wait: {left or 0}")
    for key, value in numbers.items():
        print(f"{key}: {value}")
    print(
        f"ledger_check exit {check.returncode}:\n{check.stdout.strip()}{check.stderr.strip()[-2000:]}"
    )
    ok = (
        check.returncode == 0
        and not left
        and server_errors == 0
        and hangs == 0
        and bad == 0
        and numbers["count_difference"] == 0
        and numbers["sum_difference"] == 0
        and numbers["bank_side_duplicates"] == 0
        and numbers["orders_with_two_loans"] == 0
        and numbers["entries_with_under_two_lines"] == 0
        and numbers["bank_transfers_not_final"] == 0
    )
    print("RESULT:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
