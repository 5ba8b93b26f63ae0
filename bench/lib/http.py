"""HTTP to the app under test on loopback: a lean keep-alive client for many small requests,
and a one-shot request for large bodies and health checks."""

from __future__ import annotations

import http.client
import socket
import time

TIMEOUT = 30.0


class HttpError(Exception):
    """A reply the lean client cannot read (closed early, malformed)."""


class Client:
    """One connection, kept alive when the server allows (gthread workers); sync workers close
    it after each reply and the next request connects again.

    HTTP/1.1 on a plain socket rather than ``http.client``: the load generator shares the two
    cores with the app and PostgreSQL, and ``http.client`` parses every reply's headers with the
    ``email`` package. A POST that failed before any reply is sent again on a fresh connection:
    the caller's Idempotency-Key makes that safe, which is the point of the key.
    """

    def __init__(self, port: int, timeout: float = TIMEOUT) -> None:
        self.port = port
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.retries = 0

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def post(self, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        """A POST without a body (``headers`` say ``Content-Length: 0``): (status, body)."""
        lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        message = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        for attempt in range(3):
            try:
                return self._exchange(message)
            except (OSError, HttpError):
                self.close()
                if attempt == 2:
                    raise
                self.retries += 1
        raise AssertionError("unreachable")

    def _exchange(self, message: bytes) -> tuple[int, bytes]:
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock = self.sock
        sock.sendall(message)
        data = b""
        while (split := data.find(b"\r\n\r\n")) < 0:
            chunk = sock.recv(65536)
            if not chunk:
                raise HttpError("connection closed before the reply's headers")
            data += chunk
        head, body = data[:split].decode("latin-1"), data[split + 4 :]
        status_line, *header_lines = head.split("\r\n")
        fields = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        try:
            status = int(status_line.split(" ", 2)[1])
            length = int(fields["content-length"]) if "content-length" in fields else None
        except (IndexError, ValueError) as exc:
            raise HttpError(f"malformed reply head: {head[:120]!r}") from exc
        while length is None or len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                if length is None:
                    break
                raise HttpError("connection closed inside the reply's body")
            body += chunk
        if length is None or fields.get("connection", "").lower() == "close":
            self.close()
        return status, body[:length] if length is not None else body


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    *,
    timeout: float = TIMEOUT,
) -> tuple[int, bytes, float]:
    """One request on a fresh connection (gunicorn's sync workers close after each reply):
    (status, body, seconds from sending to the whole reply read)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        start = time.perf_counter()
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return response.status, data, time.perf_counter() - start
    finally:
        conn.close()
