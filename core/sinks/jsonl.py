"""JSONL sink: appends one schema-1 event per line (and a score record, `"type": "score"`, per score)."""

from __future__ import annotations

import os
from typing import Any

from tracewire._files import private_dir, private_file
from tracewire.sinks.base import BaseSink, Batch, WriteResult


class JsonlSink(BaseSink):
    """Appends with one write per batch (O_APPEND), so concurrent processes do not interleave lines.

    Idempotency on event id holds at read time: readers (`tracewire export`, the collector's
    import) keep the first line per id; a retried batch may append a line twice. A score updated
    under the same id appends a new line: readers keep, per score id, the line with the latest `time`.
    """

    name = "jsonl"

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            private_dir(os.path.dirname(os.path.abspath(self.path)))
            private_file(self.path)  # 0600 whatever the umask (os.open's mode is masked by it)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return self._fd

    def write(self, batch: Batch) -> WriteResult:
        try:
            data = ("\n".join(batch.lines) + "\n").encode("utf-8")
            fd = self._open()
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
        except OSError as exc:
            return WriteResult.retry_later(f"os_error:{exc.errno}")
        return WriteResult.success()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def after_fork(self) -> None:
        self._fd = None


def from_config(config: Any) -> JsonlSink:
    return JsonlSink(config.jsonl_path)
