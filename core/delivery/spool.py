"""The durable local spool (outbox) of the `http` sink, and its dead-letter store.

On disk, under `spool_dir`:

    seg-<time_ns>-<pid>-<rand>.tws      segments: append-only, one record per committed batch
    dead/dl-<time_ns>-<pid>-<rand>.tws  dead letters (same framing; first payload line = JSON meta)
    quarantine/<segment>@<offset>.<why>.bad   bytes that failed their checks, moved aside

Record framing (12-byte header, then the payload):

    magic   4  b"TWr1" = not yet acknowledged, b"TWa1" = acknowledged (flipped in place on ack)
    length  4  big-endian payload length
    crc     4  CRC32 of length bytes + payload
    payload    the batch's serialized events, one JSON envelope per line

A torn write (kill -9 mid-write, a truncated file) or flipped bytes fail the length/CRC check:
the bad span is copied to `quarantine/`, counted, and reading resumes at the next valid record.

Ownership between processes uses `fcntl.flock`: a process holds an exclusive lock on every
segment it writes or ships for as long as it owns it. A segment nobody holds (its writer exited or
was killed) is an orphan: the first process to lock it ships it, deletes it while still holding
the lock, and anyone who locked the same inode afterwards sees it gone — so no two processes ever
ship the same record, and a lock released by kill -9 hands the segment on.

`doctor_report(config)` and `replay(config)` back the `tracewire doctor` / `tracewire replay`
commands.
"""

from __future__ import annotations

import fcntl
import json
import os
import struct
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tracewire._files import FILE_MODE, private_dir

MAGIC_NEW = b"TWr1"
MAGIC_ACKED = b"TWa1"
_HEADER = struct.Struct(">4sII")
HEADER_BYTES = _HEADER.size
MAX_RECORD_BYTES = 256 * 1024 * 1024
SEGMENT_BYTES = 8 * 1024 * 1024  # a segment is sealed (and a new one started) past this size
SEGMENT_SUFFIX = ".tws"
_SYNC_EVERY_S = 1.0  # fdatasync the active segment at most this often (power-loss window)
_NS = uuid.UUID("6a1c8a52-53b0-4f55-9a77-1d2a3f0c9e11")


def frame(payload: bytes) -> bytes:
    length = struct.pack(">I", len(payload))
    return MAGIC_NEW + length + struct.pack(">I", zlib.crc32(payload, zlib.crc32(length))) + payload


def _new_name(prefix: str) -> str:
    return f"{prefix}-{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}{SEGMENT_SUFFIX}"


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def _create_locked(directory: str, prefix: str) -> tuple[str, int]:
    """Create a new, already-locked file: locked under a temporary name, then renamed into view,
    so a scanning process never sees it unlocked."""
    name = _new_name(prefix)
    tmp = os.path.join(directory, "." + name + ".tmp")
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE)
    os.fchmod(fd, FILE_MODE)  # exactly 0600 whatever the umask
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.rename(tmp, os.path.join(directory, name))
    return os.path.join(directory, name), fd


def claim_file(path: str) -> int | None:
    """Lock an existing file if nobody holds it and it is still the file at `path`."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    if not _try_lock(fd):
        os.close(fd)
        return None
    try:
        same = os.fstat(fd).st_ino == os.stat(path).st_ino
    except OSError:
        same = False
    if not same:  # shipped and deleted by whoever held it before us
        os.close(fd)
        return None
    return fd


@dataclass
class Record:
    offset: int
    payload: bytes
    acked: bool


@dataclass
class Damage:
    offset: int
    length: int
    why: str  # "crc" | "torn" | "header"


def read_records(fd: int, start: int, end: int, max_events: int = 1 << 30, max_bytes: int = 1 << 62,
                 ) -> Iterator[Record | Damage]:
    """Records of a segment from `start` to `end`, validated; bad spans come out as Damage.
    Stops (after yielding at least one record) at the event/byte limits."""
    off = start
    events = nbytes = 0
    read = _Window(fd, end)
    while off < end:
        hdr = read(off, HEADER_BYTES)
        if len(hdr) < HEADER_BYTES:
            yield Damage(off, end - off, "torn")
            return
        magic, length, crc = _HEADER.unpack(hdr)
        if magic in (MAGIC_NEW, MAGIC_ACKED) and length <= MAX_RECORD_BYTES:
            if off + HEADER_BYTES + length > end:
                nxt = _resync(fd, off + 1, end)
                if nxt is None:
                    yield Damage(off, end - off, "torn")
                    return
                yield Damage(off, nxt - off, "header")
                off = nxt
                continue
            payload = read(off + HEADER_BYTES, length)
            if len(payload) == length and zlib.crc32(payload, zlib.crc32(hdr[4:8])) == crc:
                n = payload.count(b"\n") + 1
                if magic == MAGIC_NEW and (events or nbytes) and (events + n > max_events or nbytes + length > max_bytes):
                    return
                yield Record(off, payload, magic == MAGIC_ACKED)
                if magic == MAGIC_NEW:
                    events += n
                    nbytes += length
                off += HEADER_BYTES + length
                continue
            why = "crc"
        else:
            why = "header"
        nxt = _resync(fd, off + 1, end)
        if nxt is None:
            yield Damage(off, end - off, why)
            return
        yield Damage(off, nxt - off, why)
        off = nxt


class _Window:
    """Reads a segment in large chunks (one syscall for many small records)."""

    CHUNK = 1 << 20

    def __init__(self, fd: int, end: int) -> None:
        self.fd = fd
        self.end = end
        self.base = 0
        self.buf = b""

    def __call__(self, off: int, n: int) -> bytes:
        if off < self.base or off + n > self.base + len(self.buf):
            self.base = off
            self.buf = os.pread(self.fd, max(n, min(self.CHUNK, self.end - off)), off)
        i = off - self.base
        return self.buf[i:i + n]


def _resync(fd: int, start: int, end: int) -> int | None:
    """The offset of the next record at or after `start` whose header and CRC check out."""
    chunk = 1 << 20
    pos = start
    while pos < end:
        buf = os.pread(fd, min(chunk + HEADER_BYTES, end - pos), pos)
        if not buf:
            return None
        for magic in (MAGIC_NEW, MAGIC_ACKED):
            i = buf.find(magic)
            while i != -1:
                cand = pos + i
                hdr = os.pread(fd, HEADER_BYTES, cand)
                if len(hdr) == HEADER_BYTES:
                    _, length, crc = _HEADER.unpack(hdr)
                    if length <= MAX_RECORD_BYTES and cand + HEADER_BYTES + length <= end:
                        payload = os.pread(fd, length, cand + HEADER_BYTES)
                        if zlib.crc32(payload, zlib.crc32(hdr[4:8])) == crc:
                            return cand
                i = buf.find(magic, i + 1)
        pos += chunk
    return None


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
                _write_all(seg.fd, rec, seg.end)
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
        path, fd = _create_locked(self.directory, "seg")
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
                n = _count_events(seg.fd, seg.cursor, seg.end)
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
            for name in _stale_temporaries(self.directory):  # a kill between create and rename
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
                _write_all(fd, data, 0)
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


def _stale_temporaries(directory: str, age_s: float = 60.0) -> list[str]:
    out = []
    now = time.time()
    for name in os.listdir(directory):
        if name.startswith(".seg-") and name.endswith(".tmp"):
            try:
                if now - os.stat(os.path.join(directory, name)).st_mtime > age_s:
                    out.append(name)
            except OSError:
                pass
    return out


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


def _count_events(fd: int, start: int, end: int) -> int:
    n = 0
    for item in read_records(fd, start, end):
        if isinstance(item, Record) and not item.acked:
            n += item.payload.count(b"\n") + 1
    return n


# ---------------------------------------------------------------------- dead letters
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
                _, self._fd = _create_locked(self.directory, "dl")
                self._end = 0
            _write_all(self._fd, rec, self._end)
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


def spool_summary(spool_dir: str) -> dict[str, Any]:
    d = os.path.abspath(spool_dir)
    segs: list[tuple[str, os.stat_result]] = []
    try:
        for n in os.listdir(d):
            if n.startswith("seg-") and n.endswith(SEGMENT_SUFFIX):
                try:
                    segs.append((n, os.stat(os.path.join(d, n))))
                except OSError:
                    pass
    except FileNotFoundError:
        pass
    pending_events = pending_records = damaged = 0
    held = 0
    for n, _ in segs:
        try:
            fd = os.open(os.path.join(d, n), os.O_RDONLY)
        except OSError:
            continue
        try:
            if not _try_lock(fd):  # a live process owns it; do not read under its feet
                held += 1
                continue
            for item in read_records(fd, 0, os.fstat(fd).st_size):
                if isinstance(item, Damage):
                    damaged += 1  # quarantined when a client or `replay` next reads it
                elif not item.acked:
                    pending_records += 1
                    pending_events += item.payload.count(b"\n") + 1
        finally:
            os.close(fd)
    oldest = min((st.st_mtime for _, st in segs), default=None)
    qdir = os.path.join(d, "quarantine")
    try:
        qfiles = sorted(os.listdir(qdir))
    except FileNotFoundError:
        qfiles = []
    return {
        "dir": d,
        "segments": len(segs),
        "segments_held_by_live_processes": held,
        "bytes": sum(st.st_size for _, st in segs),
        "pending_records": pending_records,
        "pending_events": pending_events,
        "damaged_spans": damaged,
        "oldest_age_s": None if oldest is None else round(time.time() - oldest, 1),
        "quarantine": {"files": len(qfiles), "bytes": sum(_size(os.path.join(qdir, f)) for f in qfiles),
                       "by_reason": dict(Counter(f.rsplit(".", 2)[-2] for f in qfiles if f.endswith(".bad"))),
                       "names": qfiles[:20]},
    }


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


# ---------------------------------------------------------------------- CLI entry points
def doctor_report(config: Any) -> dict[str, Any]:
    """Delivery health for `tracewire doctor` (the key is never shown)."""
    from tracewire._dsn import redact_dsn
    from tracewire.delivery.shipper import check_endpoint

    report: dict[str, Any] = {
        "delivery": {
            "endpoint": redact_dsn(config.endpoint),
            "api_key": mask_key(config.api_key),
            "signing_key": "set" if config.signing_key else "missing",
            "verify_tls": config.verify_tls,
            "durable": config.durable,
            "commit_interval": config.commit_interval,
            "spool_max_bytes": config.spool_max_bytes,
            "spool_full_policy": config.spool_full_policy,
        },
        "endpoint": check_endpoint(config) if config.endpoint else {"ok": False, "error": "no endpoint configured"},
        "spool": spool_summary(config.spool_dir),
        "dead_letters": dead_letter_summary(config.spool_dir),
    }
    return report


def replay(config: Any) -> dict[str, Any]:
    """Ship every orphaned spool segment and resend every dead letter; report what happened."""
    from tracewire.delivery.shipper import replay_all

    return replay_all(config)


def mask_key(key: str | None) -> str | None:
    """`twk_<key id>_****`: only the key id, which `tracewire keys list` shows anyway. The secret is
    token_urlsafe text and may itself contain `_`, so nothing is cut at an underscore."""
    if not key:
        return None
    from tracewire.wire import parse_key_id  # stdlib only; imports no server dependency

    key_id = parse_key_id(key)
    return f"twk_{key_id}_****" if key_id else "**** (not a twk_<key id>_<secret> key)"
