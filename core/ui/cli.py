"""`tracewire ui`: serve the viewer over the local store. `add_ui_command` registers it on the
`tracewire` command's subparsers; `run_ui` is what it runs."""

from __future__ import annotations

import argparse
import sys
import threading
import webbrowser

from tracewire.read.local import default_db
from tracewire.ui.server import ViewerServer, is_loopback

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7007


def add_ui_command(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    p = subparsers.add_parser("ui", help="browse traces in a web viewer on this machine")
    p.add_argument("--db", default=None, help="SQLite store (default: $TRACEWIRE_DB or the nearest .tracewire/)")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default: {DEFAULT_HOST})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default: {DEFAULT_PORT}; 0 picks a free one)")
    p.add_argument("--no-browser", action="store_true", help="print the URL without opening a browser")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a non-loopback --host: anyone who can reach it reads every captured prompt")
    p.set_defaults(func=run_ui)
    return p


def run_ui(args: argparse.Namespace) -> int:
    """Serve until interrupted. Exit 2 for a non-loopback host without --allow-remote, 1 if the port is taken."""
    if not is_loopback(args.host) and not args.allow_remote:
        print(f"tracewire ui: refusing to listen on {args.host}: captured prompts would be readable from other "
              "machines (pass --allow-remote to do it anyway)", file=sys.stderr)
        return 2
    db = args.db or default_db()
    try:
        server = ViewerServer(db, args.host, args.port, allow_remote=args.allow_remote)
    except OSError as exc:
        print(f"tracewire ui: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"tracewire ui: {server.url}  (store: {db}; Ctrl+C to stop)", flush=True)
    if not args.no_browser:
        threading.Thread(target=webbrowser.open, args=(server.url,), daemon=True).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
