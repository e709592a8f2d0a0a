"""The durable local spool (outbox) of the `http` sink. On disk, under `spool_dir`:

    seg-<time_ns>-<pid>-<rand>.tws      segments: append-only, one record per committed batch
    dead/dl-<time_ns>-<pid>-<rand>.tws  dead letters (see `deadletters`)
    quarantine/<segment>@<offset>.<why>.bad   bytes that failed their checks, moved aside

Records are framed as `records` describes; a damaged span is copied to `quarantine/`, counted, and
reading resumes at the next valid record. A process locks every segment it writes or ships;
segments of exited or killed processes are claimed and shipped first.
"""
from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from tracewire._files import FILE_MODE, private_dir
from tracewire.delivery.records import (
    HEADER_BYTES,
    MAGIC_ACKED,
    MAX_RECORD_BYTES,
    SEGMENT_SUFFIX,
    Damage,
    claim_file,
    count_pending_events,
    create_locked,
    frame,
    read_records,
    stale_temporaries,
    write_all,
)

SEGMENT_BYTES = 8 * 1024 * 1024  # a segment is sealed (and a new one started) past this size
_SYNC_EVERY_S = 1.0  # fdatasync the active segment at most this often (power-loss window)
_NS = uuid.UUID("6a1c8a52-53b0-4f55-9a77-1d2a3f0c9e11")



@dataclass
class _Segment:
    path: str
    fd: int
    own: bool  # written by this process (else claimed from an earlier or dead one)
    end: int  # bytes known to hold committed records
    sealed: bool
    cursor: int = 0  # next offset to hand to the shipper
    unresolved: int = 0  # own segments: events committed here and not yet resolved
    in_flight: bool = False

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


@dataclass
class SpoolBatch:
    """Records handed to the shipper: one segment, consecutive, resolved together."""

    segment: _Segment
    offsets: list[int]
    lines: list[bytes]
    next_cursor: int
    batch_id: str
    recovered: bool  # read from a claimed (orphaned) segment


@dataclass
class SpoolCounters:
    committed_events: int = 0
    committed_batches: int = 0
    recovered_events: int = 0  # taken over from segments of exited or killed processes
    evicted_events: int = 0  # spool_full_policy=drop_oldest
    refused_events: int = 0  # spool_full_policy=drop_newest
    quarantined: Counter[str] = field(default_factory=Counter)  # why -> spans
    quarantined_bytes: int = 0


class Spool:
    """One process's view of a spool directory: its own segments plus the orphans it claimed."""

    def __init__(self, directory: str, max_bytes: int, full_policy: str = "drop_newest",
                 segment_bytes: int | None = None) -> None:
        self.directory = os.path.abspath(directory)
        self.max_bytes = max_bytes
        self.full_policy = full_policy
        self.segment_bytes = SEGMENT_BYTES if segment_bytes is None else segment_bytes
        self._init_state()

    def _init_state(self) -> None:
        self.counters = SpoolCounters()
        self._lock = threading.Lock()
        self._segments: list[_Segment] = []  # claimed orphans first (oldest first), then own in order
        self._active: _Segment | None = None
        self._other_bytes = 0  # segments held by other processes, as of the last scan
        self._last_sync = time.monotonic()
        self._dirty = False
        self._closed = False
        self.changed = threading.Event()  # set on every commit: wakes the shipper

    # ------------------------------------------------------------------ writing (worker / durable callers)
    def append(self, lines: list[str] | list[bytes]) -> bool:
        """Commit one batch (one record). False: refused by the size cap (drop_newest).
        Raises OSError when the disk refuses (the caller retries)."""
        if not lines:
            return True
        payload = b"\n".join(ln.encode("utf-8") if isinstance(ln, str) else ln for ln in lines)
        rec = frame(payload)
        n = len(lines)
        with self._lock:
            if self._closed:
                raise OSError("spool closed")
            if self._held_bytes() + self._other_bytes + len(rec) > self.max_bytes and not self._make_room(len(rec)):
                self.counters.refused_events += n
                return False
            seg = self._active
            if seg is None or seg.end >= self.segment_bytes:
                seg = self._rotate()
            try:
                write_all(seg.fd, rec, seg.end)
            except OSError:
                try:
                    os.ftruncate(seg.fd, seg.end)
                except OSError:
                    pass
                raise
            seg.end += len(rec)
            seg.unresolved += n
            self.counters.committed_events += n
            self.counters.committed_batches += 1
            self._dirty = True
        self.changed.set()
        return True

    def sync_if_due(self) -> None:
        """fdatasync the active segment about once a second (called by the shipper, so neither the
        worker nor a durable caller waits for the disk): bounds what a power loss can take."""
        with self._lock:
            seg = self._active
            now = time.monotonic()
            if seg is None or not self._dirty or now - self._last_sync < _SYNC_EVERY_S:
                return
            self._dirty = False
            self._last_sync = now
            fd = seg.fd
        try:
            os.fdatasync(fd)
        except OSError:
            pass

    def _rotate(self) -> _Segment:
        old = self._active
        if old is not None:
            old.sealed = True
            try:
                os.fdatasync(old.fd)
            except OSError:
                pass
        private_dir(self.directory, own=True)
        path, fd = create_locked(self.directory, "seg")
        seg = _Segment(path, fd, own=True, end=0, sealed=False)
        self._segments.append(seg)
        self._active = seg
        return seg

    def _held_bytes(self) -> int:
        return sum(s.end for s in self._segments)

    def _make_room(self, need: int) -> bool:
        if self.full_policy != "drop_oldest":
            return False
        for seg in list(self._segments):
            if self._held_bytes() + self._other_bytes + need <= self.max_bytes:
                return True
            if seg.in_flight or seg is self._active:
                continue
            if seg.own:
                n = seg.unresolved
            else:  # never read, so never counted as recovered: count it now, as recovered and evicted
                n = count_pending_events(seg.fd, seg.cursor, seg.end)
                self.counters.recovered_events += n
            self.counters.evicted_events += n
            self._drop_segment(seg)
        return self._held_bytes() + self._other_bytes + need <= self.max_bytes

    # ------------------------------------------------------------------ shipping side (one shipper thread)
    def next_batch(self, max_events: int, max_bytes: int) -> SpoolBatch | None:
        """The oldest unacknowledged records (from one segment), or None when all is shipped.
        Reads without holding the lock: committed bytes never change, so writers never wait."""
        while True:
            with self._lock:
                seg = self._next_segment()
                if seg is None:
                    return None
                seg.in_flight = True
                start, end = seg.cursor, seg.end
            try:
                batch, cursor = self._read(seg, start, end, max_events, max_bytes)
            except BaseException:
                seg.in_flight = False
                raise
            with self._lock:
                if batch is not None:
                    if batch.recovered:
                        self.counters.recovered_events += len(batch.lines)
                    return batch
                seg.in_flight = False
                seg.cursor = cursor
                if not (seg.sealed or not seg.own):
                    return None
                self._drop_segment(seg)

    def _next_segment(self) -> _Segment | None:
        for seg in list(self._segments):
            if seg.in_flight:
                return None
            if seg.cursor < seg.end:
                return seg
            if not (seg.sealed or not seg.own):
                return None
            self._drop_segment(seg)
        return None

    def _read(self, seg: _Segment, start: int, end: int, max_events: int, max_bytes: int,
              ) -> tuple[SpoolBatch | None, int]:
        offsets: list[int] = []
        lines: list[bytes] = []
        cursor = start
        for item in read_records(seg.fd, start, end, max_events, max_bytes):
            if isinstance(item, Damage):
                self._quarantine(seg, item)
                cursor = item.offset + item.length
                continue
            cursor = item.offset + HEADER_BYTES + len(item.payload)
            if item.acked:
                continue
            offsets.append(item.offset)
            lines.extend(item.payload.split(b"\n"))
        if not offsets:
            return None, cursor
        bid = str(uuid.uuid5(_NS, f"{seg.name}:{offsets[0]}:{cursor}"))
        return SpoolBatch(seg, offsets, lines, cursor, bid, recovered=not seg.own), cursor

    def resolve(self, batch: SpoolBatch, ack: bool = True) -> None:
        """The batch's events are settled (shipped or dead-lettered): mark its records acknowledged.
        With ack=False (stopped mid-way) the records stay for the next start."""
        with self._lock:
            seg = batch.segment
            seg.in_flight = False
            if self._closed or seg not in self._segments:
                return
            if not ack:
                if batch.recovered:
                    self.counters.recovered_events -= len(batch.lines)
                return
            for off in batch.offsets:
                os.pwrite(seg.fd, MAGIC_ACKED, off)
            seg.cursor = batch.next_cursor
            if seg.own:
                seg.unresolved -= len(batch.lines)
            if seg.cursor >= seg.end and (seg.sealed or not seg.own):
                self._drop_segment(seg)

    def claim_orphans(self) -> int:
        """Take over segments no live process holds (oldest first). Returns how many."""
        try:
            names = sorted(n for n in os.listdir(self.directory) if n.startswith("seg-") and n.endswith(SEGMENT_SUFFIX))
        except FileNotFoundError:
            return 0
        claimed = 0
        other = 0
        with self._lock:
            if self._closed:
                return 0
            mine = {s.name for s in self._segments}
            new: list[_Segment] = []
            for name in stale_temporaries(self.directory, "seg"):  # a kill between create and rename
                fd = claim_file(os.path.join(self.directory, name))
                if fd is not None:
                    os.unlink(os.path.join(self.directory, name))
                    os.close(fd)
            for name in names:
                if name in mine:
                    continue
                path = os.path.join(self.directory, name)
                fd = claim_file(path)
                if fd is None:
                    try:
                        other += os.stat(path).st_size
                    except OSError:
                        pass
                    continue
                size = os.fstat(fd).st_size
                new.append(_Segment(path, fd, own=False, end=size, sealed=True))
                claimed += 1
            self._other_bytes = other
            if new:  # orphans are older than anything this process wrote: ship them first
                orphans = [s for s in self._segments if not s.own]
                owned = [s for s in self._segments if s.own]
                self._segments = orphans + new + owned
        if claimed:
            self.changed.set()
        return claimed

    def _quarantine(self, seg: _Segment, dmg: Damage) -> None:
        if self._closed:
            return
        qdir = os.path.join(self.directory, "quarantine")
        try:
            private_dir(qdir, own=True)
            data = os.pread(seg.fd, min(dmg.length, MAX_RECORD_BYTES), dmg.offset)
            fd = os.open(os.path.join(qdir, f"{seg.name}@{dmg.offset}.{dmg.why}.bad"),
                         os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
            try:
                os.fchmod(fd, FILE_MODE)
                write_all(fd, data, 0)
            finally:
                os.close(fd)
        except OSError:
            pass
        self.counters.quarantined[dmg.why] += 1
        self.counters.quarantined_bytes += dmg.length

    def _drop_segment(self, seg: _Segment) -> None:
        # unlink while still holding the lock, then close: a process that locks it next finds it gone
        try:
            os.unlink(seg.path)
        except OSError:
            pass
        try:
            os.close(seg.fd)
        except OSError:
            pass
        if seg in self._segments:
            self._segments.remove(seg)
        if seg is self._active:
            self._active = None

    # ------------------------------------------------------------------ state
    def backlog_events(self) -> int:
        """Own events committed and not yet resolved (claimed orphans are counted as read)."""
        with self._lock:
            return sum(s.unresolved for s in self._segments if s.own)

    def idle(self) -> bool:
        """Nothing of this process's (own or claimed) left to ship."""
        with self._lock:
            return all(s.cursor >= s.end and not s.in_flight for s in self._segments)

    def disk_bytes(self) -> int:
        with self._lock:
            return self._held_bytes() + self._other_bytes

    def segment_count(self) -> int:
        with self._lock:
            return len(self._segments)

    def close(self) -> None:
        """Release everything: fully shipped segments are deleted, the rest stay for the next start."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for seg in list(self._segments):
                if seg.cursor >= seg.end and not seg.in_flight:
                    self._drop_segment(seg)
                else:
                    try:
                        if seg.own:
                            os.fdatasync(seg.fd)
                        os.close(seg.fd)
                    except OSError:
                        pass
            self._segments = []
            self._active = None

    def after_fork(self) -> None:
        """In a forked child: the parent's segments and locks stay the parent's."""
        for seg in self._segments:
            try:
                os.close(seg.fd)  # our copy only; the parent's descriptor keeps its lock
            except OSError:
                pass
        self._init_state()
