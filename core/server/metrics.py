"""Prometheus text exposition, hand-written (no client library needed): counters and one histogram.

Counters are per collector process, as Prometheus expects of replicas; client-reported loss comes
from the store, so every replica shows the same figure.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Iterable

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.accepted = 0
        self.duplicate = 0
        self.rejected: Counter[str] = Counter()
        self.requests_rejected: Counter[str] = Counter()
        self.retention: Counter[str] = Counter()  # what retention deleted: traces, events, partitions
        self._bucket_counts = [0] * (len(_BUCKETS) + 1)
        self._sum = 0.0
        self._count = 0

    def events(self, accepted: int, duplicate: int, rejected_reasons: Iterable[str]) -> None:
        with self._lock:
            self.accepted += accepted
            self.duplicate += duplicate
            self.rejected.update(rejected_reasons)

    def pruned(self, traces: int, events: int, partitions: int) -> None:
        with self._lock:
            self.retention.update({"traces": traces, "events": events, "partitions": partitions})

    def request_rejected(self, code: str) -> None:
        with self._lock:
            self.requests_rejected[code] += 1

    def observe(self, seconds: float) -> None:
        with self._lock:
            self._bucket_counts[bisect.bisect_left(_BUCKETS, seconds)] += 1
            self._sum += seconds
            self._count += 1

    def render(self, client_loss: Iterable[tuple[str, str, int]] = ()) -> str:
        with self._lock:
            lines = [
                "# HELP tracewire_events_accepted_total Events stored.",
                "# TYPE tracewire_events_accepted_total counter",
                f"tracewire_events_accepted_total {self.accepted}",
                "# HELP tracewire_events_duplicate_total Events already stored (idempotent retries).",
                "# TYPE tracewire_events_duplicate_total counter",
                f"tracewire_events_duplicate_total {self.duplicate}",
                "# HELP tracewire_events_rejected_total Invalid events, by reason.",
                "# TYPE tracewire_events_rejected_total counter",
                *(f'tracewire_events_rejected_total{{reason="{_escape(r)}"}} {n}' for r, n in sorted(self.rejected.items())),
                "# HELP tracewire_requests_rejected_total Requests refused, by error code.",
                "# TYPE tracewire_requests_rejected_total counter",
                *(f'tracewire_requests_rejected_total{{code="{_escape(c)}"}} {n}'
                  for c, n in sorted(self.requests_rejected.items())),
                "# HELP tracewire_retention_deleted_total What retention deleted (serve --retention), by what.",
                "# TYPE tracewire_retention_deleted_total counter",
                *(f'tracewire_retention_deleted_total{{what="{w}"}} {self.retention[w]}'
                  for w in ("traces", "events", "partitions")),
                "# HELP tracewire_request_duration_seconds Time to answer an API request.",
                "# TYPE tracewire_request_duration_seconds histogram",
            ]
            cumulative = 0
            for bound, n in zip((*_BUCKETS, float("inf")), self._bucket_counts, strict=True):
                cumulative += n
                le = "+Inf" if bound == float("inf") else repr(bound)
                lines.append(f'tracewire_request_duration_seconds_bucket{{le="{le}"}} {cumulative}')
            lines += [f"tracewire_request_duration_seconds_sum {self._sum}",
                      f"tracewire_request_duration_seconds_count {self._count}"]
        lines += ["# HELP tracewire_client_reported_loss Events SDKs report they dropped, by reason (latest per key).",
                  "# TYPE tracewire_client_reported_loss gauge",
                  *(f'tracewire_client_reported_loss{{project="{_escape(p)}",reason="{_escape(r)}"}} {n}'
                    for p, r, n in client_loss)]
        return "\n".join(lines) + "\n"
