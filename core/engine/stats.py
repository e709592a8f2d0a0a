"""Delivery and health counters. Every emitted event is, at any moment, exactly one of:
written, dropped (by reason) or pending, so `emitted == written + sum(dropped) + pending`."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

log = logging.getLogger("tracewire")


class Stats:
    def __init__(self) -> None:
        self.emitted = 0
        self.written = 0
        self.dropped: Counter[str] = Counter()
        self.sampled_out = 0
        self.internal_errors: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()
        self.batches = 0
        self.withheld = 0  # events whose content a failed privacy stage kept home
        self._logged: set[str] = set()

    def internal_error(self, where: str, exc: BaseException | None = None) -> None:
        """Count an internal failure and log it once per place, never raising."""
        self.internal_errors[where] += 1
        if where not in self._logged:
            self._logged.add(where)
            log.warning("tracewire internal error in %s (counted; logged once): %r", where, exc)

    def snapshot(self, queued: int, in_flight: int, queued_bytes: int, deferred: int = 0) -> dict[str, Any]:
        """`deferred`: events still to be made by deferred work, counted emitted and queued already."""
        return {
            "emitted": self.emitted + deferred,
            "written": self.written,
            "dropped": dict(self.dropped),
            "pending": queued + deferred + in_flight,
            "queued": queued + deferred,
            "queued_bytes": queued_bytes,
            "in_flight": in_flight,
            "sampled_out": self.sampled_out,
            "batches": self.batches,
            "retries": dict(self.retries),
            "internal_errors": dict(self.internal_errors),
        }


def balanced(s: dict[str, Any]) -> bool:
    return bool(s["emitted"] == s["written"] + sum(s["dropped"].values()) + s["pending"])
