"""What TracewireCallbackHandler adds to a LangChain / LangGraph run, next to a no-op handler.

Two workloads, offline (a scripted chat model at the model boundary):
  agent  `langchain.agents.create_agent`: 2 LLM calls + 1 tool call (7 LangChain runs)
  chain  a 3-step LCEL chain: prompt | chat model | output parser (4 runs)

Three variants run interleaved in one process (the order rotates every round, so drift and
noise from neighbours hit them alike):
  none       no callbacks
  noop       a BaseCallbackHandler whose hooks do nothing (on_chat_model_start included, so
             LangChain's NotImplementedError fallback does not inflate the floor)
  tracewire  TracewireCallbackHandler, content capture on, default SQLite sink (a temp file)

Per run it takes the caller thread's CPU time (the time the user's run pays: tracewire's hot
path all happens there) and the wall time. "Added" = the median, over rounds, of
(variant - none) within the same round.
tracewire's worker thread (pipeline + SQLite writes) runs in the background; its CPU per run is
measured separately on that thread's own CPU clock, with a flush, and printed too (per run and
per event, the unit `core_bench.py` prints the host's floor in).

The tail: the worker shares the GIL with the run, so what it costs the app shows in the slowest
runs, not the median. The p50 and p99 of a run's wall time are printed for each variant, from the
same interleaved rounds (the worker active, default settings), with tracewire's p99 over none's.

    python benchmarks/langchain_overhead.py [rounds]      # default 1000 (a run's median then moves by a few percent, not tens)
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

from langchain.agents import create_agent
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool

import tracewire
from tracewire.integrations.langchain import TracewireCallbackHandler


class ChatBench(BaseChatModel):
    """Tool call when the last message is the user's, a final answer after a tool result."""

    model_name: str = "gpt-4o-mini"

    @property
    def _llm_type(self) -> str:
        return "bench"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ChatBench:
        return self

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        usage = {"input_tokens": 40, "output_tokens": 12, "total_tokens": 52}
        if messages[-1].type == "human" and messages[-1].content == "weather in Paris?":
            msg = AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1"}],
                            usage_metadata=usage)
        else:
            msg = AIMessage("It is sunny in Paris.", usage_metadata=usage)
        return ChatResult(generations=[ChatGeneration(message=msg)])


class NoopHandler(BaseCallbackHandler):
    run_inline = True

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        pass


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"sunny in {city}"


def workloads() -> dict[str, Callable[[dict[str, Any]], Any]]:
    agent = create_agent(ChatBench(), tools=[get_weather])
    chain = ChatPromptTemplate.from_messages([("system", "Be brief."), ("user", "{q}")]) | ChatBench() | StrOutputParser()
    agent_input = {"messages": [("user", "weather in Paris?")]}
    return {
        "agent": lambda config: agent.invoke(agent_input, config=config),
        "chain": lambda config: chain.invoke({"q": "hello"}, config=config),
    }


def measure(run: Callable[[dict[str, Any]], Any], configs: dict[str, dict[str, Any]], rounds: int
            ) -> dict[str, tuple[list[int], list[int]]]:
    samples: dict[str, tuple[list[int], list[int]]] = {name: ([], []) for name in configs}
    names = list(configs)
    for name in names * 20:  # warm-up: imports, caches, the SQLite file
        run(configs[name])
    gc.collect()
    for i in range(rounds):
        order = names[i % len(names):] + names[:i % len(names)]
        for name in order:
            config = configs[name]
            c0, w0 = time.thread_time_ns(), time.perf_counter_ns()
            run(config)
            w1, c1 = time.perf_counter_ns(), time.thread_time_ns()
            samples[name][0].append(c1 - c0)
            samples[name][1].append(w1 - w0)
    return samples


def added(samples: dict[str, tuple[list[int], list[int]]], variant: str, idx: int) -> float:
    """Median over rounds of (variant - none) in the same round: paired, so drift cancels."""
    return statistics.median(v - n for v, n in zip(samples[variant][idx], samples["none"][idx], strict=True)) / 1000


def percentile(samples: list[int], q: float) -> float:
    """The q-quantile of samples in ns, in µs (nearest rank)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


def worker_cpu_per_run(run: Callable[[dict[str, Any]], Any], config: dict[str, Any], n: int) -> tuple[float, float]:
    """Background delivery cost: the CPU clock of tracewire's worker thread over n runs + flush
    (not the process minus the caller: LangGraph runs tools on threads of its own), in µs per
    run and per event written."""
    tracewire.flush()
    client = tracewire.get_client()
    worker = client._worker
    assert worker.ident is not None
    clock = time.pthread_getcpuclockid(worker.ident)
    written = client.stats()["written"]
    w0 = time.clock_gettime_ns(clock)
    for _ in range(n):
        run(config)
    tracewire.flush()
    cpu = (time.clock_gettime_ns(clock) - w0) / 1000
    return cpu / n, cpu / max(1, client.stats()["written"] - written)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    tmp = tempfile.mkdtemp(prefix="tw-bench-")
    db = os.path.join(tmp, "bench.db")
    tracewire.init(sink="sqlite", db=db)
    client = tracewire.get_client()
    sink_names = ", ".join(getattr(s, "name", type(s).__name__) for s in client.sinks)
    configs = {
        "none": {},
        "noop": {"callbacks": [NoopHandler()]},
        "tracewire": {"callbacks": [TracewireCallbackHandler()]},
    }
    print(f"tracewire {tracewire.__version__}, sink: {sink_names}, capture_content={client.capture_content}, "
          f"python {sys.version.split()[0]}, {rounds} interleaved rounds")
    for workload, run in workloads().items():
        samples = measure(run, configs, rounds)
        worker, per_event = worker_cpu_per_run(run, configs["tracewire"], max(50, rounds // 4))
        print(f"\n== {workload}: per run, µs (caller-thread CPU | wall)")
        for k in configs:
            print(f"  {k:<10} median {statistics.median(samples[k][0]) / 1000:9.1f} | "
                  f"{statistics.median(samples[k][1]) / 1000:9.1f}")
        for label, idx in (("CPU ", 0), ("wall", 1)):
            noop_added = added(samples, "noop", idx)
            tw_added = added(samples, "tracewire", idx)
            ratio = tw_added / noop_added if noop_added > 0 else float("inf")
            print(f"  added ({label}): no-op {noop_added:8.1f} µs   tracewire {tw_added:8.1f} µs   ratio {ratio:5.2f}x")
        print(f"  tracewire background worker (pipeline + {sink_names}): {worker:.1f} µs CPU per run "
              f"({per_event:.1f} µs per event), off the run's path")
        walls = {k: samples[k][1] for k in configs}
        print("  wall per run, µs: " + "   ".join(
            f"{k} p50 {percentile(v, 0.5):.0f} p99 {percentile(v, 0.99):.0f}" for k, v in walls.items()))
        p99 = percentile(walls["tracewire"], 0.99) / percentile(walls["none"], 0.99)
        print(f"  tail: tracewire p99 / none p99 = {p99:.2f}x (the worker active, default settings)")
    stats = tracewire.stats()
    tracewire.shutdown()
    print(f"\nevents emitted {stats['emitted']}, written {stats['written']}, dropped {stats['dropped']}, "
          f"internal errors {stats['internal_errors']}")


if __name__ == "__main__":
    main()
