"""What the OpenAI SDK integration adds to the caller's thread, next to the SDK as shipped.

Against the scripted OpenAI server on 127.0.0.1 (in this process, on threads of its own), two
workloads with the real `openai` client:
  call    `chat.completions.create` (non-streaming): one message in, a short answer out
  stream  `chat.completions.create(stream=True)`: an answer of CHUNKS chunks, iterated to the end

Two variants run interleaved in one process (the order alternates every round, so drift and noise
from neighbours hit them alike):
  none       the SDK as shipped (uninstrument(): the original methods back in place)
  tracewire  instrument(), content capture on, default SQLite sink (a temp file)

Per run it takes the caller thread's CPU time (`time.thread_time_ns`: what the user's code pays;
the HTTP round trip's own CPU is in both variants and cancels). "Added" = the median, over
rounds, of (tracewire - none) within the same round; per chunk = the stream's added time less a
call's, divided by the chunks.

    python benchmarks/openai_overhead.py [rounds]      # default 200 (each BATCH calls and streams a variant)
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import openai

import tracewire
from tracewire.integrations.openai import instrument, uninstrument
from tracewire.testing.openai_server import OpenAIServer, Reply

CHUNKS = 200
BATCH = 5  # calls and streams per variant per round: the patching between variants touches no timed call twice
TARGET_CALL_US = 40.0
TARGET_CHUNK_US = 2.0
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "What is the weather in Paris?"}]
ANSWER = "It is sunny in Paris."
LONG_ANSWER = " ".join(f"w{i}" for i in range(CHUNKS - 2))  # + the role chunk and the finish chunk


def cpu_of(fn: Callable[[], object]) -> float:
    """Caller-thread CPU of one `fn()`, the mean over BATCH back-to-back runs."""
    t0 = time.thread_time_ns()
    for _ in range(BATCH):
        fn()
    return (time.thread_time_ns() - t0) / BATCH


def main(rounds: int) -> None:
    folder = tempfile.mkdtemp(prefix="tw-openai-bench-")
    tracewire.init(db=os.path.join(folder, "bench.db"))

    def script(body: dict[str, object]) -> Reply:
        return Reply(LONG_ANSWER if body.get("stream") else ANSWER, prompt_tokens=40, completion_tokens=12)

    with OpenAIServer(script) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-bench", max_retries=0)

        def call() -> None:
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]

        def stream() -> None:
            n = sum(1 for _ in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES,  # type: ignore[arg-type]
                                                                stream=True))
            assert n == CHUNKS, n

        for _ in range(20):  # warm up both paths, both variants
            for on in (False, True):
                (instrument if on else uninstrument)()
                call()
                stream()
        added_call: list[float] = []
        added_stream: list[float] = []
        base_call: list[float] = []
        base_stream: list[float] = []
        for r in range(rounds):
            got: dict[bool, tuple[float, float]] = {}
            for on in ((False, True) if r % 2 else (True, False)):
                (instrument if on else uninstrument)()
                gc.collect()
                gc.disable()
                try:
                    got[on] = (cpu_of(call), cpu_of(stream))
                finally:
                    gc.enable()
            added_call.append(got[True][0] - got[False][0])
            added_stream.append(got[True][1] - got[False][1])
            base_call.append(got[False][0])
            base_stream.append(got[False][1])
        uninstrument()
    assert tracewire.flush(30)
    tracewire.shutdown()

    q_call = statistics.quantiles(added_call, n=4)
    call_us = statistics.median(added_call) / 1e3
    stream_us = statistics.median(added_stream) / 1e3
    chunk_us = max(stream_us - call_us, 0.0) / CHUNKS
    print(f"openai {openai.__version__}, {rounds} rounds, caller-thread CPU, median of per-round differences")
    print(f"  SDK call as shipped:           {statistics.median(base_call) / 1e3:8.1f} µs")
    print(f"  SDK stream as shipped:         {statistics.median(base_stream) / 1e3:8.1f} µs ({CHUNKS} chunks)")
    print(f"  added per non-streaming call:  {call_us:8.1f} µs   target <= {TARGET_CALL_US:.0f} µs  "
          f"ratio {call_us / TARGET_CALL_US:.2f}")
    print(f"  added per streamed chunk:      {chunk_us:8.2f} µs   target <= {TARGET_CHUNK_US:.0f} µs  "
          f"ratio {chunk_us / TARGET_CHUNK_US:.2f}")
    print(f"  (a whole stream: +{stream_us:.1f} µs; per call, quartiles of the differences: "
          f"{q_call[0] / 1e3:.1f} / {q_call[2] / 1e3:.1f} µs)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
