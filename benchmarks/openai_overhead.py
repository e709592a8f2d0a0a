"""What the OpenAI SDK integration adds to the caller's thread, next to the SDK as shipped.

Two measurements, both of caller-thread CPU (`time.thread_time_ns`: what the user's code pays;
the worker's and the local server's threads are not counted):

1. End to end, against the scripted OpenAI server on 127.0.0.1 (in this process, on threads of its
   own), with the real `openai` client:
     call    `chat.completions.create` (non-streaming): one message in, a short answer out
     stream  `chat.completions.create(stream=True)`: an answer of CHUNKS chunks, read to the end
   The SDK as shipped (`uninstrument()`) and `instrument()`ed (content capture on, SQLite sink in a
   temp file) run interleaved, the order alternating every round, BATCH calls per variant and
   round. The figure is the median over rounds of (instrumented - shipped) in the same round, with
   a distribution-free 95% interval of that median. The HTTP round trip costs ~50x the figure and
   its noise does not cancel exactly: the interval says how far to trust it.

2. tracewire's own work, without the HTTP layer: the same patched-method wrapper (`traced`) around
   a function handing back a response the real server sent (a real `ChatCompletion`), against that
   function alone; for streams, the stream proxy and its accumulator over real chunks against a
   plain loop over them (per chunk: a CHUNKS-chunk stream's less a 2-chunk one's). Thousands of
   calls per block, the median block, and tracewire's worker kept idle while a block runs (a
   flush interval of an hour, a batch larger than the block; flushed between blocks), as in
   benchmarks/langchain_instructions.py: what is timed is the wrapper's code alone, not the
   caches and the cores it shares with the worker. This is the figure the targets are checked
   against; (1) adds what the worker and the HTTP stack running beside it cost the caller.

    python benchmarks/openai_overhead.py [rounds]      # default 300
"""

from __future__ import annotations

import gc
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import openai

import tracewire
from tracewire.adapters import sdk
from tracewire.integrations.openai import extract as X
from tracewire.integrations.openai import hooks, instrument, uninstrument
from tracewire.testing.openai_server import OpenAIServer, Reply

CHUNKS = 200
BATCH = 10  # calls and streams per variant per round: the patching between variants touches no timed call twice
OWN_CALLS = 2000  # replayed calls per block of the own-work measurement
OWN_BLOCKS = 15
TARGET_CALL_US = 40.0
TARGET_CHUNK_US = 2.0
MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "What is the weather in Paris?"}]
ANSWER = "It is sunny in Paris."
LONG_ANSWER = " ".join(f"w{i}" for i in range(CHUNKS - 2))  # + the role chunk and the finish chunk


# ------------------------------------------------------------------ shared with anthropic_overhead.py


def init_idle(folder: str) -> None:
    """tracewire with its worker idle until flushed: the own-work blocks time the caller alone."""
    tracewire.init(sink="sqlite", db=os.path.join(folder, "own.db"), flush_interval=3600, batch_size=10**6,
                   queue_max_events=10**7, queue_max_bytes=2**31)


def load() -> str:
    """The machine's load average, printed next to every figure."""
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f} on {os.cpu_count()} cpus"


def median_interval(diffs: Sequence[float]) -> tuple[float, float, float]:
    """(median, low, high): the median of `diffs` and its distribution-free 95% interval (the order
    statistics n/2 -+ 0.98 sqrt(n), from the binomial's normal approximation)."""
    s = sorted(diffs)
    n = len(s)
    half = 0.98 * math.sqrt(n)
    lo, hi = max(int(n / 2 - half), 0), min(int(math.ceil(n / 2 + half)), n - 1)
    return statistics.median(s), s[lo], s[hi]


def interleaved(variants: dict[str, Callable[[], object]], rounds: int, batch: int,
                switch: Callable[[str], object] = lambda name: None) -> dict[str, list[float]]:
    """Caller-thread CPU ns of one run of each variant (the mean of `batch` back-to-back runs), per
    round, the order alternating each round; `switch(name)` (untimed) sets a variant up before its
    runs. The garbage collector runs between rounds only."""
    names = list(variants)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for name in names * 10:  # warm-up: connections, caches, the SQLite file
        switch(name)
        variants[name]()
    gc.disable()
    try:
        for r in range(rounds):
            if r % 20 == 0:
                gc.collect()
            for name in names if r % 2 else names[::-1]:
                fn = variants[name]
                switch(name)
                t0 = time.thread_time_ns()
                for _ in range(batch):
                    fn()
                samples[name].append((time.thread_time_ns() - t0) / batch)
    finally:
        gc.enable()
    return samples


def added(samples: dict[str, list[float]], on: str, off: str) -> tuple[float, float, float]:
    """Median and 95% interval of the per-round difference on - off, in µs."""
    m, lo, hi = median_interval([(a - b) / 1e3 for a, b in zip(samples[on], samples[off], strict=True)])
    return m, lo, hi


def own_cost(wrapped: Callable[[], object], bare: Callable[[], object], calls: int = OWN_CALLS,
             blocks: int = OWN_BLOCKS) -> float:
    """Caller-thread CPU µs `wrapped()` takes beyond `bare()`: per block `calls` of each, the
    median block. The worker is flushed between blocks so its queue never fills."""
    diffs = []
    for _ in range(blocks):
        gc.collect()
        gc.disable()
        try:
            t0 = time.thread_time_ns()
            for _ in range(calls):
                wrapped()
            t1 = time.thread_time_ns()
            for _ in range(calls):
                bare()
            t2 = time.thread_time_ns()
        finally:
            gc.enable()
        diffs.append(((t1 - t0) - (t2 - t1)) / calls / 1e3)
        tracewire.flush(30)
    return statistics.median(diffs)


def verdict(label: str, value: float, target: float, unit_width: int = 1) -> str:
    return (f"{label}{value:8.{unit_width}f} µs   target <= {target:.0f} µs   "
            f"{'meets' if value <= target else 'MISSES'} it ({value / target:.2f})")


# ------------------------------------------------------------------ the OpenAI workloads


def own_work(client: openai.OpenAI) -> tuple[float, float]:
    """(µs per non-streaming call, µs per streamed chunk) of tracewire's own caller-side work."""
    uninstrument()
    completion = client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
    long_chunks = list(client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))  # type: ignore[arg-type]
    short_chunks = [long_chunks[0], long_chunks[-1]]
    instrument()
    resource = client.chat.completions

    def replay(self: Any, *args: Any, **kwargs: Any) -> Any:
        return completion

    wrapper = sdk.traced(hooks._chat_spec, hooks.scope)(replay)
    per_call = own_cost(lambda: wrapper(resource, model=MODEL, messages=MESSAGES),
                        lambda: replay(resource, model=MODEL, messages=MESSAGES))

    def proxied(chunks: list[Any]) -> Callable[[], None]:
        kwargs = {"model": MODEL, "messages": MESSAGES, "stream": True}

        def run() -> None:
            call = sdk._begin(hooks._chat_spec, resource, (), kwargs)
            assert call is not None
            for _ in sdk.StreamProxy(chunks, call, X.ChatChunks(call.request.state, False)):
                pass

        return run

    def plain(chunks: list[Any]) -> Callable[[], None]:
        def run() -> None:
            for _ in chunks:
                pass

        return run

    long_cost = own_cost(proxied(long_chunks), plain(long_chunks), calls=200)
    short_cost = own_cost(proxied(short_chunks), plain(short_chunks), calls=200)
    return per_call, (long_cost - short_cost) / (len(long_chunks) - len(short_chunks))


def main(rounds: int) -> None:
    folder = tempfile.mkdtemp(prefix="tw-openai-bench-")

    def script(body: dict[str, object]) -> Reply:
        return Reply(LONG_ANSWER if body.get("stream") else ANSWER, prompt_tokens=40, completion_tokens=12)

    with OpenAIServer(script) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-bench", max_retries=0)

        def call() -> None:
            client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]

        def stream() -> None:
            n = sum(1 for _ in client.chat.completions.create(model=MODEL, messages=MESSAGES,  # type: ignore[arg-type]
                                                                stream=True))
            assert n == CHUNKS, n

        def switch(name: str) -> None:
            (instrument if name == "on" else uninstrument)()

        print(f"tracewire {tracewire.__version__}, openai {openai.__version__}, python {sys.version.split()[0]}; "
              f"caller-thread CPU")
        init_idle(folder)
        own_load = load()
        own_call, own_chunk = own_work(client)
        tracewire.shutdown()
        tracewire.init(db=os.path.join(folder, "bench.db"))
        e2e_load = load()
        calls = interleaved({"off": call, "on": call}, rounds, BATCH, switch)
        streams = interleaved({"off": stream, "on": stream}, rounds // 4, 2, switch)
        uninstrument()
    assert tracewire.flush(30)
    stats = tracewire.stats()
    tracewire.shutdown()

    print(f"\n1. tracewire's own work (the wrapper around a replayed response; {own_load})")
    print(verdict("  per non-streaming call:      ", own_call, TARGET_CALL_US))
    print(verdict("  per streamed chunk:          ", own_chunk, TARGET_CHUNK_US, 2))
    c, c_lo, c_hi = added(calls, "on", "off")
    s, s_lo, s_hi = added(streams, "on", "off")
    print(f"\n2. end to end against the local server, instrumented - shipped, per-round medians "
          f"({rounds} rounds x {BATCH} calls, {rounds // 4} x 2 streams; {e2e_load} -> {load()})")
    print(f"  SDK call as shipped:          {statistics.median(calls['off']) / 1e3:8.1f} µs")
    print(f"  SDK stream as shipped:        {statistics.median(streams['off']) / 1e3:8.1f} µs ({CHUNKS} chunks)")
    print(f"  added per call:               {c:8.1f} µs   95% interval {c_lo:.1f} .. {c_hi:.1f}")
    print(f"  added per stream:             {s:8.1f} µs   95% interval {s_lo:.1f} .. {s_hi:.1f} "
          f"(per chunk, less a call's: {(s - c) / CHUNKS:.2f})")
    print(f"\nevents emitted {stats['emitted']}, written {stats['written']}, dropped {stats['dropped']}, "
          f"internal errors {stats['internal_errors']}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
