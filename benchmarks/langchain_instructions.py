"""What TracewireCallbackHandler adds to a LangChain run, in instructions, next to a no-op handler.

The same workloads and variants as `langchain_overhead.py`, counted by valgrind's callgrind
instead of timed: the count is the same from one run to the next and does not move with what
else the machine is doing, so the ratio it gives is the code's own, free of this host's
timing noise (and blind to what caches and memory add, which the timed benchmark sees).

Each variant runs in a child process under callgrind twice, with N1 and N2 runs; the difference
divided by N2 - N1 is one run's instructions, start-up cancelled out (and the heap left by start-up
is frozen after one warm-up run, so that when the garbage collector's full passes fall does not
decide the figure). Every thread is counted
(LangGraph runs tools, and so their callbacks, on threads of its own), but tracewire's worker is
kept idle (a flush interval of an hour, a batch larger than the run): it is the hot path that is
counted here. The worker's own cost is in `langchain_overhead.py`'s "background worker" line.

Compare two trees within one session, their packages byte-compiled first: the same code counts
20-30k instructions per agent run apart from one session to the next (the interpreter's lookup
caches follow what is imported), about 5% of what tracewire adds.

    python benchmarks/langchain_instructions.py      (needs valgrind; about 20 minutes on a 2-core VM)
"""

from __future__ import annotations

import gc
import glob
import os
import shutil
import subprocess
import sys
import tempfile

RUNS = {"agent": (4, 24), "chain": (20, 120)}
VARIANTS = ("none", "noop", "tracewire")


def child(workload: str, variant: str, n: int) -> None:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import langchain_overhead as lo

    import tracewire
    from tracewire.integrations.langchain import TracewireCallbackHandler

    tracewire.init(sink="sqlite", db=os.path.join(tempfile.mkdtemp(prefix="tw-instr-"), "b.db"),
                   flush_interval=3600, batch_size=10**6, queue_max_events=10**7, queue_max_bytes=2**31)
    handler = {"none": None, "noop": lo.NoopHandler(), "tracewire": TracewireCallbackHandler()}[variant]
    config = {"callbacks": [handler]} if handler is not None else {}
    run = lo.workloads()[workload]
    # One warm-up run, then the heap is frozen: otherwise a full collection of everything imported
    # so far lands in one variant's counted window and not the other's, by ~1% of an agent run.
    run(config)
    # LangGraph runs tools on threads: a forced GIL hand-over every 5 ms of wall-clock time makes
    # the count follow the host's load; with a long interval the threads switch where they block.
    sys.setswitchinterval(1.0)
    gc.collect()
    gc.freeze()
    for _ in range(n):
        run(config)
    os._exit(0)  # no exit flush: the worker's work is not what is counted here


def instructions(workload: str, variant: str, n: int) -> int:
    with tempfile.TemporaryDirectory() as d:
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        subprocess.run(
            ["valgrind", "--tool=callgrind", "--separate-threads=yes", "--fair-sched=yes", f"--callgrind-out-file={d}/out",
             sys.executable, os.path.abspath(__file__), "--child", workload, variant, str(n)],
            check=True, capture_output=True, env=env, timeout=3600,
        )
        total = 0
        for path in glob.glob(f"{d}/out*"):
            with open(path) as f:
                for line in f:
                    if line.startswith(("summary:", "totals:")):
                        total += int(line.split()[1])
                        break
        return total


def main() -> None:
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: nothing to count")
        return
    print(f"python {sys.version.split()[0]}; instructions per run (callgrind, all threads, tracewire's worker idle)")
    for workload, (n1, n2) in RUNS.items():
        per_run = {v: (instructions(workload, v, n2) - instructions(workload, v, n1)) / (n2 - n1) for v in VARIANTS}
        noop = per_run["noop"] - per_run["none"]
        tw = per_run["tracewire"] - per_run["none"]
        print(f"\n== {workload}: none {per_run['none']:,.0f}  no-op {per_run['noop']:,.0f}  "
              f"tracewire {per_run['tracewire']:,.0f}")
        print(f"  added: no-op {noop:,.0f}   tracewire {tw:,.0f}   ratio {tw / noop:.2f}x")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main()
