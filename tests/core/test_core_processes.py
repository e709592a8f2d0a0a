"""Process-level guarantees: exit flush, a stuck sink cannot hang exit, fork safety."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time


def _run(code: str, tmp_path, timeout: float = 60) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    env = {**os.environ, "TRACEWIRE_DB": str(tmp_path / "p.db")}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=tmp_path)


def _count(tmp_path, where: str = "1=1") -> int:  # type: ignore[no-untyped-def]
    return int(sqlite3.connect(tmp_path / "p.db").execute(f"SELECT COUNT(*) FROM events WHERE {where}").fetchone()[0])


def test_script_that_never_flushes_loses_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = _run("""
        import tracewire
        tracewire.init()
        for i in range(10_000):
            tracewire.record("metric", name="n", attributes={"i": i})
    """, tmp_path)
    assert r.returncode == 0, r.stderr
    assert _count(tmp_path) == 10_000
    assert _count(tmp_path, "type = 'metric'") == 10_000


def test_blocked_sink_cannot_hold_exit_past_the_budget(tmp_path) -> None:  # type: ignore[no-untyped-def]
    code = """
        import threading, time, tracewire
        class Stuck(tracewire.BaseSink):
            name = "stuck"
            def write(self, batch):
                threading.Event().wait()  # forever
        tracewire.init(sink=[Stuck()], exit_flush_timeout=1.5)
        for i in range(100):
            tracewire.record("log", input=i)
        print(time.time(), flush=True)  # the script's last line: what follows is the exit
    """
    r = _run(code, tmp_path, timeout=30)
    exited = time.time()
    assert r.returncode == 0, r.stderr
    exit_took = exited - float(r.stdout.strip())
    assert 1.4 <= exit_took < 1.5 + 1.0, exit_took  # waited for the budget, and no longer


def test_forked_child_writes_its_own_events_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = _run("""
        import os, tracewire
        tracewire.init(flush_interval=5)  # parent events are still queued at fork time
        for i in range(50):
            tracewire.record("log", name="parent", input=i)
        pid = os.fork()
        if pid == 0:
            for i in range(30):
                tracewire.record("log", name="child", input=i)
            ok = tracewire.flush(10)
            s = tracewire.stats()
            assert ok and s["emitted"] == 30 and s["written"] == 30, s
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert status == 0, status
        for i in range(20):
            tracewire.record("log", name="parent", input=100 + i)
        tracewire.flush(10)
        s = tracewire.stats()
        assert s["emitted"] == 70 and s["written"] == 70, s
    """, tmp_path)
    assert r.returncode == 0, r.stderr
    assert _count(tmp_path, "name = 'child'") == 30
    assert _count(tmp_path, "name = 'parent'") == 70
    assert _count(tmp_path) == 100
