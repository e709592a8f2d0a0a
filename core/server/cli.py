"""`tracewire serve` and `tracewire keys create|list|revoke`, registered into the main CLI's argparse."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from typing import Any

from .wire import Limits

DB_ENV = "TRACEWIRE_COLLECTOR_DB"
KEYS_ENV = "TRACEWIRE_COLLECTOR_KEYS"


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
                       help="requests per second per API key, per collector process (default 0 = unlimited)")
    serve.add_argument("--pool-size", type=int, default=8, help="PostgreSQL connections per process (default 8)")
    serve.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.set_defaults(func=_serve)

    keys = subparsers.add_parser("keys", help="manage the collector's API keys",
                                 description="Create, list and revoke collector API keys (stored hashed).")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="{create,list,revoke}")
    keys_sub.required = True
    create = keys_sub.add_parser("create", help="mint a key for a project (shown once)")
    create.add_argument("--project", required=True, help="the project the key writes to and reads from")
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
    from .app import DEFAULT_DB

    return str(args.db or DEFAULT_DB)


def _redact(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def _key_store(args: argparse.Namespace) -> Any:
    if args.keys:
        from .keys import FileKeyStore

        return FileKeyStore(args.keys)
    from .store import open_store

    return open_store(_db(args))


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import CONFIG_ENV, ServerConfig, create_app
    from .store import StoreUnavailable

    config = ServerConfig(
        db=_db(args), keys_file=args.keys, rate_limit=args.rate_limit, pool_size=args.pool_size,
        limits=Limits(args.max_body_bytes, args.max_inflated_bytes, args.max_events, args.max_event_bytes,
                      args.signature_window),
    )
    print(f"tracewire collector on http://{args.host}:{args.port} (db {_redact(config.db)}"
          f"{', keys ' + args.keys if args.keys else ''})", file=sys.stderr, flush=True)
    try:
        if args.workers > 1:
            os.environ[CONFIG_ENV] = config.to_json()
            create_app(config).state.collector.store.close()  # migrate once, fail early on a bad --db
            uvicorn.run("tracewire.server.app:app_from_env", factory=True, host=args.host, port=args.port,
                        workers=args.workers, log_level=args.log_level, access_log=args.access_log)
        else:
            uvicorn.run(create_app(config), host=args.host, port=args.port, log_level=args.log_level,
                        access_log=args.access_log)
    except (StoreUnavailable, ValueError) as exc:
        print(f"tracewire serve: {exc}", file=sys.stderr)
        return 2
    return 0


def _keys_create(args: argparse.Namespace) -> int:
    from .keys import create_key

    key = create_key(_key_store(args), args.project)
    if args.json:
        print(json.dumps({"key_id": key.key_id, "project": key.project, "api_key": key.api_key,
                          "signing_secret": key.signing_secret}))
        return 0
    print(f"key id:         {key.key_id}\nproject:        {key.project}\n"
          f"api key:        {key.api_key}\nsigning secret: {key.signing_secret}\n"
          "Shown once. Give the app TRACEWIRE_API_KEY=<api key> and TRACEWIRE_SIGNING_KEY=<signing secret>.")
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    keys = [k.public() for k in _key_store(args).list_keys()]
    if args.json:
        print(json.dumps(keys))
        return 0
    print(f"{'KEY ID':<14}{'PROJECT':<24}{'CREATED':<22}REVOKED")
    for k in keys:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(k["created_at"]))
        revoked = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(k["revoked_at"])) if k["revoked_at"] else "-"
        print(f"{k['key_id']:<14}{k['project']:<24}{created:<22}{revoked}")
    return 0


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
