"""Must show 5: two producer processes on one spool directory; every event is shipped (handed to
the collector, as counted by the proxy in front of it) exactly once — while both write and ship,
and when both start at once on a directory full of orphaned segments."""

from __future__ import annotations

from pathlib import Path

from rel_harness import (
    Collector,
    FaultProxy,
    finish_producer,
    free_port,
    run_producer,
    start_producer,
    wait_ready,
)

N = 1500


def test_two_live_producers_share_a_spool_dir(collector: Collector, proxy: FaultProxy, tmp_path: Path) -> None:
    settings = {"sink": "http", **collector.settings(proxy.url), "spool_dir": str(tmp_path / "spool")}
    procs = [start_producer({"settings": settings, "tag": f"pair{i}", "n": N, "rate": 1500, "pad": 300,
                             "segment_bytes": 64 * 1024}) for i in (1, 2)]
    traces = [wait_ready(p) for p in procs]
    outs = [finish_producer(p) for p in procs]
    for i, (trace_id, out) in enumerate(zip(traces, outs, strict=True), 1):
        assert out["flushed"], out
        stored = collector.stored(trace_id, f"pair{i}:")
        assert set(stored) == {f"pair{i}:{n}" for n in range(1, N + 1)} and max(stored.values()) == 1
    sent = proxy.forwarded
    print(f"\ntwo live producers: {len(sent)} events handed to the collector, most times for one event: "
          f"{max(sent.values())}")
    assert len(sent) == 2 * (N + 2) and max(sent.values()) == 1


def test_two_producers_starting_on_orphaned_segments_ship_each_once(
    collector: Collector, proxy: FaultProxy, tmp_path: Path,
) -> None:
    spool = tmp_path / "spool"
    nowhere = {"sink": "http", **collector.settings(f"http://127.0.0.1:{free_port()}"), "spool_dir": str(spool)}
    left = run_producer({"settings": nowhere, "tag": "orphan", "n": 4000, "rate": 8000, "pad": 200,
                         "segment_bytes": 16 * 1024, "exit": "abandon"})
    segments = [p for p in spool.iterdir() if p.name.startswith("seg-")]
    assert len(segments) >= 8
    settings = {"sink": "http", **collector.settings(proxy.url), "spool_dir": str(spool)}
    procs = [start_producer({"settings": settings, "tag": f"drain{i}", "n": 0, "flush_timeout": 60}) for i in (1, 2)]
    outs = [finish_producer(p) for p in procs]
    recovered = [o["stats"]["delivery"]["http"]["recovered"] for o in outs]
    stored = collector.stored(left["trace_id"], "orphan:")
    sent = proxy.forwarded
    print(f"\n{len(segments)} orphaned segments, two drainers started together: recovered {recovered} events, "
          f"most times one event was handed to the collector: {max(sent.values())}")
    assert sum(recovered) == 4000 + 2  # + the root span's start and end
    assert set(stored) == {f"orphan:{n}" for n in range(1, 4001)} and max(stored.values()) == 1
    assert max(sent.values()) == 1 and len(sent) == 4000 + 2 + 2 * 2  # + each drainer's own root start/end
    assert not [p for p in spool.iterdir() if p.name.startswith("seg-")]
