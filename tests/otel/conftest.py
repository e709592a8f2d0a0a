"""Fixtures of the otel tests: the session's Phoenix receiver (see otel_receiver.py)."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.otel.otel_receiver import Phoenix, is_loopback, listening_sockets, start_phoenix, stop, wait_ready

# Phoenix takes 10-30 s to import and migrate: launched as soon as collection shows a test
# needs it, so it starts while the rest of the suite runs.
_early: Phoenix | None = None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    global _early
    if _early is None and not config.option.collectonly and any("phoenix" in getattr(item, "fixturenames", ()) for item in items):
        try:
            _early = start_phoenix(Path(tempfile.mkdtemp(prefix="tracewire-phoenix-")))
        except Exception:  # noqa: BLE001 - the fixture tries again and fails only the tests needing it
            _early = None


@pytest.fixture(autouse=True)
def _otel_sdk_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    """The otlp sink honours OTEL_SDK_DISABLED: these tests export, whatever the shell sets."""
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _early is not None and _early.proc.poll() is None:
        stop(_early)


def assert_loopback_only(server: Phoenix, timeout: float = 30.0) -> None:
    """The receiver listens on both its ports and on loopback addresses only."""
    deadline = time.monotonic() + timeout
    while True:
        sockets = listening_sockets(server.proc.pid)
        if {server.http_port, server.grpc_port} <= {port for _, port in sockets} or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert {server.http_port, server.grpc_port} <= {port for _, port in sockets}, sockets
    exposed = [(str(addr), port) for addr, port in sockets if not is_loopback(addr)]
    assert not exposed, f"Phoenix listens beyond loopback: {exposed}"


@pytest.fixture(scope="session")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phoenix]:
    server = _early or start_phoenix(tmp_path_factory.mktemp("phoenix"))
    try:
        wait_ready(server)
        assert_loopback_only(server)
        yield server
    finally:
        stop(server)
        if server is _early:  # its working dir is not under pytest's tmp
            shutil.rmtree(server.log.parent, ignore_errors=True)


