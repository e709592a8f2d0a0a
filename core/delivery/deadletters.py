"""Dead letters: the events the collector refused for good, kept on disk until `tracewire replay`.

Under `spool_dir`, `dead/dl-<time_ns>-<pid>-<rand>.tws` files use the spool's record framing
(see `records`); the first payload line of each record is JSON meta (reason, status, batch id,
time, count), the rest are the refused events.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from typing import Any

from tracewire._files import private_dir
from tracewire.delivery.records import SEGMENT_SUFFIX, Record, create_locked, frame, read_records, write_all


class DeadLetters:
    """Events the collector refused for good. Kept (never silently dropped) until replayed."""

    def __init__(self, directory: str) -> None:
        self.directory = os.path.join(os.path.abspath(directory), "dead")
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._end = 0

    def add(self, reason: str, lines: list[bytes], batch_id: str, status: int | None) -> None:
        meta = json.dumps({"reason": reason, "status": status, "batch_id": batch_id, "time": time.time(),
                           "count": len(lines)}).encode()
        rec = frame(b"\n".join([meta, *lines]))
        with self._lock:
            if self._fd is None:
                private_dir(self.directory, own=True)
                _, self._fd = create_locked(self.directory, "dl")
                self._end = 0
            write_all(self._fd, rec, self._end)
            self._end += len(rec)
            os.fdatasync(self._fd)
            self.counts[reason] += len(lines)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def after_fork(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
        self._fd = None
        self._lock = threading.Lock()


def dead_files(spool_dir: str) -> list[str]:
    d = os.path.join(os.path.abspath(spool_dir), "dead")
    try:
        return sorted(os.path.join(d, n) for n in os.listdir(d) if n.endswith(SEGMENT_SUFFIX))
    except FileNotFoundError:
        return []


def dead_letter_summary(spool_dir: str) -> dict[str, Any]:
    by_reason: Counter[str] = Counter()
    files = 0
    for path in dead_files(spool_dir):
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        files += 1
        try:
            for item in read_records(fd, 0, os.fstat(fd).st_size):
                if isinstance(item, Record) and not item.acked:
                    meta = json.loads(item.payload.split(b"\n", 1)[0])
                    by_reason[str(meta.get("reason"))] += int(meta.get("count", 0))
        finally:
            os.close(fd)
    return {"events": sum(by_reason.values()), "by_reason": dict(by_reason), "files": files}
