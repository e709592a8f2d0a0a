"""What the Anthropic integration adds to the caller's thread, next to the same client unrecorded.

The real `anthropic` client calls the local Messages API server (core/testing/anthropic_server.py,
in this process, on its own threads), so the request, the SSE parsing and the SDK's objects are
the real ones. Two clients, one `wrap`ped, run interleaved in one process (the order alternates
every round, so drift and noise hit both alike), and per call the caller thread's CPU time is
taken: the time the user's code pays, the whole of tracewire's hot path. The garbage collector
runs between timed calls (every 50 rounds), as in benchmarks/openai_overhead.py.

  call    `messages.create`, not streamed
  chunk   `messages.create(stream=True)` read to the end: a 1-word and a 201-word reply, the added
          CPU of the long one less the short one's, per extra event (one event per word): what each
          streamed chunk costs, apart from the call's own cost

"Added" = the median, over rounds, of (wrapped - plain) in the same round. Targets: <= 40 µs a
call, <= 2 µs a chunk.

    python benchmarks/anthropic_overhead.py [rounds]      # default 400
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import anthropic

import tracewire
from tracewire.integrations.anthropic import wrap
from tracewire.testing.anthropic_server import AnthropicServer, Reply

MODEL = "claude-sonnet-4-5"
LONG_WORDS = 201
SHORT = Reply("Hello.", input_tokens=40, output_tokens=2, cache_read_tokens=1000)
LONG = Reply(" ".join(["word"] * LONG_WORDS), input_tokens=40, output_tokens=LONG_WORDS)
MESSAGES = [{"role": "user", "content": "Say hello."}]
CALL_TARGET_US, CHUNK_TARGET_US = 40.0, 2.0


def script(body: dict[str, Any]) -> Reply:
    return LONG if body.get("max_tokens") == 1024 else SHORT


def paired(run: Callable[[anthropic.Anthropic], Any], clients: dict[str, anthropic.Anthropic], rounds: int
           ) -> dict[str, list[int]]:
    """Caller-thread CPU ns of `run` per round and variant, the order alternating each round."""
    samples: dict[str, list[int]] = {name: [] for name in clients}
    names = list(clients)
    for name in names * 20:  # warm-up: connections, imports, caches, the SQLite file
        run(clients[name])
    gc.disable()
    for i in range(rounds):
        if i % 50 == 0:
            gc.collect()  # collections run between timed calls, not inside them: the same for both variants
        for name in names if i % 2 == 0 else names[::-1]:
            c0 = time.thread_time_ns()
            run(clients[name])
            samples[name].append(time.thread_time_ns() - c0)
    return samples


def added_us(samples: dict[str, list[int]]) -> float:
    return statistics.median(w - p for w, p in zip(samples["wrapped"], samples["plain"], strict=True)) / 1000


def create(c: anthropic.Anthropic) -> Any:
    return c.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)


def stream(max_tokens: int) -> Callable[[anthropic.Anthropic], Any]:
    def run(c: anthropic.Anthropic) -> int:
        n = 0
        for _ in c.messages.create(model=MODEL, max_tokens=max_tokens, messages=MESSAGES, stream=True):
            n += 1
        return n

    return run


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    db = os.path.join(tempfile.mkdtemp(prefix="tw-bench-"), "bench.db")
    tracewire.init(sink="sqlite", db=db)
    with AnthropicServer(script) as srv:
        clients = {
            "plain": anthropic.Anthropic(base_url=srv.base_url, api_key="bench", max_retries=0),
            "wrapped": wrap(anthropic.Anthropic(base_url=srv.base_url, api_key="bench", max_retries=0)),
        }
        print(f"tracewire {tracewire.__version__}, anthropic {anthropic.__version__}, python "
              f"{sys.version.split()[0]}, capture_content={tracewire.get_client().capture_content}, "
              f"{rounds} interleaved rounds; caller-thread CPU, µs")
        try:
            calls = paired(create, clients, rounds)
            short = paired(stream(64), clients, rounds)
            long = paired(stream(1024), clients, rounds)
        finally:
            gc.enable()
        events_short, events_long = stream(64)(clients["plain"]), stream(1024)(clients["plain"])
    per_call = added_us(calls)
    per_chunk = (added_us(long) - added_us(short)) / (events_long - events_short)
    for label, s in (("create", calls), (f"stream, {events_short} events", short), (f"stream, {events_long} events", long)):
        plain, wrapped = statistics.median(s["plain"]) / 1000, statistics.median(s["wrapped"]) / 1000
        print(f"  {label:<20} plain {plain:8.1f}   wrapped {wrapped:8.1f}   added {added_us(s):7.1f}")
    print(f"\nper call : {per_call:6.1f} µs added  ({per_call / CALL_TARGET_US:4.2f} of the {CALL_TARGET_US:.0f} µs target)")
    print(f"per chunk: {per_chunk:6.2f} µs added  ({per_chunk / CHUNK_TARGET_US:4.2f} of the {CHUNK_TARGET_US:.0f} µs target)")
    stats = tracewire.stats()
    tracewire.shutdown()
    print(f"\nevents emitted {stats['emitted']}, written {stats['written']}, dropped {stats['dropped']}, "
          f"internal errors {stats['internal_errors']}")


if __name__ == "__main__":
    main()
