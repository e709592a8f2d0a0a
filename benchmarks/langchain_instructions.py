"""What a LangChain / LangGraph run costs with tracewire, in instructions: on the caller's thread,
and in all threads with the background export included.

The same workloads as `langchain_overhead.py`, counted by valgrind's callgrind instead of timed:
the count is the same from one run to the next and does not move with what else the machine is
doing, so the ratios it gives are the code's own, free of this host's timing noise (and blind to
what caches and memory add, which the timed benchmark sees).

Variants, each in a child process of its own:
  none            no callbacks
  noop            a handler whose hooks do nothing
  tracewire       TracewireCallbackHandler into the embedded SQLite store
  tracewire-otlp  TracewireCallbackHandler, sink `otlp` (content export on)
  openinference   OpenInference's LangChain instrumentation, BatchSpanProcessor
The last two export through the same opentelemetry-sdk http/protobuf exporter to the same
receiver: `tracewire.testing.otlp_receiver`, in this process, which answers 200.

Each child runs under callgrind (one file per thread) twice, with N1 and N2 runs, each followed by
a flush (tracewire.flush() / force_flush()) inside the counted window, so the background work of
those runs is counted too: the difference divided by N2 - N1 is one run's cost, start-up and the
per-export constant cancelled out. Nothing is exported on a timer (flush interval and schedule
delay of an hour): the runs' spans go out in one export at the flush, for both exporters alike.
Before counting, each child does both windows' work once (N1 runs and a flush, N2 runs and a
flush): what an app does once per shape is then in neither window (SQLite compiling its insert
statement for a batch size it meets for the first time is ~1.45 M instructions at 64 rows; counted
in the N2 child only, it read as 0.36 M per agent run). The heap is then frozen, so that where the
garbage collector's full passes fall does not decide the figure.

Threads: the caller's is the main thread (callgrind's thread 1). callgrind numbers the others in
the order they start, reusing the numbers of threads that ended, and which thread gets which number
changes from one child to the next (LangGraph runs tools on threads of its own). So the thread that
does the export work (tracewire's worker; for OpenInference, the thread its flush runs on) names
itself: after the counted window it calls `os.getppid()`, on which callgrind (`--dump-before`)
writes that thread's counts to a file named with its number. Its counts are the "background"
column; every thread is in "all threads".

Compare two trees within one session, their packages byte-compiled first: the same code counts
20-30k instructions per agent run apart from one session to the next (the interpreter's lookup
caches follow what is imported).

    python benchmarks/langchain_instructions.py [agent|chain ...]   (needs valgrind; agent only by
                                                                     default: ~20 minutes on a 2-core VM)
"""

from __future__ import annotations

import concurrent.futures
import gc
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the children import nothing they do not count
    from tracewire.testing.otlp_receiver import OTLPReceiver

RUNS = {"agent": (2, 6), "chain": (10, 40)}
VARIANTS = ("none", "noop", "tracewire", "tracewire-otlp", "openinference")
# threads each variant starts for its background work: tracewire's worker; the processor's
# thread and the thread that flushes it (the one whose counts are the background's: the
# processor's own thread only waits, its schedule delay being an hour)
BACKGROUND = {"tracewire": 1, "tracewire-otlp": 1, "openinference": 2}
HOUR = 3600
CALLGRIND_SLOWDOWN = 100
EXPORTING = ("tracewire-", "Otel", "flusher")  # names of the threads that do background export work


def _start_background(variant: str, endpoint: str) -> tuple[Callable[[], object], Callable[[], object], int]:
    """The variant's exporting side. Returns (flush, mark, how many threads it started): `mark()`
    has the exporting thread call `os.getppid()` (see the module's docstring)."""
    if variant in ("tracewire", "tracewire-otlp"):
        import tracewire

        common = {"flush_interval": HOUR, "batch_size": 10**6, "queue_max_events": 10**7, "queue_max_bytes": 2**31}
        if variant == "tracewire":
            tracewire.init(sink="sqlite", db=os.path.join(tempfile.mkdtemp(prefix="tw-instr-"), "b.db"), **common)
        else:
            tracewire.init(sink="otlp", otlp_endpoint=endpoint, otlp_capture_content=True, **common)
        flush: Callable[[], object] = tracewire.flush

        def mark() -> None:
            from tracewire.engine import state

            assert state.client is not None and state.client.defer(os.getppid)
            tracewire.flush()
    elif variant == "openinference":
        from openinference.instrumentation.langchain import LangChainInstrumentor
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        # force_flush() exports on the thread that calls it: a thread of its own calls it, so that
        # the export is background work here too, as it is when the processor's timer fires.
        go, done = threading.Event(), threading.Event()
        marking = []
        provider = TracerProvider()

        def flusher() -> None:
            while go.wait():
                go.clear()
                if marking:
                    os.getppid()
                else:
                    provider.force_flush()
                done.set()

        threading.Thread(target=flusher, name="flusher", daemon=True).start()
        provider.add_span_processor(BatchSpanProcessor(
            OTLPSpanExporter(endpoint=endpoint), max_queue_size=10**6,
            schedule_delay_millis=HOUR * 1000, max_export_batch_size=10**6))
        LangChainInstrumentor().instrument(tracer_provider=provider)

        def flush() -> None:
            go.set()
            done.wait()
            done.clear()

        def mark() -> None:
            marking.append(True)
            flush()
    else:
        return (lambda: None), (lambda: None), 0
    return flush, mark, threading.active_count() - 1


def child(workload: str, variant: str, n: int, endpoint: str) -> None:
    # The worker rests after SLICE_S of wall-clock time at work (tracewire.engine.pace). Under
    # callgrind code runs ~CALLGRIND_SLOWDOWN times slower: the slice is stretched as much, so the
    # worker rests as often per instruction as it does natively, not every few thousand
    # instructions at a rate that follows the host's load.
    from tracewire.engine import pace

    pace.SLICE_S *= CALLGRIND_SLOWDOWN
    flush, mark, started = _start_background(variant, endpoint)
    assert started == BACKGROUND.get(variant, 0), (variant, threading.enumerate())
    background = {t.ident for t in threading.enumerate()} - {threading.main_thread().ident}
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import langchain_overhead as lo

    handler = None
    if variant == "noop":
        handler = lo.NoopHandler()
    elif variant.startswith("tracewire"):
        from tracewire.integrations.langchain import TracewireCallbackHandler

        handler = TracewireCallbackHandler()
    config = {"callbacks": [handler]} if handler is not None else {}
    run = lo.workloads()[workload]
    # Warm-up: each child first does what both children count (N1 runs and their export, then N2
    # runs and theirs), so what is done once per shape is in neither window: SQLite compiles its
    # insert statement for a batch of a size it has not met before (~1.45 M instructions for a
    # 64-row batch), which only the child with more runs would otherwise count. Then the heap is
    # frozen: otherwise a full collection of everything imported so far lands in one variant's
    # counted window and not the other's.
    for warm in RUNS[workload]:
        for _ in range(warm):
            run(config)
        flush()
    # LangGraph runs tools on threads: a forced GIL hand-over every 5 ms of wall-clock time makes
    # the count follow the host's load; with a long interval the threads switch where they block.
    sys.setswitchinterval(1.0)
    gc.collect()
    gc.freeze()
    for _ in range(n):
        run(config)
    flush()
    # an exporting thread started after the first ones would export outside the marked thread's count
    late = [t.name for t in threading.enumerate()
            if t.name.startswith(EXPORTING) and t.ident not in background]
    assert not late, f"background threads started late, outside the counted split: {late}"
    mark()
    os._exit(0)


def _thread_totals(directory: str) -> tuple[dict[int, int], set[int]]:
    """callgrind's count per thread (its number: 1 is the main thread), summed over its files (a
    thread's `os.getppid()` writes its counts so far to a file of their own), and the numbers of
    the threads that did so: the exporting ones."""
    totals: dict[int, int] = {}
    marked: set[int] = set()
    for path in glob.glob(f"{directory}/out*-*"):
        name = os.path.basename(path)
        thread = int(name.rsplit("-", 1)[1])
        if name.startswith("out."):  # a dump on `os.getppid()`: only the calling thread's file
            marked.add(thread)
        with open(path) as f:
            for line in f:
                if line.startswith(("summary:", "totals:")):
                    totals[thread] = totals.get(thread, 0) + int(line.split()[1])
                    break
    return totals, marked


def count(workload: str, variant: str, n: int, receiver: OTLPReceiver) -> tuple[dict[int, int], set[int], int]:
    """callgrind's count per thread, the exporting threads' numbers, and the spans the receiver got."""
    path = f"/{workload}/{variant}/{n}/v1/traces"
    with tempfile.TemporaryDirectory() as d:
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        subprocess.run(
            ["valgrind", "--tool=callgrind", "--separate-threads=yes", "--fair-sched=yes", "--dump-before=getppid",
             f"--callgrind-out-file={d}/out", sys.executable, os.path.abspath(__file__), "--child", workload, variant,
             str(n), receiver.url + path],
            check=True, capture_output=True, env=env, timeout=3600,
        )
        totals, marked = _thread_totals(d)
        return totals, marked, receiver.span_count(path)


def main() -> None:
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: nothing to count")
        return
    workloads = sys.argv[1:] or ["agent"]
    from tracewire.testing.otlp_receiver import OTLPReceiver

    receiver = OTLPReceiver().start()
    print(f"python {sys.version.split()[0]}; instructions per run (callgrind), flush inside the counted window")
    for workload in workloads:
        n1, n2 = RUNS[workload]
        caller: dict[str, float] = {}
        every: dict[str, float] = {}
        background: dict[str, float] = {}
        spans: dict[str, float] = {}
        # two children at a time (the counts do not depend on what else runs)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            jobs = {(v, n): pool.submit(count, workload, v, n, receiver) for v in VARIANTS for n in (n1, n2)}
        per = n2 - n1
        for v in VARIANTS:
            (a, ma, sa), (b, mb, sb) = jobs[v, n1].result(), jobs[v, n2].result()
            assert len(ma) == len(mb) == (1 if v in BACKGROUND else 0), (v, ma, mb)
            caller[v] = (b.get(1, 0) - a.get(1, 0)) / per
            every[v] = (sum(b.values()) - sum(a.values())) / per
            background[v] = (sum(b[t] for t in mb) - sum(a[t] for t in ma)) / per
            if sb:
                spans[v] = (sb - sa) / per
        print(f"\n== {workload} ({n2 - n1} runs counted): per run")
        print(f"  {'variant':<15} {'caller thread':>14} {'all threads':>14} {'background':>12} "
              f"{'added caller':>13} {'added all':>12} {'vs no-op caller':>16} {'vs no-op all':>13}")
        noop_c, noop_a = caller["noop"] - caller["none"], every["noop"] - every["none"]
        for v in VARIANTS:
            add_c, add_a = caller[v] - caller["none"], every[v] - every["none"]
            ratios = "" if v == "none" else f"{add_c / noop_c:15.2f}x {add_a / noop_a:12.2f}x"
            print(f"  {v:<15} {caller[v]:14,.0f} {every[v]:14,.0f} {background[v]:12,.0f} "
                  f"{add_c:13,.0f} {add_a:12,.0f} {ratios}")
        print("  spans exported per run: " + ", ".join(f"{v} {n:g}" for v, n in spans.items()))
        if background["openinference"]:
            print(f"  OTLP background, tracewire / OpenInference: {background['tracewire-otlp']:,.0f} / "
                  f"{background['openinference']:,.0f} = {background['tracewire-otlp'] / background['openinference']:.2f}x")
    receiver.stop()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    else:
        main()
