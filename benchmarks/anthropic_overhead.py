"""What the Anthropic integration adds to the caller's thread, next to the same client unrecorded.

Three measurements of the calling thread, as in benchmarks/openai_overhead.py (whose helpers this
uses):

1. tracewire's own work, without the HTTP layer: the patched `messages.create` wrapper around a
   function handing back what the real server sent (a real `Message`; for streams, the real list
   of events, folded by the stream proxy), against that function alone; per event: a 201-word
   stream's less a 1-word one's, per extra event; tracewire's worker idle while a block runs.
2. End to end, timed: the real `anthropic` client against the local Messages API server
   (core/testing/anthropic_server.py, in a process of its own); two clients, one
   `wrap`ped, interleaved (in an order shuffled every round): per call the median of the
   per-round difference and ratio, per event the long stream's difference less the short one's
   over the events more it has, each with its 95% interval and beside its target; in PROCESSES
   fresh processes, pooled, as openai_overhead.py does (and why).
3. Instructions of the calling thread under callgrind (when installed), per call and per event.

Targets: <= 40 µs a call, <= 2 µs a chunk.

    python benchmarks/anthropic_overhead.py [rounds] [--no-instructions]     # default 300 rounds
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from typing import Any

import anthropic
from openai_overhead import (
    BATCH,
    PROCESSES,
    TARGET_CALL_US,
    TARGET_CHUNK_US,
    counted,
    init_idle,
    instructions,
    interleaved,
    load,
    own_cost,
    pooled,
    print_end_to_end,
    print_instructions,
    run_mode,
    serve_until_closed,
    served,
    verdict,
)

import tracewire
from tracewire.integrations.anthropic import hooks, wrap
from tracewire.testing.anthropic_server import AnthropicServer, Reply

MODEL = "claude-sonnet-4-5"
LONG_WORDS = 201
SHORT = Reply("Hello.", input_tokens=40, output_tokens=2, cache_read_tokens=1000)
LONG = Reply(" ".join(["word"] * LONG_WORDS), input_tokens=40, output_tokens=LONG_WORDS)
MESSAGES = [{"role": "user", "content": "Say hello."}]


def script(body: dict[str, Any]) -> Reply:
    return LONG if body.get("max_tokens") == 1024 else SHORT


def create(c: anthropic.Anthropic) -> Any:
    return c.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)


def stream(max_tokens: int) -> Callable[[anthropic.Anthropic], Any]:
    def run(c: anthropic.Anthropic) -> int:
        n = 0
        for _ in c.messages.create(model=MODEL, max_tokens=max_tokens, messages=MESSAGES, stream=True):
            n += 1
        return n

    return run


def own_work(plain: anthropic.Anthropic, wrapped: anthropic.Anthropic) -> tuple[float, float]:
    """(µs per non-streaming call, µs per streamed event) of tracewire's own caller-side work."""
    message = create(plain)
    long_events = list(plain.messages.create(model=MODEL, max_tokens=1024, messages=MESSAGES, stream=True))
    short_events = list(plain.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES, stream=True))
    resource = wrapped.messages

    replies: dict[bool, Any] = {False: message}  # streamed: the events of the stream being timed

    def replay(self: Any, *args: Any, **kwargs: Any) -> Any:
        return replies[kwargs.get("stream") is True]

    traced = hooks._CREATE(replay)
    per_call = own_cost(lambda: traced(resource, model=MODEL, max_tokens=64, messages=MESSAGES),
                        lambda: replay(resource, model=MODEL, max_tokens=64, messages=MESSAGES))

    def streamed(events: list[Any], fn: Callable[..., Any]) -> Callable[[], None]:
        def run() -> None:
            replies[True] = events
            for _ in fn(resource, model=MODEL, max_tokens=64, messages=MESSAGES, stream=True):
                pass

        return run

    costs = [own_cost(streamed(events, traced), streamed(events, replay), calls=200)
             for events in (long_events, short_events)]
    return per_call, (costs[0] - costs[1]) / (len(long_events) - len(short_events))


def child(variant: str) -> None:
    init_idle(tempfile.mkdtemp(prefix="tw-anthropic-cg-"))
    with served(os.path.abspath(__file__), one_write=True) as base_url:
        client = anthropic.Anthropic(base_url=base_url, api_key="bench", max_retries=0)
        if variant == "on":
            wrap(client)
        counted(lambda: create(client), lambda: stream(1024)(client))


def end_to_end(rounds: int) -> None:
    """Section 2 in a process of its own (see openai_overhead.PROCESSES): the samples, as JSON."""
    tracewire.init(sink="sqlite", db=os.path.join(tempfile.mkdtemp(prefix="tw-bench-"), "bench.db"))
    with served(os.path.abspath(__file__)) as base_url:
        clients = {
            "plain": anthropic.Anthropic(base_url=base_url, api_key="bench", max_retries=0),
            "wrapped": wrap(anthropic.Anthropic(base_url=base_url, api_key="bench", max_retries=0)),
        }

        def on(run: Callable[[anthropic.Anthropic], Any], suffix: str = "") -> dict[str, Callable[[], object]]:
            return {name + suffix: (lambda c=c: run(c)) for name, c in clients.items()}

        calls = interleaved(on(create), rounds, BATCH)
        streams = interleaved({**on(stream(1024)), **on(stream(64), " short")}, rounds, 1)
        events = {"short": stream(64)(clients["plain"]), "long": stream(1024)(clients["plain"])}
    assert tracewire.flush(30)
    stats = tracewire.stats()
    tracewire.shutdown()
    json.dump({"calls": calls, "streams": streams, "events": events, "stats": stats}, sys.stdout)


def main(rounds: int, count: bool) -> None:
    folder = tempfile.mkdtemp(prefix="tw-bench-")
    init_idle(folder)
    with AnthropicServer(script) as srv:
        plain = anthropic.Anthropic(base_url=srv.base_url, api_key="bench", max_retries=0)
        wrapped = wrap(anthropic.Anthropic(base_url=srv.base_url, api_key="bench", max_retries=0))
        print(f"tracewire {tracewire.__version__}, anthropic {anthropic.__version__}, python "
              f"{sys.version.split()[0]}, capture_content={tracewire.get_client().capture_content}; caller-thread CPU")
        own_load = load()
        own_call, own_chunk = own_work(plain, wrapped)
    tracewire.shutdown()
    e2e_load = load()
    calls, streams, medians, out = pooled(os.path.abspath(__file__), rounds, "wrapped", "plain")
    events_long, events_short, stats = out["events"]["long"], out["events"]["short"], out["stats"]
    end_load = load()
    print(f"\n1. tracewire's own work (the wrapper around a replayed response; {own_load})")
    print(verdict("  per non-streaming call:      ", own_call, TARGET_CALL_US))
    print(verdict("  per streamed chunk:          ", own_chunk, TARGET_CHUNK_US, 2))
    print_end_to_end(calls, streams, "wrapped", "plain", ("wrapped", "plain"), (events_long, events_short, "event"),
                     PROCESSES * rounds, (e2e_load, end_load))
    print(f"  added per call, each process's own median: {', '.join(f'{m:.1f}' for m in medians)} µs")
    print(f"\nlast process: events emitted {stats['emitted']}, written {stats['written']}, dropped {stats['dropped']}, "
          f"internal errors {stats['internal_errors']}")
    if count:
        print_instructions(instructions(os.path.abspath(__file__), events_long), events_long)


if __name__ == "__main__":
    run_mode(child, lambda: serve_until_closed(AnthropicServer, script), end_to_end, main)
