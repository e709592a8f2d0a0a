"""The `http` sink: commit to the durable local spool, ship to the collector from a thread of its own.

`write()` (worker thread) only appends the batch to the spool — a local file append — so a slow,
failing or absent collector never holds the worker or the app. The shipper thread sends spooled
records and acknowledges them in the spool once the collector has settled every event. For the
client, an event is `written` once it is committed to the spool; what happens after that is in
`stats()["delivery"]["http"]`.
"""

from __future__ import annotations

import time
from typing import Any

from tracewire.config import ConfigError
from tracewire.delivery.deadletters import DeadLetters
from tracewire.delivery.shipper import DeliveryCounters, Policy, Shipper, Transport
from tracewire.delivery.spool import Spool
from tracewire.sinks.base import Batch, Sink, SinkContext, WriteResult


class HttpSink(Sink):
    name = "http"
    spooling = True  # the client may commit to it from the caller's thread (durable, queue overflow)

    def __init__(self, config: Any) -> None:
        from tracewire.version import __version__

        if not config.endpoint:
            raise ConfigError("tracewire: the http sink needs an endpoint (setting 'endpoint' / TRACEWIRE_ENDPOINT)")
        try:
            self.transport = Transport(config.endpoint, config.api_key, config.signing_key, config.http_timeout,
                                       config.verify_tls, __version__, getattr(config, "ca_file", None))
        except ValueError as exc:
            raise ConfigError(f"tracewire: invalid value for setting 'endpoint'; expected {exc}") from None
        self.config = config
        self._context: SinkContext | None = None  # the owning client's: loss reports, error counts
        self.spool = Spool(config.spool_dir, config.spool_max_bytes, config.spool_full_policy)
        self.dead = DeadLetters(config.spool_dir)
        self._start_shipper()

    def _start_shipper(self) -> None:
        import threading

        self.counters = DeliveryCounters()
        self.policy = Policy(self.transport, self.dead, self.counters, self.config.retry_max_backoff,
                             threading.Event(), self._loss)
        self.shipper = Shipper(self.spool, self.policy, self.config.batch_size, self.config.batch_bytes,
                               self._error, linger=min(0.05, self.config.commit_interval))
        self.shipper.start()

    def attach(self, context: SinkContext) -> None:
        self._context = context

    # ------------------------------------------------------------------ worker side
    def write(self, batch: Batch) -> WriteResult:
        try:
            ok = self.spool.append(batch.lines)
        except OSError as exc:
            return WriteResult.retry_later(f"spool_error:{exc.errno or type(exc).__name__}")
        return WriteResult.success() if ok else WriteResult.permanent("spool_full")

    def commit(self, lines: list[str]) -> bool:
        """Commit now (caller's thread); False if refused (cap). Raises OSError on disk errors."""
        return self.spool.append(lines)

    # ------------------------------------------------------------------ control
    def flush(self, timeout: float | None) -> bool:
        """True once everything committed so far is settled with the collector."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self.spool.changed.set()
        while not self.spool.idle():
            if not self.shipper.alive():
                return False
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self) -> None:
        self.shipper.stop(timeout=min(1.0, self.config.http_timeout))
        self.spool.close()
        self.dead.close()
        self.transport.close()

    def after_fork(self) -> None:
        self.spool.after_fork()
        self.dead.after_fork()
        self.transport._conn = None  # the parent's socket
        self._start_shipper()

    def delivery_stats(self) -> dict[str, Any]:
        c, sc = self.counters, self.spool.counters
        return {
            "committed": sc.committed_events,
            "recovered": sc.recovered_events,
            "shipped": c.shipped,
            "duplicates": c.duplicates,
            "dead_lettered": dict(c.dead_lettered or {}),
            "evicted": sc.evicted_events,
            "backlog": self.spool.backlog_events(),
            "requests": c.requests,
            "retried": c.retried,
            "reconnects": self.transport.reconnects,
            "splits": c.splits,
            "spooled_bytes": self.spool.disk_bytes(),
            "spool_segments": self.spool.segment_count(),
            "refused_spool_full": sc.refused_events,
            "quarantined": dict(sc.quarantined),
            "quarantined_bytes": sc.quarantined_bytes,
            "last_error": c.last_error,
        }

    def _loss(self) -> dict[str, int]:
        loss: dict[str, int] = dict(self._context.dropped()) if self._context is not None else {}
        sc = self.spool.counters
        if sc.evicted_events:
            loss["spool_evicted"] = sc.evicted_events
        if sc.quarantined:
            loss["spool_quarantined_records"] = sum(sc.quarantined.values())
        dl = sum((self.counters.dead_lettered or {}).values())
        if dl:
            loss["dead_lettered"] = dl
        return loss

    def _error(self, where: str, exc: BaseException) -> None:
        if self._context is not None:
            self._context.report_error(f"http:{where}", exc)


def from_config(config: Any) -> HttpSink:
    return HttpSink(config)
