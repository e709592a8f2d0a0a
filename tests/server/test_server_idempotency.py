"""Exactly one stored copy of each event, however often and however concurrently it is sent."""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from typing import Any

from collector_harness import Collector, make_event

from tracewire.wire import NewKey


def test_same_batch_three_times_is_stored_once(collector: Collector, key: NewKey) -> None:
    events = [make_event() for _ in range(50)]
    batch_id = str(uuid.uuid4())
    outcomes = []
    for attempt in (1, 2, 3):
        r = collector.post(key, events, batch_id=batch_id, gzip=attempt == 2,
                           headers={"X-Tracewire-Attempt": str(attempt)})
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["batch_id"] == batch_id
        outcomes.append((doc["accepted"], doc["duplicate"], doc["rejected"]))
        assert [x["id"] for x in doc["results"]] == [e["id"] for e in events]
    assert outcomes == [(50, 0, 0), (0, 50, 0), (0, 50, 0)]
    assert collector.count(key.project) == 50


def test_an_event_repeated_inside_one_batch_is_stored_once(collector: Collector, key: NewKey) -> None:
    a, b = make_event(), make_event()
    doc = collector.post(key, [a, b, a, a]).json()
    assert [x["status"] for x in doc["results"]] == ["accepted", "accepted", "duplicate", "duplicate"]
    assert collector.count(key.project) == 2


def test_the_first_stored_copy_wins_when_an_id_is_resent_with_other_content(collector: Collector,
                                                                          key: NewKey) -> None:
    first = make_event(name="first", input={"v": 1})
    second = {**first, "name": "second", "input": {"v": 2}, "attributes": {"changed": True}}
    assert collector.post(key, [first]).json()["results"][0]["status"] == "accepted"
    assert collector.post(key, [second]).json()["results"][0]["status"] == "duplicate"
    again = {**first, "input": {"v": 3}}  # twice in one batch as well
    assert [r["status"] for r in collector.post(key, [again, again]).json()["results"]] == ["duplicate"] * 2
    (stored,) = collector.get(f"/v1/traces/{first['trace_id']}", key).json()["events"]
    assert (stored["name"], stored["input"], stored.get("attributes")) == ("first", {"v": 1}, {})
    assert collector.count(key.project) == 1


def test_eight_concurrent_clients_with_overlapping_batches(collector: Collector, key: NewKey) -> None:
    traces = [f"trace-{i}" for i in range(12)]
    pool = [make_event(traces[i % len(traces)], seq=i) for i in range(600)]
    rng = random.Random(7)
    plans = []  # each client: 6 batches of 120 events drawn from overlapping windows, shuffled
    for _ in range(8):
        batches = []
        for _ in range(6):
            start = rng.randrange(0, len(pool) - 120)
            batch = pool[start:start + 120]
            rng.shuffle(batch)
            batches.append(batch)
        plans.append(batches)
    plans[0].append(pool[:300])  # and together the clients certainly cover every event
    plans[1].append(pool[300:])
    barrier = threading.Barrier(len(plans))
    responses: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client(batches: list[list[dict[str, Any]]], n: int) -> None:
        try:
            barrier.wait(30)
            for i, batch in enumerate(batches):
                r = collector.post(key, batch, gzip=(n + i) % 2 == 0)
                assert r.status_code == 200, r.text
                with lock:
                    responses.append(r.json())
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(p, n)) for n, p in enumerate(plans)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    accepted = Counter(x["id"] for doc in responses for x in doc["results"] if x["status"] == "accepted")
    sent = sum(len(b) for p in plans for b in p)
    assert sent > 3 * len(pool)  # heavy overlap
    assert sum(d["accepted"] for d in responses) == len(pool)
    assert set(accepted) == {e["id"] for e in pool} and set(accepted.values()) == {1}  # each accepted once
    assert sum(d["duplicate"] for d in responses) == sent - len(pool)
    assert collector.count(key.project) == len(pool)
    per_trace = Counter(e["trace_id"] for e in pool)
    for trace_id in traces:
        events = collector.get(f"/v1/traces/{trace_id}", key).json()["events"]
        assert len(events) == per_trace[trace_id]
    listing = collector.get("/v1/traces", key, limit=100).json()["traces"]
    assert sorted(t["trace_id"] for t in listing) == sorted(traces)
