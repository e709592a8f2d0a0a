"""Shipping spooled batches to the collector (wire protocol v1): transport, retry policy, shipper.

Policy, per batch (a run of spool records):
- 200: per-event results. `accepted`/`duplicate` are done; `rejected` goes to the dead letters;
  anything else (or `retryable: true`) is resent, alone, with the same batch id and the next attempt.
- connection refused/reset, timeouts, 408, 425, 429, 5xx: resent after a full-jitter exponential
  backoff (`Retry-After`, seconds or HTTP date, is honoured instead, clamped to 0..60 s).
- 413: the batch is split in halves (each with its own stable id); a single event -> dead letter.
- any other 4xx: the events go to the dead letters with the status and error code as reason.
Records are acknowledged in the spool only once every event is settled, so a crash or kill at any
point resends at most the batch in flight — which the collector deduplicates by event id.
"""

from __future__ import annotations

import email.utils
import gzip
import http.client
import json
import logging
import random
import socket
import ssl
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tracewire.delivery.deadletters import DeadLetters
from tracewire.delivery.spool import Spool
from tracewire.model import codec as _json
from tracewire.wire import H_ATTEMPT, H_BATCH_ID, H_SIGNATURE, H_TIMESTAMP, sign

log = logging.getLogger("tracewire")

RETRY_STATUSES = frozenset({408, 425, 429})
MAX_RETRY_AFTER_S = 60.0
BACKOFF_BASE_S = 0.1
GZIP_MIN_BYTES = 1024
RESCAN_INTERVAL_S = 2.0  # how often an idle shipper looks for orphaned segments
# Batch ids of split halves and of resent dead letters: stable, so a resend keeps its id.
BATCH_ID_NS = uuid.UUID("0c7f0e0a-3b7e-4f41-b0a4-55a4b0c5d0e1")


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return _json.loads(self.body)
        except ValueError:
            return None

    def error_code(self) -> str:
        data = self.json()
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            return str(data["error"].get("code") or "")
        return ""


class Transport:
    """One keep-alive connection to the collector; signs and gzips ingestion requests.
    Holds the API key; never puts it in an exception, a log line or a repr."""

    def __init__(self, endpoint: str, api_key: str | None, signing_key: str | None, timeout: float,
                 verify_tls: bool = True, sdk_version: str = "", ca_file: str | None = None) -> None:
        u = urllib.parse.urlsplit(endpoint)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError("an http:// or https:// URL")
        self.scheme = u.scheme
        self.host = u.hostname
        self.port = u.port or (443 if u.scheme == "https" else 80)
        self.base = u.path.rstrip("/")
        self._api_key = api_key
        self._signing_key = signing_key
        self.timeout = timeout
        self._ssl = _ssl_context(verify_tls, ca_file) if u.scheme == "https" else None
        self._conn: http.client.HTTPConnection | None = None
        self.reconnects = 0  # immediate resends after a kept-alive connection turned out closed/reset
        self._client_info = {"sdk": "tracewire-python", "version": sdk_version}

    def __repr__(self) -> str:
        return f"Transport({self.scheme}://{self.host}:{self.port}{self.base})"

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        if self._conn is not None:
            return self._conn, True
        if self._ssl is not None:
            self._conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self._ssl)
        else:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn, False

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                auth: bool = True) -> Response:
        h = dict(headers or {})
        if auth and self._api_key:
            h["Authorization"] = f"Bearer {self._api_key}"
        for _ in range(2):
            conn, reused = self._connection()
            try:
                conn.request(method, self.base + path, body=body, headers=h)
                r = conn.getresponse()
                data = r.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                if reused:  # a kept-alive connection the server had closed: one fresh try at once
                    self.reconnects += 1
                    continue
                raise _scrubbed(exc) from None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise _scrubbed(exc) from None
            if r.will_close:
                self.close()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
        raise ConnectionError("connection closed")  # pragma: no cover - loop always returns or raises

    def post_events(self, lines: list[bytes], batch_id: str, attempt: int, loss: dict[str, int] | None) -> Response:
        client = dict(self._client_info, loss=loss or {})
        body = b'{"events":[' + b",".join(lines) + b'],"client":' + json.dumps(client).encode() + b"}"
        headers = {"Content-Type": "application/json", H_BATCH_ID: batch_id, H_ATTEMPT: str(attempt)}
        if len(body) >= GZIP_MIN_BYTES:
            body = gzip.compress(body, compresslevel=5, mtime=0)
            headers["Content-Encoding"] = "gzip"
        ts = str(int(time.time()))
        headers[H_TIMESTAMP] = ts
        if self._signing_key:
            headers[H_SIGNATURE] = sign(self._signing_key, ts, body)
        return self.request("POST", "/v1/events", body, headers)

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001  # pragma: no cover
                pass
            self._conn = None


def _scrubbed(exc: BaseException) -> ConnectionError:
    """A plain error naming only the failure kind (no request headers can ride along)."""
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return ConnectionError("timeout")
    if isinstance(exc, ConnectionRefusedError):
        return ConnectionError("connection_refused")
    if isinstance(exc, (ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError)):
        return ConnectionError("connection_reset")
    if isinstance(exc, ssl.SSLError):
        return ConnectionError(f"tls:{type(exc).__name__}")
    return ConnectionError(type(exc).__name__)


def _ssl_context(verify: bool, ca_file: str | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if verify:
        try:
            import certifi

            ctx.load_verify_locations(certifi.where())
        except Exception:  # noqa: BLE001 - the system store alone is fine
            pass
        if ca_file:  # a private CA or a self-signed collector certificate, trusted on top of the above
            ctx.load_verify_locations(ca_file)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds (delta-seconds or an HTTP date), clamped to 0..60; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        secs = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when is None:
            return None
        secs = when.timestamp() - (time.time() if now is None else now)
    if secs != secs:  # NaN
        return None
    return min(max(secs, 0.0), MAX_RETRY_AFTER_S)


def backoff_seconds(attempt: int, cap: float) -> float:
    """Full jitter: uniform(0, min(cap, base * 2^attempt))."""
    return random.uniform(0.0, min(cap, BACKOFF_BASE_S * (2 ** min(attempt, 30))))


@dataclass
class DeliveryCounters:
    requests: int = 0
    shipped: int = 0  # accepted now by the collector
    duplicates: int = 0  # already stored (a resend after a lost acknowledgement): also success
    retried: int = 0  # requests repeated after a retryable failure
    splits: int = 0  # 413 -> halves
    dead_lettered: Counter[str] | None = None
    last_error: str | None = None

    def __post_init__(self) -> None:
        self.dead_lettered = Counter()


class Stopped(Exception):
    """The shipper was asked to stop with a batch unsettled (it stays in the spool)."""


@dataclass(eq=False)
class Policy:
    """Sends one batch until every event is settled (or the attempt budget runs out)."""

    transport: Transport
    dead: DeadLetters
    counters: DeliveryCounters
    max_backoff: float
    stop: threading.Event
    loss_source: Callable[[], dict[str, int]] | None = None  # the client's losses, reported to the collector
    max_attempts: int | None = None

    def ship(self, lines: list[bytes], batch_id: str) -> None:
        """Returns once every event is accepted, duplicate or dead-lettered; raises Stopped otherwise."""
        work: list[tuple[str, list[bytes]]] = [(batch_id, lines)]
        while work:
            bid, pending = work.pop()
            attempt = 0
            while pending:
                if self.stop.is_set():
                    raise Stopped
                attempt += 1
                delay: float | None = None
                try:
                    self.counters.requests += 1
                    resp = self.transport.post_events(pending, bid, attempt, self._loss())
                except ConnectionError as exc:
                    self.counters.last_error = str(exc)
                    delay = backoff_seconds(attempt, self.max_backoff)
                else:
                    status = resp.status
                    if status == 200:
                        retry = self._settle(resp, pending, bid)
                        if retry is None:
                            self.counters.last_error = "200:unreadable_results"
                            delay = backoff_seconds(attempt, self.max_backoff)
                        else:
                            pending = retry
                            if pending:
                                self.counters.last_error = "200:retryable_events"
                                delay = backoff_seconds(attempt, self.max_backoff)
                    elif status == 413:
                        self.counters.last_error = f"413:{resp.error_code()}"
                        if len(pending) > 1:
                            self.counters.splits += 1
                            mid = len(pending) // 2
                            work.append((_child_id(bid, "b"), pending[mid:]))
                            work.append((_child_id(bid, "a"), pending[:mid]))
                        else:
                            self._dead(f"http_413:{resp.error_code() or 'too_large'}", pending, bid, status)
                        pending = []
                    elif status in RETRY_STATUSES or status >= 500:
                        self.counters.last_error = f"{status}:{resp.error_code()}"
                        ra = retry_after_seconds(resp.headers.get("retry-after"))
                        delay = ra if ra is not None else backoff_seconds(attempt, self.max_backoff)
                    else:
                        code = resp.error_code()
                        self.counters.last_error = f"{status}:{code}"
                        self._dead(f"http_{status}:{code or 'error'}", pending, bid, status)
                        pending = []
                if pending and delay is not None:
                    if self.max_attempts is not None and attempt >= self.max_attempts:
                        raise Stopped
                    self.counters.retried += 1
                    if self.stop.wait(delay):
                        raise Stopped

    def _settle(self, resp: Response, pending: list[bytes], bid: str) -> list[bytes] | None:
        data = resp.json()
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, list) or len(results) != len(pending):
            return None
        retry: list[bytes] = []
        rejected: dict[str, list[bytes]] = {}
        for line, res in zip(pending, results, strict=True):
            status = res.get("status") if isinstance(res, dict) else None
            if status == "accepted":
                self.counters.shipped += 1
            elif status == "duplicate":
                self.counters.duplicates += 1
            elif status == "rejected" and not res.get("retryable"):
                rejected.setdefault(f"rejected:{res.get('reason') or 'invalid'}", []).append(line)
            else:
                retry.append(line)
        for reason, lines in rejected.items():
            self._dead(reason, lines, bid, 200)
        return retry

    def _dead(self, reason: str, lines: list[bytes], bid: str, status: int | None) -> None:
        self.dead.add(reason, lines, bid, status)
        assert self.counters.dead_lettered is not None
        self.counters.dead_lettered[reason] += len(lines)

    def _loss(self) -> dict[str, int] | None:
        if self.loss_source is None:
            return None
        try:
            return self.loss_source()
        except Exception:  # noqa: BLE001  # pragma: no cover
            return None


def _child_id(batch_id: str, half: str) -> str:
    return str(uuid.uuid5(BATCH_ID_NS, f"{batch_id}/{half}"))


@dataclass(eq=False)
class Shipper:
    """The thread that drains the spool into the collector."""

    spool: Spool
    policy: Policy
    batch_size: int
    batch_bytes: int
    on_error: Callable[[str, BaseException], None] | None = None
    linger: float = 0.02  # how long a short batch waits for more
    _thread: threading.Thread | None = field(default=None, init=False)

    def start(self) -> None:
        try:  # what an earlier (or killed) process left is known from the start
            self.spool.claim_orphans()
        except OSError as exc:  # e.g. an unwritable spool_dir: counted; commits will say more
            if self.on_error is not None:
                self.on_error("claim", exc)
        self._thread = threading.Thread(target=self._run, name="tracewire-shipper", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        stop = self.policy.stop
        next_scan = time.monotonic() + RESCAN_INTERVAL_S
        while not stop.is_set():
            try:
                now = time.monotonic()
                if now >= next_scan:
                    self.spool.claim_orphans()
                    next_scan = now + RESCAN_INTERVAL_S
                self.spool.sync_if_due()
                self.spool.changed.clear()
                batch = self.spool.next_batch(self.batch_size, self.batch_bytes)
                if batch is None:
                    if self.spool.changed.wait(min(1.0, max(0.0, next_scan - time.monotonic()))):
                        stop.wait(self.linger)  # let small commits (durable: one event each) pile up
                    continue
                try:
                    self.policy.ship(batch.lines, batch.batch_id)
                except Stopped:
                    self.spool.resolve(batch, ack=False)
                    return
                except BaseException:
                    self.spool.resolve(batch, ack=False)
                    raise
                self.spool.resolve(batch)
            except Exception as exc:  # noqa: BLE001 - keep shipping; the batch stays in the spool
                if stop.is_set():  # closing: the spool's files are going away under us
                    return
                if self.on_error is not None:
                    self.on_error("shipper", exc)
                stop.wait(1.0)

    def stop(self, timeout: float = 1.0) -> None:
        self.policy.stop.set()
        self.spool.changed.set()
        if self._thread is not None:
            self._thread.join(timeout)
