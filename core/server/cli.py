"""`tracewire serve` and `tracewire keys create|list|revoke`, registered into the main CLI's argparse."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import ssl
import sys
import time
from typing import Any

from tracewire._dsn import escape_userinfo_at, redact_dsn
from tracewire.server.store import SCOPES
from tracewire.wire import Limits

DB_ENV = "TRACEWIRE_COLLECTOR_DB"
KEYS_ENV = "TRACEWIRE_COLLECTOR_KEYS"
TLS_KEY_PASSWORD_ENV = "TRACEWIRE_TLS_KEY_PASSWORD"
# libpq keyword/value form ("host=h dbname=x ..."): `--db` takes URLs only.
_KEYWORD_DSN = re.compile(r"^\s*[A-Za-z_]+\s*=")


def register(subparsers: Any) -> None:
    """Add `serve` and `keys` to the `tracewire` command's subparsers."""
    defaults = Limits()
    serve = subparsers.add_parser("serve", help="run the collector (HTTP ingestion + read API)",
                                  description="Run the tracewire collector. Binds to 127.0.0.1 unless told otherwise.")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=4319, help="port (default 4319)")
    _store_args(serve)
    serve.add_argument("--workers", type=int, default=1, help="collector processes sharing the port (default 1)")
    serve.add_argument("--max-body-bytes", type=int, default=defaults.max_body_bytes,
                       help="largest request body as sent, i.e. compressed (default 10 MiB)")
    serve.add_argument("--max-inflated-bytes", type=int, default=defaults.max_inflated_bytes,
                       help="largest body after gzip inflation (default 50 MiB)")
    serve.add_argument("--max-events", type=int, default=defaults.max_events, help="events per batch (default 10000)")
    serve.add_argument("--max-event-bytes", type=int, default=defaults.max_event_bytes,
                       help="largest single event (default 1 MiB)")
    serve.add_argument("--signature-window", type=int, default=defaults.signature_window_s,
                       help="seconds a signed batch's timestamp may differ from the clock (default 300)")
    serve.add_argument("--rate-limit", type=float, default=0.0,
                       help="requests per second per API key, shared by every collector process on the same "
                            "database (default 0 = unlimited)")
    serve.add_argument("--pool-size", type=int, default=8, help="PostgreSQL connections per process (default 8)")
    serve.add_argument("--retention", default=None, metavar="AGE",
                       help="delete what is older than AGE (30d, 12h, 2w) at start and then hourly: whole traces"
                            " on SQLite, whole day partitions on PostgreSQL (default: keep everything)")
    serve.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"],
                       help="how much the collector logs (default: warning)")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    tls = serve.add_argument_group("TLS", "serve HTTPS directly (or put a TLS-terminating reverse proxy in front)")
    tls.add_argument("--tls-cert", metavar="FILE", help="PEM certificate chain (server certificate first)")
    tls.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert")
    tls.add_argument("--tls-key-password", metavar="PASSWORD", default=None,
                     help=f"password of an encrypted --tls-key (default ${TLS_KEY_PASSWORD_ENV}; prefer the variable:"
                          " a command line is visible to other users)")
    slow = serve.add_argument_group("connection timeouts", "bound what a slow or idle client can hold")
    slow.add_argument("--header-timeout", type=float, default=10.0, metavar="SECONDS",
                      help="time a client has to send a request's headers; then 408 and close (default 10)")
    slow.add_argument("--body-timeout", type=float, default=60.0, metavar="SECONDS",
                      help="time a request may spend waiting for its body; then 408 and close (default 60)")
    slow.add_argument("--keep-alive-timeout", type=int, default=5, metavar="SECONDS",
                      help="an idle keep-alive connection is closed after this (default 5)")
    slow.add_argument("--max-header-bytes", type=int, default=64 * 1024, metavar="BYTES",
                      help="largest request line + headers; larger is refused with 431 (default 64 KiB)")
    serve.set_defaults(func=_serve)

    keys = subparsers.add_parser("keys", help="manage the collector's API keys",
                                 description="Create, list and revoke collector API keys (stored hashed).")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="{create,list,revoke}")
    keys_sub.required = True
    create = keys_sub.add_parser("create", help="mint a key for a project (shown once)")
    create.add_argument("--project", required=True, help="the project the key writes to and reads from")
    create.add_argument("--scope", action="append", choices=SCOPES, dest="scopes", metavar="{" + ",".join(SCOPES) + "}",
                        help="what the key may do: ingest (send events), read (the read API), admin;"
                             " repeat for several (default: ingest only, what an app needs)")
    _store_args(create)
    create.add_argument("--json", action="store_true", help="print the new key as JSON")
    create.set_defaults(func=_keys_create)
    lst = keys_sub.add_parser("list", help="list keys (never their secrets)")
    _store_args(lst)
    lst.add_argument("--json", action="store_true", help="print JSON")
    lst.set_defaults(func=_keys_list)
    revoke = keys_sub.add_parser("revoke", help="revoke a key: refused from the next request on")
    revoke.add_argument("key_id", help="the 12-hex key id (the part after twk_)")
    _store_args(revoke)
    revoke.set_defaults(func=_keys_revoke)


def _store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default=os.environ.get(DB_ENV) or None,
                   help=f"sqlite:///PATH or postgresql://... (default ${DB_ENV} or sqlite:///.tracewire/collector.db)")
    p.add_argument("--keys", default=os.environ.get(KEYS_ENV) or None, metavar="FILE",
                   help=f"keep API keys in this JSON file instead of the database (default ${KEYS_ENV})")


def _db(args: argparse.Namespace) -> str:
    return db_url(args.db)


def db_url(given: str | None, option: str = "--db") -> str:
    """A collector database URL (None: the default), checked before any driver sees it: a driver's parse
    error would quote it back, password included. ValueError names `option`."""
    from tracewire.server.app import DEFAULT_DB

    db = str(given or DEFAULT_DB)
    if _KEYWORD_DSN.match(db):
        raise ValueError(f"{option} takes a URL: sqlite:///PATH or postgresql://user@host:port/db"
                         " (not a keyword/value connection string)")
    if db.startswith(("postgresql://", "postgres://")):
        db = escape_userinfo_at(db)
        try:
            from psycopg.conninfo import conninfo_to_dict
        except ImportError:
            return db
        try:
            conninfo_to_dict(db)
        except Exception:  # noqa: BLE001 - its message quotes the URL: never shown
            raise ValueError(f"{option}: cannot parse the postgresql:// URL; percent-encode special characters of the"
                             " password ('/' as %2F, '?' as %3F, '#' as %23, '%' as %25)") from None
    return db


def _redact(url: str) -> str:
    return redact_dsn(url)


class _RedactingFilter(logging.Filter):
    """Driver and server log records pass through `redact_dsn` (psycopg's pool logs its errors)."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = redact_dsn(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        return True


def _redact_logs() -> None:
    for name in ("psycopg", "psycopg.pool", "uvicorn", "uvicorn.error", "tracewire"):
        logging.getLogger(name).addFilter(_RedactingFilter())


def _key_store(args: argparse.Namespace) -> Any:
    if args.keys:
        from tracewire.server.keys import FileKeyStore

        return FileKeyStore(args.keys)
    from tracewire.server.backends import open_store

    return open_store(_db(args))


def _tls_options(args: argparse.Namespace) -> dict[str, Any]:
    """uvicorn's ssl_* arguments, checked now so a bad option fails at start, naming the option."""
    cert, key = args.tls_cert, args.tls_key
    password = args.tls_key_password or os.environ.get(TLS_KEY_PASSWORD_ENV) or None
    if not cert and not key:
        if args.tls_key_password:
            raise ValueError("--tls-key-password needs --tls-cert and --tls-key")
        return {}
    if not cert or not key:
        raise ValueError(f"{'--tls-key' if cert else '--tls-cert'} is required with {'--tls-cert' if cert else '--tls-key'}")
    for option, path in (("--tls-cert", cert), ("--tls-key", key)):
        if not os.path.isfile(path):
            raise ValueError(f"{option}: no such file: {path}")
        if not os.access(path, os.R_OK):
            raise ValueError(f"{option}: cannot read {path}")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key, password)
    except ssl.SSLError as exc:
        raise ValueError(f"--tls-cert/--tls-key: not a usable certificate and key ({exc.reason or exc})"
                         f"{'' if password else '; an encrypted key needs ' + TLS_KEY_PASSWORD_ENV}") from None
    return {"ssl_certfile": cert, "ssl_keyfile": key, "ssl_keyfile_password": password}


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from tracewire.server import protocol
    from tracewire.server.app import CONFIG_ENV, ServerConfig, create_app
    from tracewire.server.retention import parse_window
    from tracewire.server.store import StoreUnavailable

    _redact_logs()
    try:
        for option, value in (("--header-timeout", args.header_timeout), ("--body-timeout", args.body_timeout),
                              ("--keep-alive-timeout", args.keep_alive_timeout),
                              ("--max-header-bytes", args.max_header_bytes)):
            if not value > 0:
                raise ValueError(f"{option} must be > 0")
        tls = _tls_options(args)
        config = ServerConfig(
            db=_db(args), keys_file=args.keys, rate_limit=args.rate_limit, pool_size=args.pool_size,
            limits=Limits(args.max_body_bytes, args.max_inflated_bytes, args.max_events, args.max_event_bytes,
                          args.signature_window),
        )
        window = parse_window(args.retention) if args.retention is not None else None
        protocol.configure(protocol.ConnectionLimits(args.header_timeout, args.body_timeout, args.max_header_bytes))
    except ValueError as exc:
        print(f"tracewire serve: {redact_dsn(str(exc))}", file=sys.stderr)
        return 2
    scheme = "https" if tls else "http"
    print(f"tracewire collector on {scheme}://{args.host}:{args.port} (db {_redact(config.db)}"
          f"{', keys ' + args.keys if args.keys else ''})", file=sys.stderr, flush=True)
    server_options: dict[str, Any] = {
        "host": args.host, "port": args.port, "log_level": args.log_level, "access_log": args.access_log,
        "timeout_keep_alive": args.keep_alive_timeout, "h11_max_incomplete_event_size": args.max_header_bytes,
        "http": protocol.protocol_class_path(), **tls,
    }
    retention = None
    try:
        if args.workers > 1:
            os.environ[CONFIG_ENV] = config.to_json()
            create_app(config).state.collector.store.close()  # migrate once, fail early on a bad --db
            if window is not None:  # in the supervising process: its own store, logged counts only
                retention = _start_retention(config.db, window, None, args.log_level)
            uvicorn.run("tracewire.server.app:app_from_env", factory=True, workers=args.workers, **server_options)
        else:
            app = create_app(config)
            if window is not None:
                retention = _start_retention(config.db, window, app.state.collector.metrics, args.log_level)
            uvicorn.run(app, **server_options)
    except (StoreUnavailable, ValueError) as exc:
        print(f"tracewire serve: {redact_dsn(str(exc))}", file=sys.stderr)
        return 2
    finally:
        if retention is not None:
            retention.stop()
            retention.store.close()  # type: ignore[attr-defined]
    return 0


def _start_retention(db: str, window_ns: int, metrics: Any, log_level: str) -> Any:
    """The retention thread, on a store of its own (one connection at a time: it runs alone). What each
    run deleted is logged on stderr unless --log-level is above info's and warning's."""
    from tracewire.server.backends import open_store
    from tracewire.server.retention import RetentionThread, log

    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("tracewire %(levelname)s %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO if log_level in ("warning", "info", "debug") else log_level.upper())

    store = open_store(db, **({"max_size": 1} if db.startswith(("postgresql://", "postgres://")) else {}))
    thread = RetentionThread(store, window_ns, on_pruned=None if metrics is None else
                             lambda done: metrics.pruned(done.traces, done.events, done.partitions))
    thread.start()
    return thread


def _store_errors(fn: Any) -> Any:
    """`keys` commands: a bad --db or an unreachable database is one line (credentials masked), exit 2."""

    def run(args: argparse.Namespace) -> int:
        from tracewire.server.store import StoreUnavailable

        try:
            return int(fn(args))
        except (StoreUnavailable, ValueError) as exc:
            print(f"tracewire keys: {redact_dsn(str(exc))}", file=sys.stderr)
            return 2

    return run


@_store_errors
def _keys_create(args: argparse.Namespace) -> int:
    from tracewire.server.keys import DEFAULT_SCOPES, create_key

    scopes = args.scopes or DEFAULT_SCOPES
    key = create_key(_key_store(args), args.project, scopes)
    granted = sorted(set(scopes))
    if args.json:
        print(json.dumps({"key_id": key.key_id, "project": key.project, "api_key": key.api_key,
                          "signing_secret": key.signing_secret, "scopes": granted}))
        return 0
    print(f"key id:         {key.key_id}\nproject:        {key.project}\nscopes:         {','.join(granted)}\n"
          f"api key:        {key.api_key}\nsigning secret: {key.signing_secret}\n"
          "Shown once. Give the app TRACEWIRE_API_KEY=<api key> and TRACEWIRE_SIGNING_KEY=<signing secret>.")
    return 0


@_store_errors
def _keys_list(args: argparse.Namespace) -> int:
    keys = [k.public() for k in _key_store(args).list_keys()]
    if args.json:
        print(json.dumps(keys))
        return 0
    print(f"{'KEY ID':<14}{'PROJECT':<24}{'SCOPES':<20}{'CREATED':<22}REVOKED")
    for k in keys:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(k["created_at"]))
        revoked = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(k["revoked_at"])) if k["revoked_at"] else "-"
        print(f"{k['key_id']:<14}{k['project']:<24}{','.join(k['scopes']):<20}{created:<22}{revoked}")
    return 0


@_store_errors
def _keys_revoke(args: argparse.Namespace) -> int:
    if _key_store(args).revoke_key(args.key_id, time.time()):
        print(f"revoked {args.key_id}")
        return 0
    print(f"tracewire keys revoke: no active key {args.key_id!r}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (`python -m tracewire.server.cli serve ...`), also used by tests and benchmarks."""
    parser = argparse.ArgumentParser(prog="tracewire")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
