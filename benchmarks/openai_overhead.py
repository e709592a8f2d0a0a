"""What the OpenAI SDK integration adds to the caller's thread, next to the SDK as shipped.

Three measurements, all of the calling thread (`time.thread_time_ns`, or its instructions: what
the user's code pays; the worker's and the local server's threads are not counted):

1. tracewire's own work, without the HTTP layer: the same patched-method wrapper (`traced`) around
   a function handing back a response the real server sent (a real `ChatCompletion`), against that
   function alone; for streams, the stream proxy and its accumulator over real chunks against a
   plain loop over them (per chunk: a CHUNKS-chunk stream's less a 2-chunk one's). Thousands of
   calls per block, the median block, tracewire's worker kept idle while a block runs (a flush
   interval of an hour, a batch larger than the block; flushed between blocks): the wrapper's code
   with its instructions and data hot in the caches. Then the same call with the caches made cold
   first (`evictor`: what an SDK call does to them, without the network), one call at a time, the
   median of 1,500 each way: what the wrapper costs where it runs, after the HTTP round trip.

2. End to end, timed, against the scripted OpenAI server on 127.0.0.1 (in a process of its own,
   as a provider's is: in this process its threads would take the GIL from the caller at every
   chunk), with the real `openai` client, the SDK as shipped (`uninstrument()`) and
   `instrument()`ed (content capture on, SQLite sink in a temp file, its worker running as in an
   app), the variants in a shuffled order each round, the garbage collector run between rounds
   only:
     call    `chat.completions.create` (non-streaming), BATCH calls per variant and round: the
             median over rounds of (instrumented - shipped), its distribution-free 95% interval,
             and the same for instrumented / shipped
     chunk   a CHUNKS-chunk and a 7-chunk stream per variant and round, read to the end: per round
             (long on - long off) - (short on - short off), over the chunks more the long one has
   Each beside its target (TARGET_CALL_US, TARGET_CHUNK_US): the HTTP round trip costs ~50x the
   call's figure and its noise does not cancel exactly, the interval says how far to trust it.
   Instrumenting asks streams for their usage (`stream_options.include_usage`), and the server
   then sends a `usage` field, null, in every chunk and a usage chunk at the end, as OpenAI does:
   two more streams, shipped but asking for it, split the per-chunk figure into the SDK's parsing
   of that field and tracewire's own code (instrumented against them: the same bytes).
   This section runs in PROCESSES fresh processes, one after the other, and their rounds are
   pooled: one process's figure moves with where its objects landed in memory (the same code
   read 19 to 51 µs per call from one process to the next), and the wrapper's few dozen
   microseconds are mostly cache misses, its code and data evicted by the HTTP round trip that
   came before. Each process's own median is printed beside the pooled one.

3. Instructions, under valgrind's callgrind (when installed): one child process per variant runs
   CALLS calls then STREAMS long streams, tracewire's worker idle; callgrind dumps its counts at
   each phase's end, and the calling thread's count per call and per chunk (a stream's added count
   less a call's, per chunk) does not follow the host's load (a stream's count still moves by some
   0.3% from one run to the next: ~2,000 a chunk). A third
   child, shipped but asking for usage (`stream_options.include_usage`, which tracewire asks for),
   counts what the SDK spends on the usage chunk and the `usage` field of every chunk: per
   stream, and kept out of the per-chunk figure (section 2 times it too). The server sends each
   stream in one write here, so the SDK's socket reads, and its count, do not follow the timing.

    python benchmarks/openai_overhead.py [rounds] [--no-instructions]     # default 300 rounds a process
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import openai

import tracewire
from tracewire.adapters import sdk
from tracewire.integrations.openai import extract as X
from tracewire.integrations.openai import hooks, instrument, uninstrument
from tracewire.testing.openai_server import OpenAIServer, Reply

CHUNKS = 200
PROCESSES = 3  # section 2 runs in this many fresh processes, pooled: see the module's docstring
BATCH = 10  # calls and streams per variant per round: the patching between variants touches no timed call twice
OWN_CALLS = 2000  # replayed calls per block of the own-work measurement
OWN_BLOCKS = 15
TARGET_CALL_US = 40.0
TARGET_CHUNK_US = 2.0
MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "What is the weather in Paris?"}]
ANSWER = "It is sunny in Paris."
LONG_MESSAGES = [MESSAGES[0], {"role": "user", "content": "Tell me about the weather in Paris."}]
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


@contextlib.contextmanager
def served(script: str, one_write: bool = False) -> Iterator[str]:
    """`script --serve` (its scripted server) in a process of its own, as a provider's server is:
    in this process its threads would take the GIL from the caller at every chunk, and the caller's
    CPU would time their handovers. `one_write`: each stream sent in one write (the instruction
    counts: the SDK's reads, and so its count, then do not follow the timing). Yields the server's
    base URL; stops it on exit."""
    proc = subprocess.Popen([sys.executable, script, "--serve", *(["one-write"] if one_write else [])],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        url = proc.stdout.readline().strip()
        if not url:
            raise RuntimeError(f"{script} --serve did not start")
        yield url
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def serve_until_closed(kind: Callable[[Callable[[dict[str, Any]], Any]], Any], script: Callable[[dict[str, Any]], Any]) -> None:
    """The `--serve [one-write]` mode: a `kind` server (OpenAIServer, AnthropicServer) replying
    what `script` says, until stdin closes."""
    one_write = sys.argv[2:3] == ["one-write"]

    def reply(body: dict[str, Any]) -> Any:
        return dataclasses.replace(script(body), one_write=True) if one_write else script(body)

    with kind(reply) as server:
        print(server.base_url, flush=True)
        sys.stdin.read()


def run_mode(child: Callable[[str], None], serve: Callable[[], None], end_to_end: Callable[[int], None],
             main: Callable[[int, bool], None]) -> None:
    """A benchmark script's command line: `--child VARIANT` (a callgrind child), `--serve
    [one-write]` (its server, for `served`), `--e2e ROUNDS` (section 2 in a process of its own),
    else `[rounds] [--no-instructions]` (the whole benchmark)."""
    mode = sys.argv[1:2]
    if mode == ["--child"]:
        child(sys.argv[2])
    elif mode == ["--serve"]:
        serve()
    elif mode == ["--e2e"]:
        end_to_end(int(sys.argv[2]))
    else:
        args = [a for a in sys.argv[1:] if a != "--no-instructions"]
        main(int(args[0]) if args else 300, "--no-instructions" not in sys.argv)


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
    round, in an order shuffled each round (seeded; no variant always follows another);
    `switch(name)` (untimed) sets a variant up before its runs. The garbage collector runs between
    rounds only."""
    names = list(variants)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for name in names * 10:  # warm-up: connections, caches, the SQLite file
        switch(name)
        variants[name]()
    order = random.Random(0)
    gc.disable()
    try:
        for r in range(rounds):
            if r % 20 == 0:
                gc.collect()
            order.shuffle(names)
            for name in names:
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


def per_round(samples: dict[str, list[float]], on: str, off: str) -> tuple[float, float, float]:
    """Median and 95% interval of the per-round ratio on / off."""
    return median_interval([a / b for a, b in zip(samples[on], samples[off], strict=True)])


def per_item(samples: dict[str, list[float]], long: tuple[str, str], short: tuple[str, str],
             items: int) -> tuple[float, float, float]:
    """Median and 95% interval, in µs, of what one item (a chunk) adds: per round, the long
    stream's (on - off) less the short one's, over the `items` more the long one has."""
    return median_interval([((a - b) - (c - d)) / items / 1e3 for a, b, c, d in zip(
        samples[long[0]], samples[long[1]], samples[short[0]], samples[short[1]], strict=True)])


def target_line(label: str, value: float, lo: float, hi: float, target: float, digits: int = 1) -> str:
    return (f"{label}{value:8.{digits}f} µs   95% interval {lo:.{digits}f} .. {hi:.{digits}f}   "
            f"target <= {target:.0f} µs: {value / target:.2f} of it, {'met' if value <= target else 'MISSED'}")


def print_end_to_end(calls: dict[str, list[float]], streams: dict[str, list[float]], on: str, off: str,
                     names: tuple[str, str], items: tuple[int, int, str], rounds: int, loads: tuple[str, str]) -> None:
    """Section 2: per call and per streamed item, what variant `on` adds to `off` (`names`: how the
    two are called, "instrumented" and "shipped"), beside the targets. `streams` holds a long and a
    short stream per variant (`on short`, `off short`); `items`: their lengths and what an item is
    called."""
    long_items, short_items, item = items
    c, c_lo, c_hi = added(calls, on, off)
    r, r_lo, r_hi = per_round(calls, on, off)
    k, k_lo, k_hi = per_item(streams, (on, off), (on + " short", off + " short"), long_items - short_items)
    print(f"\n2. end to end against the local server, {names[0]} - {names[1]}, per-round medians ({rounds} rounds x {BATCH} calls, "
          f"{rounds} rounds of a {long_items}- and a {short_items}-{item} stream; {loads[0]} -> {loads[1]})")
    print(f"  SDK call, {names[1] + ':':<20}{statistics.median(calls[off]) / 1e3:8.1f} µs   {names[0]} / {names[1]} "
          f"{r:.3f} ({r_lo:.3f} .. {r_hi:.3f})")
    print(target_line("  added per call:               ", c, c_lo, c_hi, TARGET_CALL_US))
    print(f"  SDK stream, {names[1] + ':':<18}{statistics.median(streams[off]) / 1e3:8.1f} µs ({long_items} {item}s)")
    print(target_line(f"  added per {item + ':':<20}", k, k_lo, k_hi, TARGET_CHUNK_US, 2))


# ------------------------------------------------------------------ instructions (callgrind)

CALLS = 20  # calls and long streams counted per child
STREAMS = 3


def counted(call: Callable[[], object], stream: Callable[[], object]) -> None:
    """A child's counted part: warmed up, the heap frozen (a full collection of what start-up
    left must not land in one child's window and not the other's), then CALLS calls and STREAMS
    streams, each phase closed by `os.getppid()`, on which callgrind dumps its counts (so
    start-up is not counted); exits without the exit flush (the worker's work is not counted)."""
    for _ in range(3):
        call()
        stream()
    sys.setswitchinterval(1.0)  # threads switch where they block, not on the host's clock
    gc.collect()
    gc.freeze()
    os.getppid()
    for _ in range(CALLS):
        call()
    os.getppid()
    for _ in range(STREAMS):
        stream()
    os.getppid()
    os._exit(0)


def _callgrind(script: str, variant: str) -> tuple[subprocess.Popen[bytes], str]:
    out = tempfile.mkdtemp(prefix="tw-cg-")
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--separate-threads=yes", "--fair-sched=yes", "--dump-before=getppid",
         f"--callgrind-out-file={out}/out", sys.executable, script, "--child", variant],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONHASHSEED": "0"})
    return proc, out


def _phases(proc: subprocess.Popen[bytes], out: str) -> tuple[int, int]:
    """Instructions of the child's main thread (callgrind's thread 1: the caller's) in its calls
    and in its streams: the second and third dumps."""
    try:
        if proc.wait(timeout=3600):
            raise RuntimeError(f"callgrind child failed: {proc.args}")
        counts = []
        for dump in (2, 3):
            with open(os.path.join(out, f"out.{dump}-01")) as f:
                counts.append(next(int(line.split()[1]) for line in f if line.startswith("totals:")))
        return counts[0], counts[1]
    finally:
        shutil.rmtree(out, ignore_errors=True)


def instructions(script: str, chunks: int, usage: bool = False) -> dict[str, float] | None:
    """Caller-thread instructions per call and per streamed chunk, shipped and instrumented, and
    what instrumenting adds; None without valgrind. The children run side by side. `usage`: a
    third child, shipped but asking for the usage chunk as instrumenting does: the SDK's own count
    for that chunk, per stream, is then kept out of the per-chunk figure."""
    if shutil.which("valgrind") is None:
        return None
    procs = {v: _callgrind(script, v) for v in ("off", "on", "usage")[:3 if usage else 2]}
    out: dict[str, float] = {}
    for v, proc in procs.items():
        calls, streams = _phases(*proc)
        out[f"call_{v}"], out[f"stream_{v}"] = calls / CALLS, streams / STREAMS
    out["call_added"] = out["call_on"] - out["call_off"]
    out["usage_chunk"] = out["stream_usage"] - out["stream_off"] if usage else 0.0
    out["chunk_added"] = (out["stream_on"] - out["stream_off"] - out["usage_chunk"] - out["call_added"]) / chunks
    return out


def print_instructions(counts: dict[str, float] | None, chunks: int) -> None:
    if counts is None:
        print("\n3. instructions: valgrind is not installed, not counted")
        return
    print(f"\n3. caller-thread instructions (callgrind, {CALLS} calls and {STREAMS} streams of {chunks} chunks "
          f"counted, tracewire's worker idle)")
    print(f"  per call:    shipped {counts['call_off']:>11,.0f}   instrumented {counts['call_on']:>11,.0f}   "
          f"added {counts['call_added']:>9,.0f} ({counts['call_added'] / counts['call_off']:.1%})")
    print(f"  per stream:  shipped {counts['stream_off']:>11,.0f}   instrumented {counts['stream_on']:>11,.0f}   "
          f"added {counts['stream_on'] - counts['stream_off']:>9,.0f}")
    if counts["usage_chunk"]:
        print(f"  per stream:  the SDK parsing what include_usage (which tracewire asks for) adds, the usage "
              f"chunk and the `usage` field of every chunk: {counts['usage_chunk']:,.0f}, as shipped asking for it "
              f"({counts['usage_chunk'] / chunks:,.0f} a chunk)")
    print(f"  per chunk:   added {counts['chunk_added']:,.0f} (a stream's added count less a call's"
          f"{' and less what include_usage adds' if counts['usage_chunk'] else ''}, over its {chunks} chunks)")


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


def cold_cost(wrapped: Callable[[], object], bare: Callable[[], object], evict: Callable[[], object],
              calls: int = 3000) -> float:
    """Caller-thread CPU µs `wrapped()` takes beyond `bare()` when each call follows `evict()`
    (untimed): the median single call of each, interleaved in blocks of 100."""
    times: dict[bool, list[int]] = {True: [], False: []}
    gc.collect()
    gc.disable()
    try:
        for block in range(calls // 100):
            for on in (True, False) if block % 2 else (False, True):
                fn = wrapped if on else bare
                for _ in range(100):
                    evict()
                    t0 = time.thread_time_ns()
                    fn()
                    times[on].append(time.thread_time_ns() - t0)
            if block % 5 == 4:
                tracewire.flush(30)
    finally:
        gc.enable()
    return (statistics.median(times[True]) - statistics.median(times[False])) / 1e3


def evictor(completion: Any) -> Callable[[], None]:
    """What an SDK call does to the caches, without the network: a pass over 3 MiB of memory (this
    host's L2 is 1 MiB a core) and the SDK's own steps around a call (the response parsed into its
    pydantic model, an httpx request built with a JSON body)."""
    import json

    import httpx

    buf = bytearray(3 * 2**20)
    raw = completion.model_dump()
    kind = type(completion)
    body = {"model": MODEL, "messages": MESSAGES}

    def evict() -> None:
        for i in range(0, len(buf), 64):
            buf[i] = (buf[i] + 1) & 255
        kind.model_validate(raw)
        httpx.Request("POST", "http://127.0.0.1/v1/chat/completions", content=json.dumps(body))

    return evict


def own_work(client: openai.OpenAI) -> tuple[float, float, float]:
    """(µs per non-streaming call, µs per streamed chunk, µs per call with the caches made cold)
    of tracewire's own caller-side work."""
    uninstrument()
    completion = client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
    long_chunks = list(client.chat.completions.create(model=MODEL, messages=LONG_MESSAGES, stream=True))  # type: ignore[arg-type]
    short_chunks = [long_chunks[0], long_chunks[-1]]
    instrument()
    resource = client.chat.completions

    def replay(self: Any, *args: Any, **kwargs: Any) -> Any:
        return completion

    wrapper = sdk.traced(hooks._chat_spec, hooks.scope)(replay)
    per_call = own_cost(lambda: wrapper(resource, model=MODEL, messages=MESSAGES),
                        lambda: replay(resource, model=MODEL, messages=MESSAGES))
    cold = cold_cost(lambda: wrapper(resource, model=MODEL, messages=MESSAGES),
                     lambda: replay(resource, model=MODEL, messages=MESSAGES), evictor(completion))

    def proxied(chunks: list[Any]) -> Callable[[], None]:
        kwargs = {"model": MODEL, "messages": MESSAGES, "stream": True}

        def run() -> None:
            call = sdk._begin(hooks._chat_spec, resource, kwargs)
            assert call is not None
            for _ in sdk.StreamProxy(chunks, call, X.ChatChunks(MODEL, False)):
                pass

        return run

    def plain(chunks: list[Any]) -> Callable[[], None]:
        def run() -> None:
            for _ in chunks:
                pass

        return run

    long_cost = own_cost(proxied(long_chunks), plain(long_chunks), calls=200)
    short_cost = own_cost(proxied(short_chunks), plain(short_chunks), calls=200)
    return per_call, (long_cost - short_cost) / (len(long_chunks) - len(short_chunks)), cold


def serve(body: dict[str, object]) -> Reply:
    """The long answer for a stream asking for a story, else the short one (5 words: 7 chunks)."""
    text = LONG_ANSWER if body.get("stream") and body.get("messages") == LONG_MESSAGES else ANSWER
    return Reply(text, prompt_tokens=40, completion_tokens=12)


def workloads(client: openai.OpenAI) -> tuple[Callable[[], None], Callable[[list[Any]], Callable[[], None]]]:
    def call() -> None:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]

    def streamed(messages: list[Any], usage: bool = False) -> Callable[[], None]:
        """`usage`: asking for the usage chunk as instrumenting does (to count the SDK's own cost of it)."""
        options: Any = {"include_usage": True} if usage else openai.NOT_GIVEN

        def stream() -> None:
            for _ in client.chat.completions.create(model=MODEL, messages=messages, stream=True,  # type: ignore[call-overload]
                                                    stream_options=options):
                pass

        return stream

    return call, streamed


def child(variant: str) -> None:
    init_idle(tempfile.mkdtemp(prefix="tw-openai-cg-"))
    with served(os.path.abspath(__file__), one_write=True) as base_url:
        call, streamed = workloads(openai.OpenAI(base_url=base_url, api_key="sk-bench", max_retries=0))
        if variant == "on":
            instrument()
        counted(call, streamed(LONG_MESSAGES, usage=variant == "usage"))


def end_to_end(rounds: int) -> None:
    """Section 2 in a process of its own (see PROCESSES): the samples, as JSON on stdout."""
    folder = tempfile.mkdtemp(prefix="tw-openai-e2e-")
    with served(os.path.abspath(__file__)) as base_url:
        client = openai.OpenAI(base_url=base_url, api_key="sk-bench", max_retries=0)
        call, streamed = workloads(client)
        short_chunks = sum(1 for _ in client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))  # type: ignore[arg-type]
        assert sum(1 for _ in client.chat.completions.create(model=MODEL, messages=LONG_MESSAGES, stream=True)) == CHUNKS

        def switch(name: str) -> None:
            (instrument if name.startswith("on") else uninstrument)()

        tracewire.init(db=os.path.join(folder, "bench.db"))
        calls = interleaved({"off": call, "on": call}, rounds, BATCH, switch)
        streams = interleaved({"off": streamed(LONG_MESSAGES), "on": streamed(LONG_MESSAGES),
                               "off short": streamed(MESSAGES), "on short": streamed(MESSAGES),
                               "off usage": streamed(LONG_MESSAGES, usage=True),
                               "off usage short": streamed(MESSAGES, usage=True)},
                              rounds, 1, switch)
        uninstrument()
    assert tracewire.flush(30)
    stats = tracewire.stats()
    tracewire.shutdown()
    json.dump({"calls": calls, "streams": streams, "short_chunks": short_chunks, "stats": stats}, sys.stdout)


def pooled(script: str, rounds: int, on: str, off: str) -> tuple[dict[str, list[float]], dict[str, list[float]], list[float], dict[str, Any]]:
    """Section 2 of `script` (its `--e2e ROUNDS` mode, printing the samples as JSON) run in
    PROCESSES fresh processes one after the other, their rounds pooled (in order: the pairs stay
    pairs); also each process's own median per call (`on` - `off`), and the last one's output."""
    calls: dict[str, list[float]] = {}
    streams: dict[str, list[float]] = {}
    medians: list[float] = []
    out: dict[str, Any] = {}
    for _ in range(PROCESSES):
        done = subprocess.run([sys.executable, script, "--e2e", str(rounds)],
                              check=True, capture_output=True, text=True, timeout=3600)
        out = json.loads(done.stdout)
        for pool, part in ((calls, out["calls"]), (streams, out["streams"])):
            for name, samples in part.items():
                pool.setdefault(name, []).extend(samples)
        medians.append(added(out["calls"], on, off)[0])
    return calls, streams, medians, out


def main(rounds: int, count: bool) -> None:
    folder = tempfile.mkdtemp(prefix="tw-openai-bench-")
    with OpenAIServer(serve) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-bench", max_retries=0)
        print(f"tracewire {tracewire.__version__}, openai {openai.__version__}, python {sys.version.split()[0]}; "
              f"caller-thread CPU")
        init_idle(folder)
        own_load = load()
        own_call, own_chunk, own_cold = own_work(client)
        tracewire.shutdown()
    e2e_load = load()
    calls, streams, medians, out = pooled(os.path.abspath(__file__), rounds, "on", "off")
    short_chunks, stats = out["short_chunks"], out["stats"]
    end_load = load()

    print(f"\n1. tracewire's own work (the wrapper around a replayed response; {own_load})")
    print(verdict("  per non-streaming call:      ", own_call, TARGET_CALL_US))
    print(verdict("  per streamed chunk:          ", own_chunk, TARGET_CHUNK_US, 2))
    print(verdict("  per call, caches made cold:  ", own_cold, TARGET_CALL_US))
    print_end_to_end(calls, streams, "on", "off", ("instrumented", "shipped"), (CHUNKS, short_chunks, "chunk"),
                     PROCESSES * rounds, (e2e_load, end_load))
    print(f"  added per call, each process's own median: {', '.join(f'{m:.1f}' for m in medians)} µs")
    # include_usage, which instrumenting asks for, adds a `usage` field (null) to every chunk and a
    # usage chunk at the end; the SDK's parsing of them is timed apart, shipped asking for it itself
    items = CHUNKS - short_chunks
    o, o_lo, o_hi = per_item(streams, ("on", "off usage"), ("on short", "off usage short"), items)
    u, u_lo, u_hi = per_item(streams, ("off usage", "off"), ("off usage short", "off short"), items)
    w, w_lo, w_hi = added(streams, "off usage short", "off short")
    print("  the same split by what runs it, against the SDK asking for usage itself (the same bytes on the wire):")
    print(target_line("    tracewire's code, per chunk:  ", o, o_lo, o_hi, TARGET_CHUNK_US, 2))
    print(f"    the SDK parsing the `usage` field include_usage adds to every chunk: {u:8.2f} µs   95% interval "
          f"{u_lo:.2f} .. {u_hi:.2f}\n    and the usage chunk, per stream: {w:.1f} µs ({w_lo:.1f} .. {w_hi:.1f}); "
          f"instrument(include_usage=False) leaves both out")
    print(f"\nlast process: events emitted {stats['emitted']}, written {stats['written']}, dropped {stats['dropped']}, "
          f"internal errors {stats['internal_errors']}")
    if count:
        print_instructions(instructions(os.path.abspath(__file__), CHUNKS, usage=True), CHUNKS)


if __name__ == "__main__":
    run_mode(child, lambda: serve_until_closed(OpenAIServer, serve), end_to_end, main)
