"""Oversized order-feed requests against one gunicorn worker: reply, seconds and peak memory.

Cases (each one request to a freshly started gunicorn with a single sync worker):

* ``csv-300k``: a CSV upload of 300,000 rows, about 18 MB, one order per row;
* ``csv-300k-lines``: the same number of rows as 10,000 orders of 30 lines each (20 MB);
* ``bulk-1000x1000``: the bulk endpoint with 1,000 orders of 1,000 lines each (about 47 MB);
* ``nested-webhook`` and ``nested-bulk``: 50,000 ``[`` (the webhook's signed);
* ``csv-at-cap`` and ``bulk-at-cap``: the largest batch the caps accept (``--max-lines`` lines
  in 10,000 orders), to see what an accepted request costs.

For each: HTTP status and error code, wall seconds, and the worker's peak resident memory during
the request (its ``VmHWM``, reset before each request through ``/proc/PID/clear_refs``) above
what it held before.

    .venv/bin/python -m bench.feed_limits [--cases csv-300k,bulk-1000x1000] [--max-lines 100000]

PostgreSQL must answer; the bench database (``scf_bench_limits`` unless ``--database-url``) is
created if missing. Everything stays on loopback; gunicorn is stopped however the script ends.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import hmac
import http.client
import io
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.feed import Party, bench_parties
from bench.lib.db import django_setup, ensure_database
from bench.lib.processes import gunicorn

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/scf_bench_limits"
CSV_PATH = "/api/v1/integrations/orders/csv/"
BULK_PATH = "/api/v1/integrations/orders/bulk/"
WEBHOOK_PATH = "/api/v1/integrations/orders/webhook/"
CSV_COLUMNS = (
    "external_id,agent_code,order_amount,currency,status,order_date,version,sku,quantity,unit_price"
)
CASES = (
    "csv-300k",
    "csv-300k-lines",
    "bulk-1000x1000",
    "nested-webhook",
    "nested-bulk",
    "csv-at-cap",
    "bulk-at-cap",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.feed_limits", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL
    )
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--max-lines", type=int, default=100_000, help="lines the caps accept")
    parser.add_argument("--timeout", type=int, default=300, help="gunicorn's worker timeout")
    args = parser.parse_args(argv)
    args.cases = [c for c in args.cases.split(",") if c]
    unknown = set(args.cases) - set(CASES)
    if unknown:
        parser.error(f"unknown cases: {', '.join(sorted(unknown))}")
    return args


# --- bodies ---------------------------------------------------------------------------------


def order_lines(prefix: str, orders: int, lines: int, agents: list[str]) -> list[dict[str, Any]]:
    today = time.strftime("%Y-%m-%d")
    return [
        {
            "external_id": f"{prefix}-{o:05d}",
            "agent_code": agents[o % len(agents)],
            "amount": f"{lines}.00",
            "currency": "CNY",
            "status": "confirmed",
            "order_date": today,
            "version": 1,
            "lines": [
                {"sku": f"S{n % 50}", "quantity": 1, "unit_price": "1.00"} for n in range(lines)
            ],
        }
        for o in range(orders)
    ]


def bulk_body(prefix: str, orders: int, lines: int, agents: list[str]) -> bytes:
    body = {"orders": order_lines(prefix, orders, lines, agents)}
    return json.dumps(body, separators=(",", ":")).encode()


def csv_file(prefix: str, orders: int, lines: int, agents: list[str]) -> bytes:
    out = io.StringIO()
    out.write(CSV_COLUMNS + "\r\n")
    writer = csv.writer(out, lineterminator="\r\n")
    today = time.strftime("%Y-%m-%d")
    for o in range(orders):
        agent = agents[o % len(agents)]
        for n in range(lines):
            writer.writerow(
                [f"{prefix}-{o:05d}", agent, "", "CNY", "confirmed", today, 1, f"S{n}", 1, "1.00"]
            )
    return out.getvalue().encode()


def multipart(field: str, filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"'
        "\r\nContent-Type: text/csv\r\n\r\n"
    ).encode()
    return (
        head + data + f"\r\n--{boundary}--\r\n".encode(),
        f"multipart/form-data; boundary={boundary}",
    )


def signed_headers(party: Party, body: bytes) -> dict[str, str]:
    ts = str(int(time.time()))
    digest = hmac.new(party.webhook_secret.encode(), ts.encode() + b"." + body, hashlib.sha256)
    return {
        "Content-Type": "application/json",
        "X-SCF-Enterprise": party.code,
        "X-SCF-Timestamp": ts,
        "X-SCF-Signature": f"sha256={digest.hexdigest()}",
    }


def admin_token(party: Party) -> str:
    from rest_framework.authtoken.models import Token

    from orders.models import Role, User

    user, _ = User.objects.update_or_create(
        username="bench.limits.admin",
        defaults={"role": Role.ENTERPRISE_ADMIN, "enterprise_id": party.enterprise_id},
    )
    token, _ = Token.objects.get_or_create(user=user)
    return str(token.key)


def post(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, float]:
    """One POST on a fresh connection; a server that answers before reading the whole body (a
    413) and closes is read all the same."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        start = time.perf_counter()
        conn.putrequest("POST", path)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            conn.putheader(name, value)
        conn.endheaders()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            conn.send(body)  # on a 413 the reply is already waiting in the socket
        response = conn.getresponse()
        data = response.read()
        return response.status, data, time.perf_counter() - start
    finally:
        conn.close()


# --- the worker's memory --------------------------------------------------------------------


def worker_pid(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    if len(children) != 1:
        raise SystemExit(f"expected one gunicorn worker, found {children}")
    return int(children[0])


def kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise SystemExit(f"no {field} for {pid}")


def measure(master: int, send: Callable[[], tuple[int, bytes, float]]) -> dict[str, Any]:
    pid = worker_pid(master)
    before = kib(pid, "VmRSS")
    reset = True
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    except OSError:
        reset = False
    status, data, seconds = send()
    try:
        peak = kib(pid, "VmHWM")
    except (OSError, SystemExit):  # the worker was killed (timeout) or replaced
        peak = 0
    code = ""
    if data.startswith(b"{"):
        code = str(json.loads(data).get("code", ""))
    return {
        "status": status,
        "code": code,
        "seconds": round(seconds, 2),
        "rss_before_mib": round(before / 1024, 1),
        "peak_above_before_mib": round((peak - before) / 1024, 1) if peak else None,
        "peak_reset": reset,
        "body_start": data[:120].decode("utf-8", "replace"),
    }


# --- cases ----------------------------------------------------------------------------------


def run_case(
    name: str, port: int, master: int, party: Party, token: str, args: argparse.Namespace
) -> dict[str, Any]:
    prefix = f"{name[0]}{int(time.time()) % 100_000}"
    agents = party.agent_codes
    api_key = {"Content-Type": "application/json", "Authorization": f"Api-Key {party.api_key}"}
    body: bytes
    headers: dict[str, str]
    path = BULK_PATH
    if name.startswith("csv"):
        orders, lines = {
            "csv-300k": (300_000, 1),
            "csv-300k-lines": (10_000, 30),
            "csv-at-cap": (10_000, args.max_lines // 10_000),
        }[name]
        body, content_type = multipart(
            "file", "orders.csv", csv_file(prefix, orders, lines, agents)
        )
        headers = {"Content-Type": content_type, "Authorization": f"Token {token}"}
        path = CSV_PATH
    elif name == "bulk-1000x1000":
        body, headers = bulk_body(prefix, 1000, 1000, agents), api_key
    elif name == "bulk-at-cap":
        body, headers = bulk_body(prefix, 10_000, args.max_lines // 10_000, agents), api_key
    elif name == "nested-bulk":
        body, headers = b"[" * 50_000, api_key
    else:
        body = b"[" * 50_000
        headers, path = signed_headers(party, body), WEBHOOK_PATH
    print(f"{name}: sending {len(body) / 1e6:.1f} MB", flush=True)
    result = measure(master, lambda: post(port, path, body, headers))
    result["request_mb"] = round(len(body) / 1e6, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ensure_database(args.database_url)
    django_setup(args.database_url)
    party = bench_parties(20)
    token = admin_token(party)
    log_path = Path(tempfile.gettempdir()) / f"scf-bench-limits-{os.getpid()}.log"
    server_args = ["--workers", "1", "--timeout", str(args.timeout)]
    results = {}
    for name in args.cases:
        # A fresh worker per case: memory a request freed stays in the process and would hide
        # the next request's peak.
        with gunicorn(args.database_url, server_args, log_path=log_path) as (port, master):
            results[name] = run_case(name, port, master, party, token, args)
        print(f"  {json.dumps(results[name])}", flush=True)
    print()
    print(f"{'case':<16} {'MB':>6} {'status':>6} {'code':<22} {'seconds':>8} {'peak MiB':>9}")
    for name, r in results.items():
        peak = "n/a" if r["peak_above_before_mib"] is None else f"{r['peak_above_before_mib']:.0f}"
        print(
            f"{name:<16} {r['request_mb']:>6.1f} {r['status']:>6} {r['code']:<22} "
            f"{r['seconds']:>8.2f} {peak:>9}"
        )
    print(f"gunicorn's log: {log_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
