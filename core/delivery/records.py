"""The record format shared by the spool's segments and the dead-letter files, and file ownership.

Record framing (12-byte header, then the payload):

    magic   4  b"TWr1" = not yet acknowledged, b"TWa1" = acknowledged (flipped in place on ack)
    length  4  big-endian payload length
    crc     4  CRC32 of length bytes + payload
    payload    the batch's serialized events, one JSON envelope per line

A torn write (kill -9 mid-write, a truncated file) or flipped bytes fail the length/CRC check:
the bad span comes out of `read_records` as `Damage`, and reading resumes at the next valid record.

Ownership between processes uses `fcntl.flock`: a process holds an exclusive lock on every file
it writes or ships for as long as it owns it. A file nobody holds (its writer exited or was killed)
is an orphan: the first process to lock it (`claim_file`) takes it over, deletes it while still
holding the lock, and anyone who locked the same inode afterwards sees it gone — so no two processes
ever ship the same record, and a lock released by kill -9 hands the file on.
"""

from __future__ import annotations

import fcntl
import os
import struct
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from tracewire._files import FILE_MODE

MAGIC_NEW = b"TWr1"
MAGIC_ACKED = b"TWa1"
_HEADER = struct.Struct(">4sII")
HEADER_BYTES = _HEADER.size
MAX_RECORD_BYTES = 256 * 1024 * 1024
SEGMENT_SUFFIX = ".tws"


def frame(payload: bytes) -> bytes:
    length = struct.pack(">I", len(payload))
    return MAGIC_NEW + length + struct.pack(">I", zlib.crc32(payload, zlib.crc32(length))) + payload


def _new_name(prefix: str) -> str:
    return f"{prefix}-{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}{SEGMENT_SUFFIX}"


def try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def create_locked(directory: str, prefix: str) -> tuple[str, int]:
    """Create a new, already-locked file: locked under a temporary name, then renamed into view,
    so a scanning process never sees it unlocked."""
    name = _new_name(prefix)
    tmp = os.path.join(directory, "." + name + ".tmp")
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE)
    os.fchmod(fd, FILE_MODE)  # exactly 0600 whatever the umask
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.rename(tmp, os.path.join(directory, name))
    return os.path.join(directory, name), fd


def stale_temporaries(directory: str, prefix: str, age_s: float = 60.0) -> list[str]:
    """Temporaries of `create_locked` left by a kill between create and rename."""
    out = []
    now = time.time()
    for name in os.listdir(directory):
        if name.startswith(f".{prefix}-") and name.endswith(".tmp"):
            try:
                if now - os.stat(os.path.join(directory, name)).st_mtime > age_s:
                    out.append(name)
            except OSError:
                pass
    return out


def claim_file(path: str) -> int | None:
    """Lock an existing file if nobody holds it and it is still the file at `path`."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    if not try_lock(fd):
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


def write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


def count_pending_events(fd: int, start: int, end: int) -> int:
    """Events in the unacknowledged records between `start` and `end`."""
    n = 0
    for item in read_records(fd, start, end):
        if isinstance(item, Record) and not item.acked:
            n += item.payload.count(b"\n") + 1
    return n
