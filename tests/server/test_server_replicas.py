"""Three `tracewire serve` replicas on one PostgreSQL behind a real nginx: exactly-once storage while a
replica is killed with kill -9 mid-batch and restarted, one copy of a batch sent to two replicas at once,
and state that no replica keeps to itself (rate limits, key revocation)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import requests
from collector_harness import Collector, make_event

from tracewire.server.store_sqlite import SQLiteStore
from tracewire.wire import NewKey, signed_headers

PRODUCER = Path(__file__).resolve().parents[1] / "reliability" / "rel_producer.py"
Replicas = Any  # conftest.Replicas: three collectors behind nginx (the `replicas` fixture starts them)
EVENTS = 20_000


def _signed(key: NewKey, events: list[dict[str, Any]]) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps({"events": events})
    return body, signed_headers(key.api_key, key.signing_secret, body, batch_id="b-" + events[0]["id"])


def _stored(db: str, project: str) -> tuple[int, set[str]]:
    """(rows, distinct ids) of the project's events, straight from the database."""
    with psycopg.connect(db) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM events WHERE project = %s", (project,))]
    return len(ids), set(ids)


def test_sdk_through_nginx_loses_nothing_when_a_replica_is_killed_mid_batch(
        replicas: Callable[..., Replicas], tmp_path: Path) -> None:
    cluster = replicas()
    key = cluster.front.new_key("sdk")
    big_key = cluster.front.new_key("big")
    jsonl = tmp_path / "sent.jsonl"
    settings = {"sink": "http,jsonl", "endpoint": cluster.url, "api_key": key.api_key,
                "signing_key": key.signing_secret, "spool_dir": str(tmp_path / "spool"), "jsonl_path": str(jsonl),
                "batch_size": 100, "retry_max_backoff": 0.2, "http_timeout": 5.0}
    producer = subprocess.Popen(
        [sys.executable, str(PRODUCER), json.dumps({"settings": settings, "tag": "lb", "n": EVENTS, "rate": 4000,
                                                    "pad": 64, "flush_timeout": 60})],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert producer.stdout is not None
        assert producer.stdout.readline().startswith(b"READY")
        time.sleep(1.0)  # the SDK's batches are flowing through nginx to all three replicas

        # A large batch straight to replica 0, which is killed while it is still working on it.
        big = [make_event(input={"pad": "x" * 900}) for _ in range(8000)]
        body, headers = _signed(big_key, big)
        answer: list[Any] = []
        body_sent = threading.Event()

        def chunks() -> Iterator[bytes]:
            for i in range(0, len(body), 1 << 20):
                yield body[i:i + (1 << 20)]
            body_sent.set()  # the replica has the whole batch: it is verifying, parsing or storing it

        def post_direct() -> None:
            try:
                answer.append(requests.post(cluster.replicas[0].url + "/v1/events", data=chunks(),
                                            headers=headers, timeout=60))
            except requests.ConnectionError as exc:
                answer.append(exc)

        sender = threading.Thread(target=post_direct)
        sender.start()
        assert body_sent.wait(30)
        time.sleep(0.05)
        cluster.kill(0)
        sender.join(30)
        assert isinstance(answer[0], requests.ConnectionError), f"the batch finished before the kill: {answer}"
        time.sleep(0.5)  # nginx meanwhile sends the SDK's batches to the two others
        cluster.restart(0)
        # The client resends the same batch (same signature), through nginx this time.
        resent = requests.post(cluster.url + "/v1/events", data=body, headers=headers, timeout=60)
        assert resent.status_code == 200, resent.text
        doc = resent.json()
        assert doc["accepted"] + doc["duplicate"] == len(big) and doc["rejected"] == 0

        out, err = producer.communicate(timeout=90)
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.wait()
    assert producer.returncode == 0, err.decode()[-3000:]
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert result["flushed"], result
    assert result["recorded"] == EVENTS

    sent = {orjson.loads(line)["id"] for line in jsonl.read_bytes().splitlines() if line.strip()}
    assert len(sent) >= EVENTS  # the 20,000 points, and the root span's start and end
    rows, ids = _stored(cluster.db, "sdk")
    assert rows == len(ids) == len(sent)
    assert ids == sent
    rows, ids = _stored(cluster.db, "big")
    assert rows == len(ids) == len(big)
    assert ids == {e["id"] for e in big}
    # every replica took part (nginx spread the SDK's batches), replica 0 before and after its restart
    served = [int(m.group(1)) for c in cluster.replicas
              for m in [re.search(r"^tracewire_events_accepted_total (\S+)", c.get("/metrics").text, re.M)]
              if m]
    assert len(served) == 3 and all(n > 0 for n in served[1:]), served


def test_the_same_batch_sent_to_two_replicas_at_once_is_stored_once(replicas: Callable[..., Replicas]) -> None:
    cluster = replicas()
    key = cluster.front.new_key("twice")
    events = [make_event(input={"pad": "y" * 200}) for _ in range(3000)]
    body, headers = _signed(key, events)
    answers: list[requests.Response] = []
    start = threading.Barrier(2)

    def post(c: Collector) -> None:
        start.wait()
        answers.append(requests.post(c.url + "/v1/events", data=body, headers=headers, timeout=60))

    threads = [threading.Thread(target=post, args=(c,)) for c in cluster.replicas[:2]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [a.status_code for a in answers] == [200, 200], [a.text[:300] for a in answers]
    docs = [a.json() for a in answers]
    assert all(d["accepted"] + d["duplicate"] == len(events) and d["rejected"] == 0 for d in docs)
    assert sum(d["accepted"] for d in docs) == len(events)  # each event accepted by exactly one of the two
    rows, ids = _stored(cluster.db, "twice")
    assert rows == len(ids) == len(events)
    assert ids == {e["id"] for e in events}

    # A revocation is seen by every replica on its next request: keys are read from the database.
    assert cluster.front.store.revoke_key(key.key_id, time.time())
    for c in cluster.replicas:
        r = c.post(key, [make_event()])
        assert (r.status_code, r.json()["error"]["code"]) == (401, "revoked_key")


def _rate_limited(c: Collector) -> int:
    m = re.search(r'^tracewire_requests_rejected_total\{code="rate_limited"\} (\S+)', c.get("/metrics").text, re.M)
    return int(float(m.group(1))) if m else 0


def test_a_keys_rate_limit_holds_across_replicas(replicas: Callable[..., Replicas]) -> None:
    # 0.2 requests/s, a burst of 1: one request passes, and the next token is 5 s away (far longer than
    # the requests take), so the count of 429s does not depend on timing.
    cluster = replicas("--rate-limit", "0.2")
    spread_key = cluster.front.new_key("spread")
    one_key = cluster.front.new_key("one")
    n = 12
    spread = [cluster.front.get("/v1/traces", spread_key).status_code for _ in range(n)]
    one = [cluster.replicas[0].get("/v1/traces", one_key).status_code for _ in range(n)]
    assert spread.count(429) == one.count(429) == n - 1, (spread, one)
    assert set(spread) == set(one) == {200, 429}
    # the balanced requests did reach every replica: each refused some (a per-process limit would not)
    refused = [_rate_limited(c) for c in cluster.replicas]
    assert all(r > 0 for r in refused[1:]) and sum(refused) == 2 * (n - 1), refused


def test_processes_on_one_sqlite_file_share_a_keys_bucket(tmp_path: Path) -> None:
    # `serve --workers N` on SQLite: every process draws from the bucket in the file, as replicas do in PostgreSQL
    a, b = SQLiteStore(str(tmp_path / "c.db")), SQLiteStore(str(tmp_path / "c.db"))
    try:
        assert [s.take_token("k", 0.2, 1.0) == 0.0 for s in (a, b, a, b)] == [True, False, False, False]
        assert 4.0 < b.take_token("k", 0.2, 1.0) <= 5.0  # the next token is 1 / 0.2 s away
        assert a.take_token("other", 0.2, 1.0) == 0.0  # a bucket per key
    finally:
        a.close()
        b.close()


def test_a_bad_rate_limit_stops_serve_at_start_naming_the_option(tmp_path: Path) -> None:
    for bad in ("-1", "nan", "inf"):
        run = subprocess.run([sys.executable, "-m", "tracewire.server.cli", "serve", "--port", "1",
                              "--db", f"sqlite:///{tmp_path}/c.db", "--rate-limit", bad],
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 2 and "--rate-limit" in run.stderr, (bad, run.stderr)
