"""Run `phoenix ARGS…` with its gRPC receiver on 127.0.0.1 only. Started with the Phoenix venv's
python by otel_receiver.py:

    .venv-phoenix/bin/python tests/otel/phoenix_loopback.py serve

PHOENIX_HOST binds the HTTP server, but Phoenix's gRPC server always listens on `[::]:PORT`
(phoenix/server/grpc_server.py) and no setting changes that: the servers `grpc.aio.server()`
makes here rewrite an all-interfaces address to 127.0.0.1 before binding.
"""

from __future__ import annotations

import sys
from typing import Any

import grpc.aio

_ALL_INTERFACES = ("[::]:", "0.0.0.0:")


def loopback(address: str) -> str:
    for prefix in _ALL_INTERFACES:
        if address.startswith(prefix):
            return "127.0.0.1:" + address[len(prefix):]
    return address


_make_server = grpc.aio.server


def _loopback_server(*args: Any, **kwargs: Any) -> Any:
    server = _make_server(*args, **kwargs)
    add_insecure, add_secure = server.add_insecure_port, server.add_secure_port
    server.add_insecure_port = lambda address: add_insecure(loopback(address))
    server.add_secure_port = lambda address, credentials: add_secure(loopback(address), credentials)
    return server


grpc.aio.server = _loopback_server

if __name__ == "__main__":
    from phoenix.server.main import main

    sys.argv[0] = "phoenix"
    sys.exit(main())
