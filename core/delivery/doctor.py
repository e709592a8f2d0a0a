"""What `tracewire doctor` and `tracewire replay` run: the store's counts, each sink's health,
spool and dead-letter summaries, the endpoint check, findings with a verdict, and the replay of
orphaned segments and dead letters through the shipper's policy.
"""

from __future__ import annotations

import datetime as _dt
import os
import sqlite3
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from typing import Any

from tracewire._dsn import redact_dsn
from tracewire.config import otel_sdk_disabled
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

# How much a finding matters, mildest first; the report's verdict is its worst finding.
OK, LOCAL, FIX = "ok", "fine for local use", "needs fixing"
LEVELS = (OK, LOCAL, FIX)
_SECRET_SETTINGS = ("api_key", "signing_key", "otlp_headers")  # otlp_headers usually carry a token


def doctor_report(config: Any, db: str | None = None) -> dict[str, Any]:
    """Everything `tracewire doctor` shows (keys never shown): the settings, the store at `db`
    (default: the config's), each sink's health, spool and dead letters, and the findings, each
    `ok`, `fine for local use` or `needs fixing`, with the worst as the `verdict`."""
    report: dict[str, Any] = {"config": shown_config(config), "store": store_summary(db or config.db)}
    report.update(delivery_report(config))
    report["sinks"] = sink_health(config, report)
    return with_verdict(report, findings(config, report))


def config_error_report(error: Exception) -> dict[str, Any]:
    """The report when the settings themselves are refused (the message names the setting)."""
    return with_verdict({"config": {"error": redact_dsn(str(error))}},
                        [finding(FIX, "config", redact_dsn(str(error)))])


def shown_config(config: Any) -> dict[str, Any]:
    def shown(k: str, v: Any) -> Any:
        if k in _SECRET_SETTINGS and v:
            return "***"
        return redact_dsn(v) if isinstance(v, str) else v

    return {k: shown(k, v) for k, v in config.values.items() if k not in ("processors", "mask")}


def delivery_report(config: Any) -> dict[str, Any]:
    """The collector side: settings, endpoint check, spool and dead letters."""
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


def finding(level: str, subject: str, message: str) -> dict[str, str]:
    return {"level": level, "subject": subject, "message": message}


def with_verdict(report: dict[str, Any], found: list[dict[str, str]]) -> dict[str, Any]:
    report["findings"] = found
    report["verdict"] = max((f["level"] for f in found), key=LEVELS.index, default=OK)
    return report


def exit_code(report: Mapping[str, Any]) -> int:
    """0 unless something needs fixing."""
    return 1 if report.get("verdict") == FIX else 0


def store_summary(path: str) -> dict[str, Any]:
    """The local SQLite store: size, traces, events, last write. Read here with plain sqlite3,
    read-only: `delivery` sits below the readers in the layers of the core."""
    special = path == ":memory:" or path.startswith("file:")
    abs_path = path if special else os.path.abspath(path)
    out: dict[str, Any] = {"path": redact_dsn(abs_path), "exists": not special and os.path.isfile(abs_path)}
    if not out["exists"]:
        folder = os.path.dirname(abs_path)
        while folder and not os.path.isdir(folder) and os.path.dirname(folder) != folder:
            folder = os.path.dirname(folder)
        out["writable"] = not special and os.access(folder, os.W_OK | os.X_OK)
        return out
    files = [abs_path + suffix for suffix in ("", "-wal")]
    out["bytes"] = sum(_size(f) for f in files)
    out["last_write"] = max((os.path.getmtime(f) for f in files if os.path.exists(f)), default=None)
    out["writable"] = os.access(abs_path, os.W_OK) and os.access(os.path.dirname(abs_path), os.W_OK | os.X_OK)
    try:
        conn = sqlite3.connect(f"file:{abs_path}?mode=ro", uri=True, timeout=5)
        try:
            events, traces, last = conn.execute(
                "SELECT COUNT(*), COUNT(DISTINCT trace_id), MAX(time) FROM events").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        out["error"] = f"not a readable tracewire store: {exc}"
        return out
    out.update(traces=traces, events=events, last_event_time_ns=last)
    return out


def sink_health(config: Any, report: Mapping[str, Any]) -> dict[str, Any]:
    """One entry per configured sink: where it writes and whether that works."""
    out: dict[str, Any] = {}
    for spec in config.sink:
        name = spec if isinstance(spec, str) else getattr(spec, "name", type(spec).__name__)
        if name == "sqlite":
            store = report["store"]
            out[name] = {"path": store["path"], "ok": bool(store.get("writable")) and "error" not in store}
        elif name == "jsonl":
            path = os.path.abspath(config.jsonl_path)
            out[name] = {"path": path, "exists": os.path.isfile(path), "bytes": _size(path)}
        elif name == "http":
            ep = report["endpoint"]
            out[name] = {"endpoint": ep.get("url"), "ok": bool(ep.get("ok")),
                         "spool_dir": report["spool"]["dir"]}
        elif name == "otlp":
            out[name] = {"endpoint": _otlp_endpoint(config), "exporting": not otel_sdk_disabled()}
        else:
            out[name] = {"ok": True}
    return out


def _otlp_endpoint(config: Any) -> str | None:
    raw = config.otlp_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT")
    return redact_dsn(str(raw)) if raw else None


def findings(config: Any, report: Mapping[str, Any]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    sinks = report["sinks"]
    store = report["store"]
    if "error" in store:
        out.append(finding(FIX, "store", f"{store['path']}: {store['error']}"))
    elif store["exists"]:
        if not store["writable"]:
            out.append(finding(FIX, "store", f"{store['path']} is not writable by this user"))
        else:
            out.append(finding(OK, "store", f"{_n(store['traces'], 'trace')}, {_n(store['events'], 'event')}"))
    elif "sqlite" in sinks:
        out.append(finding(LOCAL if store["writable"] else FIX, "store",
                           "nothing recorded here yet: made when an app first records" if store["writable"]
                           else "its folder is not writable by this user"))
    else:
        out.append(finding(LOCAL, "store", "none here, and no `sqlite` sink writes one"))
    if "jsonl" in sinks:
        out.append(finding(OK, "jsonl", f"{sinks['jsonl']['path']} ({_n(sinks['jsonl']['bytes'], 'byte')})"))
    if "memory" in sinks:
        out.append(finding(LOCAL, "memory", "events are kept in the process only"))
    if not sinks:
        out.append(finding(LOCAL, "sinks", "sink `none`: events are counted and discarded"))
    out.extend(_collector_findings(config, report))
    if "otlp" in sinks:
        otlp = sinks["otlp"]
        if not otlp["exporting"]:
            out.append(finding(FIX, "otlp", "OTEL_SDK_DISABLED=true: the otlp sink exports nothing (unset it to export)"))
        elif otlp["endpoint"] is None:
            out.append(finding(LOCAL, "otlp", "no endpoint set: exports to the OpenTelemetry default, localhost:4318"))
        else:
            out.append(finding(OK, "otlp", f"exports to {otlp['endpoint']} (not checked)"))
    out.extend(_spool_findings(report))
    return out


def _collector_findings(config: Any, report: Mapping[str, Any]) -> list[dict[str, str]]:
    if not config.endpoint:
        return [finding(LOCAL, "collector", "no endpoint configured: events stay on this machine")]
    ep = report["endpoint"]
    url = ep.get("url")
    if "http" not in report["sinks"]:
        return [finding(FIX, "collector", f"endpoint {url} is set but `sink` has no `http`: nothing is sent to it")]
    out = []
    if not config.api_key:
        out.append(finding(FIX, "collector", "no api_key: the collector refuses unauthenticated batches"))
    if not config.signing_key:
        out.append(finding(FIX, "collector", "no signing_key: the collector refuses unsigned batches"))
    if ep.get("error"):
        out.append(finding(FIX, "collector", f"{url} unreachable: {ep['error']}"))
    elif config.api_key and ep.get("auth") != "ok":
        out.append(finding(FIX, "collector", f"{url} refused the api_key ({ep.get('auth')})"))
    elif ep.get("ok"):
        out.append(finding(OK, "collector", f"{url} reachable in {ep.get('latency_ms')} ms, api_key accepted"))
    return out


def _spool_findings(report: Mapping[str, Any]) -> list[dict[str, str]]:
    spool, dead = report["spool"], report["dead_letters"]
    out = []
    if spool["pending_events"]:
        deliverable = report["endpoint"].get("ok")
        out.append(finding(OK if deliverable else FIX, "spool",
                           f"{_n(spool['pending_events'], 'event')} waiting in {spool['dir']}: "
                           + ("sent by the next run or `tracewire replay`" if deliverable
                              else "undelivered until the collector is reachable; then `tracewire replay`")))
    if spool["damaged_spans"]:
        out.append(finding(FIX, "spool", f"{_n(spool['damaged_spans'], 'damaged record')}: `tracewire replay` quarantines "
                                         "them and sends the rest"))
    q = spool["quarantine"]
    if q["files"]:
        out.append(finding(FIX, "spool", f"{_n(q['files'], 'damaged record')} quarantined ({_reasons(q['by_reason'])}), "
                                         f"their events lost: look, then delete {spool['dir']}/quarantine"))
    if dead["events"]:
        out.append(finding(FIX, "dead letters", f"{_n(dead['events'], 'event')} refused by the collector "
                                                f"({_reasons(dead['by_reason'])}): fix the cause, then `tracewire replay`"))
    return out


def _n(n: int | None, noun: str = "") -> str:
    """`1,204 events`, `1 trace`: thousands separated, the noun plural when it should be."""
    text = "-" if n is None else f"{n:,}"
    return f"{text} {noun}{'' if n == 1 else 's'}" if noun else text


def _reasons(by_reason: Mapping[str, int]) -> str:
    return ", ".join(f"{r}: {_n(c)}" for r, c in sorted(by_reason.items()))


def verdict_lines(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The human verdict, as (level or "", text) lines: the verdict, the store, each finding."""
    lines = [(report["verdict"], f"tracewire doctor: {report['verdict']}")]
    store = report.get("store")
    if store is not None:
        text = f"store: {store['path']}"
        if store.get("events") is not None:
            text += f" ({_n(store['traces'], 'trace')}, {_n(store['events'], 'event')}"
            text += f", last write {_when(store['last_write'])})" if store.get("last_write") else ")"
        lines.append(("", text))
    sinks = report.get("sinks")
    if sinks is not None:
        lines.append(("", "sinks: " + (", ".join(sinks) or "none")))
    width = max(len(f["subject"]) for f in report["findings"]) if report["findings"] else 0
    lines.extend((f["level"], f"{f['level']:<18}  {f['subject']:<{width}}  {f['message']}")
                 for f in report["findings"])
    return lines


def _when(epoch_s: float) -> str:
    at = _dt.datetime.fromtimestamp(epoch_s).strftime("%Y-%m-%d %H:%M:%S")
    age = max(0, int(time.time() - epoch_s))
    ago = (f"{age} s" if age < 60 else f"{age // 60} min" if age < 3600 else f"{age // 3600} h"
           if age < 86400 else f"{age // 86400} d")
    return f"{at}, {ago} ago"


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
