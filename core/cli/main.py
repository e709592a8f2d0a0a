"""The `tracewire` command: traces, show, tail, export, serve, keys, replay, doctor.

Reads the local SQLite store (`--db`, else TRACEWIRE_DB, else ./.tracewire/tracewire.db) or a
collector (`--server URL`). Uses `rich` for output when installed (`tracewire[cli]`), plain
text otherwise.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from tracewire.model import attributes as A
from tracewire.read.fold import SpanView, tree
from tracewire.version import __version__


def _store(args: argparse.Namespace) -> Any:
    if getattr(args, "server", None):
        from tracewire.read.remote import RemoteStore

        return RemoteStore(args.server, args.api_key or os.environ.get("TRACEWIRE_API_KEY"))
    from tracewire.read.local import LocalStore

    return LocalStore(args.db)


def _fmt_time(ns: int | None) -> str:
    if ns is None:
        return "-"
    return _dt.datetime.fromtimestamp(ns / 1e9).strftime("%Y-%m-%d %H:%M:%S")


def _fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.0f}ms" if ms >= 1 else f"{ms:.2f}ms"


def cmd_traces(args: argparse.Namespace) -> int:
    rows = _store(args).list_traces(limit=args.limit, session_id=args.session)
    header = ["trace", "root", "start", "duration", "status", "llm", "tokens in/out", "cost $"]
    table = [
        [r["trace_id"], f'{r["kind"]} {r["name"]}', _fmt_time(r["start_ns"]), _fmt_ms(r["duration_ms"]),
         r["status"], str(r["llm_calls"]), f'{r["input_tokens"]}/{r["output_tokens"]}',
         f'{r["cost_usd"]:.6f}' if r["cost_usd"] else "-"]
        for r in rows
    ]
    _print_table(header, table)
    return 0


def _span_line(s: SpanView) -> str:
    a = s.attributes
    if s.status == "point":
        text = s.input if s.input is not None else s.output
        preview = "" if text is None else " " + _preview(text)
        return f"· {s.type or s.kind} {s.name if s.name != s.type else ''}{preview}".rstrip()
    parts = [f"{s.kind} {s.name}", _fmt_ms(s.duration_ms)]
    model = a.get(A.RESPONSE_MODEL) or a.get(A.REQUEST_MODEL)
    if model:
        parts.append(f"model={model}")
    if A.USAGE_INPUT_TOKENS in a or A.USAGE_OUTPUT_TOKENS in a:
        parts.append(f"tokens={a.get(A.USAGE_INPUT_TOKENS, 0)}/{a.get(A.USAGE_OUTPUT_TOKENS, 0)}")
    if a.get(A.COST_USD):
        parts.append(f"cost=${a[A.COST_USD]:.6f}")
    if a.get(A.TTFT_MS) is not None:
        parts.append(f"ttft={a[A.TTFT_MS]}ms")
    if a.get(A.TOOL_CALL_ID):
        parts.append(f"call={a[A.TOOL_CALL_ID]}")
    parts.append(s.status.upper() if s.status == "error" else s.status)
    if s.cycle:
        parts.append("PARENT CYCLE")
    line = "  ".join(parts)
    if s.error:
        line += f"  {s.error.get('type')}: {_preview(s.error.get('message'), 100)}"
    return line


def _preview(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_tree(events: list[dict[str, Any]]) -> list[str]:
    """The span tree as text lines (also used by the examples)."""
    out: list[str] = []
    # An explicit stack, not recursion: a trace may nest deeper than Python's recursion limit.
    stack: list[tuple[SpanView, str, bool, bool]] = [(r, "", True, True) for r in reversed(tree(events))]
    while stack:
        node, prefix, last, root = stack.pop()
        out.append((prefix + ("└─ " if last else "├─ ") if not root else "") + _span_line(node))
        child_prefix = prefix + ("   " if last else "│  ") if not root else ""
        n = len(node.children)
        stack.extend((child, child_prefix, i == n - 1, False) for i, child in reversed(list(enumerate(node.children))))
    return out


def cmd_show(args: argparse.Namespace) -> int:
    store = _store(args)
    trace_id = store.last_trace_id() if args.last or not args.trace_id else args.trace_id
    if trace_id is None:
        print("no traces recorded yet", file=sys.stderr)
        return 1
    events = store.trace_events(trace_id)
    if not events:
        print(f"trace {trace_id} not found", file=sys.stderr)
        return 1
    print(f"trace {trace_id}")
    for line in render_tree(events):
        print(line)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    store = _store(args)
    out = sys.stdout
    if getattr(args, "server", None):
        ids = [args.trace] if args.trace else store.trace_ids()
        for tid in ids:
            for e in store.trace_events(tid):
                out.write(json.dumps(e, ensure_ascii=False) + "\n")
        return 0
    for _, line in store.lines(trace_id=args.trace):
        out.write(line + "\n")
    return 0


def cmd_tail(args: argparse.Namespace) -> int:
    from tracewire.read.local import LocalStore

    store = LocalStore(args.db)
    last = 0
    if not args.all:
        for n, _ in store.lines():
            last = n
        last = max(0, last - args.lines)
    try:
        while True:
            for n, line in store.lines(after=last):
                last = n
                e = json.loads(line)
                print(f'{_fmt_time(e.get("time"))} {e.get("type"):<16} {e.get("name")!s:<24} '
                      f'trace={e.get("trace_id")} span={e.get("span_id")}', flush=True)
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


def _print_table(header: list[str], rows: list[list[str]]) -> None:
    try:
        if not sys.stdout.isatty():  # pipes and logs get plain, greppable columns
            raise ImportError
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
        print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
        for r in rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
        return
    table = Table(*header)
    for r in rows:
        table.add_row(*r)
    Console().print(table)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tracewire", description="Look at what your agents did.")
    parser.add_argument("--version", action="version", version=f"tracewire {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def source(p: argparse.ArgumentParser) -> None:
        p.add_argument("--db", default=None, help="SQLite store (default: $TRACEWIRE_DB or ./.tracewire/tracewire.db)")
        p.add_argument("--server", default=None, help="read from a collector at this URL instead")
        p.add_argument("--api-key", default=None, help="collector API key (default: $TRACEWIRE_API_KEY)")

    p = sub.add_parser("traces", help="list recent traces")
    source(p)
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--session", default=None)
    p.set_defaults(func=cmd_traces)

    p = sub.add_parser("show", help="print a trace's span tree")
    source(p)
    p.add_argument("trace_id", nargs="?")
    p.add_argument("--last", action="store_true", help="the most recently started trace")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("tail", help="print events as they are written")
    p.add_argument("--db", default=None)
    p.add_argument("--lines", "-n", type=int, default=10)
    p.add_argument("--all", action="store_true", help="start from the first event")
    p.add_argument("--no-follow", dest="follow", action="store_false")
    p.add_argument("--interval", type=float, default=0.5)
    p.set_defaults(func=cmd_tail)

    p = sub.add_parser("export", help="write events as JSONL (schema 1) to stdout")
    source(p)
    p.add_argument("--trace", default=None)
    p.set_defaults(func=cmd_export)

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

