"""The `tracewire` command: traces, show, sessions, tail, export, prune, ui, serve, keys, replay, doctor.

Reads the local SQLite store (`--db`, else TRACEWIRE_DB, else the configured default) or a collector
(`--server URL`), and says which on stderr so stdout stays pipeable. Output goes through `rich` on a
terminal when it is installed (`tracewire[cli]`), plain text otherwise (formats, render, output).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from tracewire.cli.output import DIM, ERROR, ID, NAME, Line, Output, note
from tracewire.cli.render import (
    Limits,
    header_lines,
    render_tree,
    score_lines,
    score_summary,
    status_cell,
    tree_lines,
    usage,
)
from tracewire.model.score import FIELDS, SCORE_SCHEMA, SCORE_TYPE, by_span
from tracewire.read import formats as F
from tracewire.read.fold import summarize, tree
from tracewire.read.query import AmbiguousId, IdNotFound, TraceQuery, totals
from tracewire.ui.cli import add_ui_command
from tracewire.version import __version__

__all__ = ["build_parser", "main", "render_tree"]


class UsageError(Exception):
    """A value on the command line the command cannot use: exit 2 with its message."""


def _store(args: argparse.Namespace) -> Any:
    """The store to read, announced on stderr (`store: PATH` or `collector: URL`)."""
    if getattr(args, "server", None):
        from tracewire.read.remote import RemoteStore

        note(f"collector: {args.server}")
        return RemoteStore(args.server, args.api_key or os.environ.get("TRACEWIRE_API_KEY"))
    from tracewire.read.local import LocalStore, default_db

    path = os.path.abspath(args.db or default_db())
    note(f"store: {path}")
    return LocalStore(path)


def _remote(store: Any) -> bool:
    return not hasattr(store, "path")


def _when(text: str | None, option: str) -> int | None:
    if text is None:
        return None
    try:
        return F.parse_when(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


def _resolve(store: Any, given: str) -> str:
    """The trace id a whole id or a unique prefix names."""
    try:
        return str(store.resolve(given))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def cmd_traces(args: argparse.Namespace) -> int:
    store = _store(args)
    query = TraceQuery(session_id=args.session, user_id=args.user, tags=tuple(args.tag or ()), status=args.status,
                       name=args.name, model=args.model, since=_when(args.since, "--since"),
                       until=_when(args.until, "--until"))
    rows = store.query_traces(query, limit=args.limit)
    scored: dict[str, list[dict[str, Any]]] = {}
    for sc in _scores(store, trace_ids=[r["trace_id"] for r in rows]):
        scored.setdefault(sc["trace_id"], []).append(sc)
    header = ["id", "start", "name", "duration", "spans", "LLM calls", "tokens in/out", "cost", "status", "scores"]
    table = [
        [(r["trace_id"] if args.full_ids else r.get("short_id") or r["trace_id"], ID), (F.when(r["start_ns"]), None),
         (f'{r["kind"]} {r["name"]}'.strip(), None), (F.duration(r["duration_ms"]), None), (F.tokens(r["spans"]), None), (F.tokens(r["llm_calls"]), None),
         (F.tokens_in_out(r["input_tokens"], r["output_tokens"]), None), (F.cost(r["cost_usd"]), None),
         status_cell(r), (score_summary(scored.get(r["trace_id"], ())), None)]
        for r in rows
    ]
    t = totals(rows)
    footer = ["total", "", f"{t.traces:,} trace{'' if t.traces == 1 else 's'}", "", "", F.tokens(t.llm_calls),
              F.tokens_in_out(t.input_tokens, t.output_tokens), F.cost(t.cost_usd), f"{t.errors:,} error{'' if t.errors == 1 else 's'}",
              score_summary([sc for group in scored.values() for sc in group])]
    if not scored:  # the column appears once there is something to show in it
        header, table, footer = header[:-1], [r[:-1] for r in table], footer[:-1]
    Output().table(header, table, footer, right=(3, 4, 5, 6, 7))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    store = _store(args)
    if args.last or not args.trace_id:
        trace_id = store.last_trace_id()
        if trace_id is None:
            print("no traces recorded yet", file=sys.stderr)
            return 1
    else:
        trace_id = _resolve(store, args.trace_id)
    events = store.trace_events(trace_id)
    if not events:
        raise IdNotFound(trace_id)
    out = Output()
    for line in header_lines(asdict(summarize(trace_id, events)), trace_id):
        out.line(line)
    own, at_spans = by_span(_scores(store, trace_ids=[trace_id]))
    spans = {e.get("span_id") for e in events}
    # a score of a span this trace does not hold (yet) is listed with the trace's own, naming its span
    own += [{**sc, "name": f"{sc['name']} (span {sid})"} for sid in list(at_spans) if sid not in spans
            for sc in at_spans.pop(sid)]
    for line in score_lines(own):
        out.line(line)
    out.line()
    for line in tree_lines(tree(events), Limits.of(args.full), scores=at_spans):
        out.line(line)
    return 0


def _scores(store: Any, **filters: Any) -> list[dict[str, Any]]:
    """The store's scores (a collector read through a client without `scores` has none to give)."""
    read = getattr(store, "scores", None)
    return list(read(**filters)) if read is not None else []


def cmd_sessions(args: argparse.Namespace) -> int:
    store = _store(args)
    found = store.sessions(limit=args.limit, user_id=args.user, since=_when(args.since, "--since"),
                           until=_when(args.until, "--until"))
    header = ["session", "user", "first", "last", "traces", "LLM calls", "tokens in/out", "cost", "errors", "scores"]
    rows = [
        [(sid, ID), (", ".join(t.users) or "-", None), (F.when(t.first_ns), None), (F.when(t.last_ns), None),
         (F.tokens(t.traces), None), (F.tokens(t.llm_calls), None),
         (F.tokens_in_out(t.input_tokens, t.output_tokens), None), (F.cost(t.cost_usd), None),
         (F.tokens(t.errors), ERROR if t.errors else None), (score_summary(_scores(store, session_id=sid)), None)]
        for sid, t in found
    ]
    if all(r[-1][0] == F.MISSING for r in rows):  # the column appears once a session has scores
        header, rows = header[:-1], [r[:-1] for r in rows]
    Output().table(header, rows, right=(4, 5, 6, 7, 8))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    store = _store(args)
    trace_id = _resolve(store, args.trace) if args.trace else None
    out = sys.stdout
    if _remote(store):
        ids = [trace_id] if trace_id else store.trace_ids()
        for tid in ids:
            for e in store.trace_events(tid):
                out.write(json.dumps(e, ensure_ascii=False) + "\n")
        # score records after the events, as the local export writes them (a trace's, with its spans')
        for sc in _scores(store, trace_ids=[trace_id]) if trace_id else _scores(store):
            # the read API gives a score's fields: the record is them with its schema and type
            rec = {"id": sc["id"], "schema": SCORE_SCHEMA, "type": SCORE_TYPE} | {k: sc.get(k) for k in FIELDS}
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
        return 0
    for _, line in store.lines(trace_id=trace_id):
        out.write(line + "\n")
    for line in store.score_lines(trace_id):  # score records after the events: {"type": "score", ...}
        out.write(line + "\n")
    return 0


def tail_line(e: dict[str, Any], short_id: str, start: dict[str, Any] | None) -> Line:
    """One event: time, short trace id, type, name; for an end (given its span's `start` event) its
    duration, model, tokens and cost; for an error its type and message."""
    phase = e.get("phase")
    failed = phase == "error" or (phase not in ("start", "end") and e.get("error"))
    line: Line = [(F.clock(e.get("time")), DIM), ("  ", None), (short_id, ID), ("  ", None),
                  (f'{e.get("type")!s:<12}', ERROR if failed else None), (" ", None), (str(e.get("name") or ""), NAME)]
    if phase in ("end", "error"):
        attrs: dict[str, Any] = {}
        for source in (start, e):
            if source and isinstance(source.get("attributes"), dict):
                attrs.update(source["attributes"])
        parts = []
        began = start.get("time") if start else None
        if isinstance(began, int) and isinstance(e.get("time"), int):
            parts.append(F.duration((e["time"] - began) / 1e6))
        parts += usage(attrs)
        if parts:
            line.append(("  " + "  ".join(parts), None))
    err = e.get("error")
    if isinstance(err, dict):
        line.append((f'  {err.get("type")}: {err.get("message")}', ERROR))
    return line


def cmd_tail(args: argparse.Namespace) -> int:
    from tracewire.read.local import LocalStore

    args.server = None
    store: LocalStore = _store(args)
    out = Output()
    short = store.short_id if not args.full_ids else str
    last = 0 if args.all else max(0, store.last_line() - args.lines)
    starts: dict[tuple[str, str], dict[str, Any]] = {}  # spans started and not yet ended
    try:
        while True:
            for n, raw in store.lines(after=last):
                last = n
                e = json.loads(raw)
                trace_id, span_id = str(e.get("trace_id") or ""), str(e.get("span_id") or "")
                start = None
                if e.get("phase") == "start":
                    starts[(trace_id, span_id)] = e
                elif e.get("phase") in ("end", "error"):
                    start = starts.pop((trace_id, span_id), None) or store.start_event(trace_id, span_id)
                out.line(tail_line(e, short(trace_id) if trace_id else "-", start))
                out.stream.flush()
            if not args.follow:
                return 0
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from tracewire import config as cfg
    from tracewire.delivery import doctor

    try:
        # the store line first, even when another setting is refused
        print(f"store: {cfg.setting('db', args.db)}", file=sys.stderr)
        conf = cfg.Config.resolve({"db": args.db} if args.db else {})
    except cfg.ConfigError as exc:
        report = doctor.config_error_report(exc)
    else:
        report = doctor.doctor_report(conf)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return doctor.exit_code(report)
    styles = {doctor.OK: "green", doctor.LOCAL: "yellow", doctor.FIX: "bold red"}
    console = None
    if sys.stdout.isatty() and not os.environ.get("NO_COLOR"):
        try:
            from rich.console import Console

            console = Console(highlight=False)
        except ImportError:
            pass
    for level, text in doctor.verdict_lines(report):
        if console is not None and level:
            from rich.text import Text

            console.print(Text(text, style=styles[level]))
        else:
            print(text)
    return doctor.exit_code(report)


def cmd_replay(args: argparse.Namespace) -> int:
    from tracewire import config as cfg

    try:
        from tracewire.delivery import doctor
    except ImportError:
        print("replay needs the http sink's spool, which this installation lacks", file=sys.stderr)
        return 1
    given = {"endpoint": args.endpoint, "api_key": args.api_key, "signing_key": args.signing_key,
             "spool_dir": args.spool_dir}
    report = doctor.replay(cfg.Config.resolve({k: v for k, v in given.items() if v is not None}))
    print(json.dumps(report, indent=2, default=str))
    return 0 if report.get("ok") else 1  # not ok: something is left undelivered (or nothing could be sent)


def cmd_prune(args: argparse.Namespace) -> int:
    from tracewire.read.index import forget
    from tracewire.read.local import default_db
    from tracewire.sinks.retention import prune_older_than, vacuum
    from tracewire.sinks.sqlite_table import connect

    cutoff = _when(args.older_than, "--older-than")
    if cutoff is None:
        raise UsageError("--older-than: a time is needed")
    if args.collector_db is not None:
        return _prune_collector(args, cutoff)
    path = os.path.abspath(args.db or default_db())
    note(f"store: {path}")
    if not os.path.exists(path):
        raise FileNotFoundError(f"tracewire: no store at {path}")
    conn = connect(path)
    try:
        done = prune_older_than(conn, cutoff, dry_run=args.dry_run, forget=forget)
        verb = "would delete" if args.dry_run else "deleted"
        counts = ", ".join(f"{n:,} {what}{'' if n == 1 else 's'}"
                           for n, what in ((done.traces, "trace"), (done.events, "event"), (done.scores, "score")))
        print(f"{verb} {counts} last written before {F.when(cutoff)}")
        if args.dry_run:
            return 0
        if args.vacuum:
            print(f"freed {done.bytes_freed:,} bytes; VACUUM shrank the file by {vacuum(conn):,} bytes")
        else:
            print(f"freed {done.bytes_freed:,} bytes inside the file (new events reuse them; "
                  "the file shrinks only with --vacuum)")
    finally:
        conn.close()
    return 0


def _prune_collector(args: argparse.Namespace, cutoff: int) -> int:
    """`prune --collector-db`: what `serve --retention` does, once (tracewire.server.retention)."""
    from tracewire._dsn import redact_dsn
    from tracewire.server.backends import open_store
    from tracewire.server.cli import DB_ENV, db_url
    from tracewire.server.retention import describe
    from tracewire.server.store import StoreUnavailable, sqlite_path

    if args.db is not None or args.vacuum:
        raise UsageError(f"--collector-db: not with {'--db' if args.db is not None else '--vacuum'}")
    try:
        url = db_url(args.collector_db or os.environ.get(DB_ENV) or None, "--collector-db")
        if not url.startswith(("postgresql://", "postgres://")) and not os.path.exists(sqlite_path(url)):
            raise FileNotFoundError(f"tracewire: no collector store at {os.path.abspath(sqlite_path(url))}")
        note(f"collector store: {redact_dsn(url)}")
        store = open_store(url)
    except (ValueError, StoreUnavailable) as exc:
        raise UsageError(redact_dsn(str(exc))) from None
    try:
        done = store.prune_before(cutoff, dry_run=args.dry_run)
    finally:
        store.close()
    if done is None:
        print("tracewire: another collector is pruning this store; try again later", file=sys.stderr)
        return 1
    print(f"{'would delete' if args.dry_run else 'deleted'} {describe(done)} older than {F.when(cutoff)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tracewire", description="Look at what your agents did.")
    parser.add_argument("--version", action="version", version=f"tracewire {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def source(p: argparse.ArgumentParser, remote: bool = True) -> None:
        p.add_argument("--db", default=None, metavar="PATH",
                       help="SQLite store (default: $TRACEWIRE_DB, else the configured store)")
        if remote:
            p.add_argument("--server", default=None, metavar="URL", help="read from a collector at this URL instead")
            p.add_argument("--api-key", default=None, help="collector API key with the read scope "
                                                           "(default: $TRACEWIRE_API_KEY)")

    def when(p: argparse.ArgumentParser, what: str) -> None:
        p.add_argument("--since", default=None, metavar="WHEN",
                       help=f"{what} at or after WHEN: ISO-8601 (2026-12-06, 2026-12-06T10:00) or an age (30s, 15m, 2h, 7d)")
        p.add_argument("--until", default=None, metavar="WHEN", help=f"{what} at or before WHEN (same forms as --since)")

    full_ids = "show whole trace ids instead of the shortest unique prefix"

    p = sub.add_parser("traces", help="list recent traces, newest first, with a totals row")
    source(p)
    p.add_argument("--limit", type=int, default=20, metavar="N", help="at most N traces (default 20)")
    p.add_argument("--session", default=None, metavar="S", help="only this session's traces")
    p.add_argument("--user", default=None, metavar="U", help="only this user's traces")
    p.add_argument("--tag", action="append", default=None, metavar="T",
                   help="only traces carrying this tag (repeat it: all must match)")
    p.add_argument("--status", choices=("ok", "error", "open"), default=None,
                   help="only traces with this status (error: any span failed)")
    p.add_argument("--name", default=None, metavar="TEXT", help="only traces whose root name contains TEXT (any case)")
    p.add_argument("--model", default=None, metavar="M", help="only traces with an LLM call to a model matching M")
    when(p, "traces started")
    p.add_argument("--full-ids", action="store_true", help=full_ids)
    p.set_defaults(func=cmd_traces)

    p = sub.add_parser("show", help="print a trace: header, span tree and what each span carried")
    source(p)
    p.add_argument("trace_id", nargs="?", metavar="ID", help="trace id or a unique prefix of it (4+ characters)")
    p.add_argument("--last", action="store_true", help="the most recently started trace (the default)")
    p.add_argument("--full", action="store_true", help="show content whole instead of 6 lines / 400 characters a value")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("sessions", help="list sessions, most recently active first")
    source(p)
    p.add_argument("--limit", type=int, default=20, metavar="N", help="at most N sessions (default 20)")
    p.add_argument("--user", default=None, metavar="U", help="only this user's sessions")
    when(p, "sessions active")
    p.set_defaults(func=cmd_sessions)

    p = sub.add_parser("tail", help="print events as they are written, one line each")
    source(p, remote=False)
    p.add_argument("--lines", "-n", type=int, default=10, metavar="N", help="start with the last N events (default 10)")
    p.add_argument("--all", action="store_true", help="start from the first event")
    p.add_argument("--no-follow", dest="follow", action="store_false", help="print and exit instead of following")
    p.add_argument("--interval", type=float, default=0.5, metavar="SECONDS",
                   help="how often to look for new events (default 0.5)")
    p.add_argument("--full-ids", action="store_true", help=full_ids)
    p.set_defaults(func=cmd_tail)

    p = sub.add_parser("export", help="write events as JSONL (schema 1) to stdout, then score records")
    source(p)
    p.add_argument("--trace", default=None, metavar="ID", help="only this trace (id or a unique prefix)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("prune", help="delete whole traces last written to before a time, with their events, "
                                     "scores and viewer rows")
    p.add_argument("--db", default=None, metavar="PATH",
                   help="SQLite store (default: $TRACEWIRE_DB, else the configured store)")
    p.add_argument("--older-than", required=True, metavar="WHEN",
                   help="delete traces whose newest event is older than WHEN: an age (90m, 12h, 30d) or an ISO-8601 "
                        "date (2026-11-01)")
    p.add_argument("--collector-db", nargs="?", const="", default=None, metavar="URL",
                   help="prune a collector's store instead: sqlite:///PATH or postgresql://... (without URL:"
                        " $TRACEWIRE_COLLECTOR_DB, else the collector's default); as `serve --retention` does")
    p.add_argument("--dry-run", action="store_true", help="count what would be deleted; change nothing")
    p.add_argument("--vacuum", action="store_true", help="then rewrite the file to give the space back to the disk "
                                                         "(locks the store while it runs)")
    p.set_defaults(func=cmd_prune)

    add_ui_command(sub)  # `tracewire ui`: browse the local store in a web page on this machine
    from tracewire.cli.experiments import add_commands as add_experiment_commands
    add_experiment_commands(sub)  # `tracewire experiments` and `tracewire datasets`

    p = sub.add_parser("doctor", help="check configuration, store, sinks, spool and collector; exit 1 if something "
                                      "needs fixing")
    p.add_argument("--db", default=None, help="SQLite store (default: $TRACEWIRE_DB or the nearest .tracewire/)")
    p.add_argument("--json", action="store_true", help="print the machine-readable report instead of the verdict")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("replay", help="resend spooled batches and dead letters; exit 1 if any are left")
    p.add_argument("--endpoint", default=None, help="collector URL (default: $TRACEWIRE_ENDPOINT)")
    p.add_argument("--api-key", default=None, help="ingest key (default: $TRACEWIRE_API_KEY)")
    p.add_argument("--signing-key", default=None, help="signing secret (default: $TRACEWIRE_SIGNING_KEY)")
    p.add_argument("--spool-dir", default=None, help="the http sink's spool folder (default: $TRACEWIRE_SPOOL_DIR)")
    p.set_defaults(func=cmd_replay)

    try:
        from tracewire.server.cli import register
    except ImportError:
        s = sub.add_parser("serve", help="run the collector (needs tracewire[server])")
        s.set_defaults(func=lambda a: _missing("server"))
        s = sub.add_parser("keys", help="manage collector API keys (needs tracewire[server])")
        s.set_defaults(func=lambda a: _missing("server"))
    else:
        register(sub)
    return parser


# Optional dependencies, by the pip extra that brings them: a command that needs one says so in a line.
_EXTRA_OF = {"fastapi": "server", "uvicorn": "server", "starlette": "server", "psycopg": "server",
             "psycopg_pool": "server", "opentelemetry": "otel"}


def _missing(extra: str) -> int:
    print(f"this command needs: pip install 'tracewire[{extra}]'", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except FileNotFoundError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except IdNotFound as exc:
        print(f"tracewire: {exc}", file=sys.stderr)
        return 1
    except (AmbiguousId, UsageError) as exc:
        print(f"tracewire: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except ModuleNotFoundError as exc:
        extra = _EXTRA_OF.get((exc.name or "").partition(".")[0])
        if extra is None:
            raise
        return _missing(extra)
    except Exception as exc:
        from tracewire._dsn import redact_dsn
        from tracewire.read.remote import RemoteError  # stdlib + requests only; imported when needed

        if not isinstance(exc, RemoteError):
            raise
        # the collector refused, e.g. 403 insufficient_scope: the key cannot read
        print(f"tracewire: {redact_dsn(str(exc))}", file=sys.stderr)
        return 1

