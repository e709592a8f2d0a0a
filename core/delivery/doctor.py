"""What `tracewire doctor` and `tracewire replay` run: spool and dead-letter summaries, the
endpoint check, and the replay of orphaned segments and dead letters through the shipper's policy.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from typing import Any

from tracewire._dsn import redact_dsn
from tracewire.delivery.deadletters import DeadLetters, dead_files, dead_letter_summary
from tracewire.delivery.records import (
    MAGIC_ACKED,
    SEGMENT_SUFFIX,
    Damage,
    Record,
    claim_file,
    read_records,
    try_lock,
)
from tracewire.delivery.shipper import BATCH_ID_NS, DeliveryCounters, Policy, Stopped, Transport
from tracewire.delivery.spool import Spool
from tracewire.version import __version__
from tracewire.wire import parse_key_id


def doctor_report(config: Any) -> dict[str, Any]:
    """Delivery health for `tracewire doctor` (the key is never shown)."""
    return {
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


def replay(config: Any) -> dict[str, Any]:
    """Ship every orphaned spool segment and resend every dead letter; report what happened."""
    return replay_all(config)


def mask_key(key: str | None) -> str | None:
    """`twk_<key id>_****`: only the key id, which `tracewire keys list` shows anyway. The secret is
    token_urlsafe text and may itself contain `_`, so nothing is cut at an underscore."""
    if not key:
        return None
    key_id = parse_key_id(key)
    return f"twk_{key_id}_****" if key_id else "**** (not a twk_<key id>_<secret> key)"


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
            if not try_lock(fd):  # a live process owns it; do not read under its feet
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


def transport_for(config: Any) -> Transport:
    return Transport(config.endpoint, config.api_key, config.signing_key, config.http_timeout,
                     config.verify_tls, __version__, getattr(config, "ca_file", None))


def check_endpoint(config: Any) -> dict[str, Any]:
    """Reachability (GET /healthz) and authentication (GET /v1/traces?limit=1)."""
    out: dict[str, Any] = {"url": redact_dsn(config.endpoint)}
    try:
        t = transport_for(config)
    except ValueError as exc:
        return {**out, "ok": False, "error": f"endpoint: {exc}"}
    t0 = time.monotonic()
    try:
        h = t.request("GET", "/healthz", auth=False)
        out["reachable"] = True
        out["healthz"] = h.status
        out["latency_ms"] = round((time.monotonic() - t0) * 1000, 1)
        if not config.api_key:
            out["auth"] = "no api_key configured"
        else:
            r = t.request("GET", "/v1/traces?limit=1")
            # An app's key is ingest-only: refused for reads (403) means it authenticated.
            out["auth"] = ("ok" if r.status == 200 or (r.status == 403 and r.error_code() == "insufficient_scope")
                           else f"{r.status}:{r.error_code()}")
    except ConnectionError as exc:
        out["reachable"] = False
        out["error"] = str(exc)
    finally:
        t.close()
    out["ok"] = bool(out.get("reachable") and out.get("auth") == "ok")
    return out


def replay_all(config: Any, max_attempts: int = 5) -> dict[str, Any]:
    """Ship every orphaned spool segment, then resend every dead letter (once each)."""
    if not config.endpoint:
        return {"ok": False, "error": "no endpoint configured"}
    spool = Spool(config.spool_dir, config.spool_max_bytes, config.spool_full_policy)
    dead = DeadLetters(config.spool_dir)
    counters = DeliveryCounters()
    stop = threading.Event()
    t = transport_for(config)
    policy = Policy(t, dead, counters, min(config.retry_max_backoff, 5.0), stop, max_attempts=max_attempts)
    report: dict[str, Any] = {"segments_claimed": spool.claim_orphans()}
    left = 0
    try:
        while True:
            batch = spool.next_batch(config.batch_size, config.batch_bytes)
            if batch is None:
                break
            try:
                policy.ship(batch.lines, batch.batch_id)
            except Stopped:
                spool.resolve(batch, ack=False)
                left += len(batch.lines)
                break
            spool.resolve(batch)
        report["spooled_events_resent"] = spool.counters.recovered_events
        report["quarantined"] = dict(spool.counters.quarantined)
        report.update(_replay_dead(config, policy, dead))
    finally:
        spool.close()
        dead.close()
        t.close()
    report.update({
        "shipped": counters.shipped, "duplicates": counters.duplicates, "retried": counters.retried,
        "dead_lettered_again": dict(counters.dead_lettered or {}), "left_in_spool": left,
        "last_error": counters.last_error,
    })
    report["ok"] = left == 0 and not report.get("dead_letters_left")
    return report


def _replay_dead(config: Any, policy: Policy, dead: DeadLetters) -> dict[str, Any]:
    resent = busy = left = 0
    for path in dead_files(config.spool_dir):
        fd = claim_file(path)
        if fd is None:
            busy += 1
            continue
        try:
            done = True
            for item in read_records(fd, 0, os.fstat(fd).st_size):
                if not isinstance(item, Record) or item.acked:
                    continue
                lines = item.payload.split(b"\n")[1:]
                try:
                    policy.ship(lines, str(uuid.uuid5(BATCH_ID_NS, f"{os.path.basename(path)}:{item.offset}")))
                except Stopped:
                    left += len(lines)
                    done = False
                    break
                resent += len(lines)
                os.pwrite(fd, MAGIC_ACKED, item.offset)
            if done:
                os.unlink(path)
        finally:
            os.close(fd)
    return {"dead_letters_resent": resent, "dead_letter_files_busy": busy, "dead_letters_left": left}
