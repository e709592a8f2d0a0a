"""Fill a local SQLite store with realistic agent traces at scale, for the viewer's benchmarks.

    python benchmarks/ui_store_gen.py                       # 100,000 traces (≥ 1.5 million events)
    python benchmarks/ui_store_gen.py --traces 2000 --db /tmp/small.db --force

Writes through the `sqlite` sink's own table code (schema, connection, multi-row INSERT), in large
transactions. Traces are chat agents (model / tools loops), RAG chains with retrieved documents and
single LLM calls, spread over the last 30 days, grouped into sessions of several turns by a few
thousand users, with tags, several models (cost from the price table), about 6% failing (a tool
timeout or a rate-limited model call, with a stack), and prompts made of searchable words: each trace
also carries an order reference (`ord-XXXXXX`) that appears in exactly one prompt. Deterministic for
a given --seed. An existing store that already holds the requested traces is kept as it is (--force
rebuilds it).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Iterator
from typing import Any

from tracewire.model import attributes as A
from tracewire.model.codec import dumps_strict
from tracewire.model.event import SCHEMA
from tracewire.model.ids import new_event_id, new_trace_id
from tracewire.model.pricing import cost_usd
from tracewire.sinks.sqlite_table import INSERT_HEAD, connect, event_row, insert_rows

DEFAULT_DB = os.path.join("build", "ui-store", "tracewire.db")
TRACES_PER_TRANSACTION = 2_000
DAY_NS = 86_400 * 10**9

MODELS = ("gpt-4o-mini", "gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet", "claude-3-5-haiku", "gemini-2.0-flash")
PROVIDERS = {"gpt": "openai", "cla": "anthropic", "gem": "google"}
CITIES = ("Oslo", "Lisbon", "Nairobi", "Osaka", "Lima", "Toronto", "Hanoi", "Tbilisi", "Porto", "Quito")
TOPICS = ("refund", "invoice", "shipping", "password", "warranty", "subscription", "delivery", "upgrade",
          "cancellation", "discount", "billing", "account", "battery", "firmware", "charger", "installation")
PRODUCTS = ("kettle", "router", "headphones", "thermostat", "bicycle", "blender", "monitor", "backpack",
            "camera", "printer", "keyboard", "lamp", "scooter", "drone", "speaker", "watch")
ASKS = ("Where is my {p} order {ref}? It was meant to reach {c} by {d}.",
        "Can I get a {t} for the {p} from order {ref}? It stopped working in {c}.",
        "My {p} ({ref}) shows an error about {t}; what should I do?",
        "How long does {t} take for a {p} shipped to {c}? Order {ref}.",
        "Please explain the {t} policy for the {p} I bought, reference {ref}.")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
TOOLS = {"lookup_order": "Find an order by its reference.", "get_weather": "Current weather for a city.",
         "search_kb": "Search the help-centre articles.", "create_ticket": "Open a support ticket.",
         "check_stock": "Stock level of a product in a warehouse."}
TAGS = ("prod", "beta", "eval", "mobile", "web", "priority")
SYSTEM = "You are a helpful support agent for an online shop. Use the tools; answer briefly and politely."


class TraceBuilder:
    """The events of one trace, as the pipeline would have written them (envelope fields in order)."""

    def __init__(self, rng: random.Random, start_ns: int, session: str, user: str, tags: list[str],
                 framework: str) -> None:
        self.rng = rng
        self.now = start_ns
        self.trace_id = new_trace_id(start_ns)
        self.session, self.user, self.tags, self.framework = session, user, tags, framework
        self.events: list[dict[str, Any]] = []
        self.seq = 0

    def _event(self, kind: str, phase: str, span_id: str, parent: str | None, name: str,
               attributes: dict[str, Any], **content: Any) -> None:
        self.seq += 1
        ev: dict[str, Any] = {
            "id": new_event_id(self.now), "schema": SCHEMA, "type": f"{kind}.{phase}", "kind": kind, "phase": phase,
            "trace_id": self.trace_id, "span_id": span_id, "parent_span_id": parent, "session_id": self.session,
            "user_id": self.user, "name": name, "framework": self.framework, "time": self.now, "seq": self.seq,
            "attributes": attributes, "error": content.pop("error", None),
            "tags": self.tags if parent is None else [], "metadata": content.pop("metadata", None),
        }
        ev.update(content)
        self.events.append(ev)

    def start(self, kind: str, name: str, parent: str | None, input: Any, attributes: dict[str, Any] | None = None,
              metadata: dict[str, Any] | None = None) -> str:
        span_id = f"{self.rng.getrandbits(64) or 1:016x}"
        self._event(kind, "start", span_id, parent, name, attributes or {}, input=input, metadata=metadata)
        return span_id

    def end(self, kind: str, name: str, span_id: str, parent: str | None, output: Any,
            attributes: dict[str, Any] | None = None) -> None:
        self._event(kind, "end", span_id, parent, name, attributes or {}, output=output)

    def fail(self, kind: str, name: str, span_id: str, parent: str | None, error: dict[str, Any]) -> None:
        self._event(kind, "error", span_id, parent, name, {}, error=error)

    def point(self, etype: str, parent: str, **content: Any) -> None:
        self._event(etype.split(".")[0], "point", f"{self.rng.getrandbits(64) or 1:016x}", parent, etype, {},
                    **content)
        self.events[-1]["type"] = etype

    def wait(self, ms: float) -> None:
        self.now += int(ms * 1e6)


def _stack(rng: random.Random, exc: str, where: str) -> str:
    frames = "".join(f'  File "/srv/app/{m}.py", line {rng.randint(10, 400)}, in {f}\n'
                     for m, f in (("agent", "run"), ("tools", where), ("clients/http", "request")))
    return f"Traceback (most recent call last):\n{frames}{exc}"


def _llm(b: TraceBuilder, parent: str | None, model: str, messages: list[dict[str, Any]], reply: dict[str, Any],
         fail: bool = False) -> bool:
    rng = b.rng
    attrs = {A.OPERATION_NAME: "chat", A.PROVIDER_NAME: PROVIDERS[model[:3]], A.REQUEST_MODEL: model,
             A.REQUEST_TEMPERATURE: 0.2}
    sid = b.start("llm", f"chat {model}", parent, messages, attrs)
    if fail:
        b.wait(rng.uniform(50, 400))
        b.fail("llm", f"chat {model}", sid, parent, {
            "type": "RateLimitError", "message": f"429: rate limit reached for {model}; retry after 20s",
            "stacktrace": _stack(rng, "RateLimitError: 429", "complete")})
        return False
    tin = sum(len(str(m.get("content") or "")) for m in messages) // 4 + rng.randint(80, 400)
    tout = rng.randint(8, 220)
    b.wait(rng.lognormvariate(6.3, 0.6))  # ~550 ms median, a long tail
    usage = {A.RESPONSE_MODEL: model, A.USAGE_INPUT_TOKENS: tin, A.USAGE_OUTPUT_TOKENS: tout,
             A.USAGE_TOTAL_TOKENS: tin + tout, A.RESPONSE_FINISH_REASONS: ["tool_calls" if reply.get("tool_calls") else "stop"]}
    cost = cost_usd(model, tin, tout)
    if cost is not None:
        usage[A.COST_USD] = cost
    b.end("llm", f"chat {model}", sid, parent, reply, usage)
    return True


def _tool(b: TraceBuilder, parent: str, name: str, args: dict[str, Any], result: str, fail: bool) -> bool:
    rng = b.rng
    sid = b.start("tool", name, parent, args, {A.TOOL_NAME: name, A.TOOL_DESCRIPTION: TOOLS[name],
                                              A.TOOL_CALL_ID: f"call_{rng.getrandbits(40):010x}"})
    b.wait(rng.lognormvariate(4.5, 0.8))  # ~90 ms
    if fail:
        b.wait(5000)
        b.fail("tool", name, sid, parent, {"type": "TimeoutError", "message": f"{name} did not answer within 5 s",
                                           "stacktrace": _stack(rng, "TimeoutError: timed out", name)})
        return False
    b.end("tool", name, sid, parent, result)
    return True


def chat_agent(b: TraceBuilder, question: str, model: str, failure: str | None) -> None:
    """A tool-calling agent: model → tools → model …, as LangGraph's `create_agent` records it."""
    rng = b.rng
    root = b.start("agent", "support_agent", None, {"messages": [{"role": "user", "content": question}]},
                   {A.AGENT_NAME: "support_agent"}, metadata={"thread_id": b.session})
    b.point("user.input", root, input=question)
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
    loops = rng.choice((1, 1, 2, 2, 3))
    for step in range(loops):
        node = b.start("chain", "model", root, {"messages": messages[1:]}, {A.NODE: "model", A.STEP: 2 * step + 1})
        names = rng.sample(sorted(TOOLS), rng.choice((1, 1, 2)))
        calls = [{"id": f"call_{rng.getrandbits(40):010x}", "name": n, "arguments": {"query": question[:40]}}
                 for n in names]
        reply = {"role": "assistant", "content": "", "tool_calls": calls}
        if not _llm(b, node, model, list(messages), reply, fail=failure == "llm" and step == loops - 1):
            b.fail("chain", "model", node, root, {"type": "RateLimitError", "message": "429: rate limit reached"})
            b.fail("agent", "support_agent", root, None, {"type": "RateLimitError", "message": "429: rate limit reached"})
            return
        b.end("chain", "model", node, root, {"messages": [reply]})
        messages.append(reply)
        tools = b.start("chain", "tools", root, calls, {A.NODE: "tools", A.STEP: 2 * step + 2})
        for call in calls:
            result = f"{call['name']}: found {rng.randint(1, 9)} matching records for {rng.choice(PRODUCTS)}"
            if not _tool(b, tools, call["name"], call["arguments"], result, fail=failure == "tool" and step == loops - 1):
                err = {"type": "TimeoutError", "message": f"{call['name']} did not answer within 5 s"}
                b.fail("chain", "tools", tools, root, err)
                b.fail("agent", "support_agent", root, None, err)
                return
            messages.append({"role": "tool", "content": result, "tool_call_id": call["id"], "name": call["name"]})
        b.end("chain", "tools", tools, root, {"messages": messages[-len(calls):]})
    node = b.start("chain", "model", root, {"messages": messages[1:]}, {A.NODE: "model", A.STEP: 2 * loops + 1})
    answer = {"role": "assistant", "content": f"Thanks for waiting. Your {rng.choice(PRODUCTS)} is covered; "
                                              f"I have opened a {rng.choice(TOPICS)} request for you."}
    _llm(b, node, model, list(messages), answer)
    b.end("chain", "model", node, root, {"messages": [answer]})
    b.point("agent.response", root, output=answer["content"])
    b.end("agent", "support_agent", root, None, {"messages": [*messages[1:], answer]})


def rag_chain(b: TraceBuilder, question: str, model: str, failure: str | None) -> None:
    """Retrieve help articles with scores, then answer from them."""
    rng = b.rng
    root = b.start("chain", "answer_from_docs", None, {"question": question})
    ret = b.start("retriever", "help_centre", root, question, {A.DATA_SOURCE_ID: "kb-v3"})
    b.wait(rng.lognormvariate(3.5, 0.5))
    docs = [{"id": f"kb-{rng.randint(1, 5000)}", "score": round(rng.uniform(0.55, 0.95), 3),
             "content": f"Article about {rng.choice(TOPICS)} for {rng.choice(PRODUCTS)}: steps, limits and contacts.",
             "metadata": {"section": rng.choice(TOPICS)}} for _ in range(rng.randint(2, 5))]
    b.end("retriever", "help_centre", ret, root, docs, {A.DOCUMENT_COUNT: len(docs)})
    messages = [{"role": "system", "content": SYSTEM + " Answer only from the articles."},
                {"role": "user", "content": question + "\n\nArticles:\n" + "\n".join(d["content"] for d in docs)}]
    answer = {"role": "assistant", "content": f"According to article {docs[0]['id']}, {rng.choice(TOPICS)} takes "
                                              f"{rng.randint(2, 14)} days."}
    if not _llm(b, root, model, messages, answer, fail=failure is not None):
        b.fail("chain", "answer_from_docs", root, None, {"type": "RateLimitError", "message": "429: rate limit reached"})
        return
    b.end("chain", "answer_from_docs", root, None, answer["content"])


def single_call(b: TraceBuilder, question: str, model: str, failure: str | None) -> None:
    """One LLM call on its own (a LiteLLM completion): a root llm span."""
    messages = [{"role": "system", "content": "Classify the customer's message."}, {"role": "user", "content": question}]
    _llm(b, None, model, messages, {"role": "assistant", "content": b.rng.choice(TOPICS)}, fail=failure is not None)


SHAPES = ((chat_agent, "langchain", 0.7), (rag_chain, "llamaindex", 0.2), (single_call, "litellm", 0.1))


def traces(n: int, seed: int, now_ns: int) -> Iterator[list[dict[str, Any]]]:
    """`n` traces' events, oldest first, over the 30 days before `now_ns`."""
    rng = random.Random(seed)
    users = [f"user-{i:05d}" for i in range(max(1, n // 50))]
    shapes = [s[:2] for s in SHAPES]
    weights = [s[2] for s in SHAPES]
    t = now_ns - 30 * DAY_NS
    step = 30 * DAY_NS // max(1, n)
    session: tuple[str, str, list[str]] | None = None
    left = 0
    for i in range(n):
        if left == 0:  # a new conversation: a few turns by one user
            user = rng.choice(users)
            session = (f"sess-{rng.getrandbits(48):012x}", user, rng.sample(TAGS, rng.randint(0, 2)))
            left = rng.choice((1, 2, 3, 4, 5, 8))
        left -= 1
        assert session is not None
        t += rng.randint(step // 2, step * 3 // 2)
        shape, framework = rng.choices(shapes, weights)[0]
        b = TraceBuilder(rng, t, session[0], session[1], session[2], framework)
        question = rng.choice(ASKS).format(p=rng.choice(PRODUCTS), t=rng.choice(TOPICS), c=rng.choice(CITIES),
                                           d=rng.choice(DAYS), ref=f"ord-{i:06d}")
        roll = rng.random()
        failure = "tool" if roll < 0.04 else ("llm" if roll < 0.06 else None)
        shape(b, question, rng.choice(MODELS), failure)
        yield b.events


def generate(db: str, n: int, seed: int) -> tuple[int, int, float]:
    """(traces, events, seconds) written to `db`."""
    conn = connect(db)
    conn.execute("PRAGMA synchronous=OFF")  # a store being built: a crash means building it again
    started = time.perf_counter()
    events = 0
    batch: list[tuple[Any, ...]] = []
    done = 0
    for trace in traces(n, seed, time.time_ns()):
        batch.extend(event_row(e, dumps_strict(e)) for e in trace)
        done += 1
        if done % TRACES_PER_TRANSACTION == 0 or done == n:
            conn.execute("BEGIN")
            insert_rows(conn, INSERT_HEAD, batch)
            conn.execute("COMMIT")
            events += len(batch)
            batch = []
            if done % (TRACES_PER_TRANSACTION * 10) == 0:
                print(f"  {done:,} traces, {events:,} events, {time.perf_counter() - started:.0f} s", file=sys.stderr)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("ANALYZE")
    conn.close()
    return done, events, time.perf_counter() - started


def _count(db: str) -> tuple[int, int]:
    conn = connect(db, readonly=True)
    try:
        traces_n = conn.execute("SELECT COUNT(DISTINCT trace_id) FROM events").fetchone()[0]
        return int(traces_n), int(conn.execute("SELECT MAX(seq_no) FROM events").fetchone()[0] or 0)
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", default=DEFAULT_DB, help=f"store to fill (default: {DEFAULT_DB})")
    p.add_argument("--traces", type=int, default=100_000, help="traces to write (default: 100,000)")
    p.add_argument("--seed", type=int, default=7, help="random seed: the same seed writes the same content")
    p.add_argument("--force", action="store_true", help="rebuild the store even if it already holds enough traces")
    args = p.parse_args(argv)
    if os.path.exists(args.db):
        if not args.force:
            have, events = _count(args.db)
            if have >= args.traces:
                print(f"{args.db}: already holds {have:,} traces, {events:,} events (--force rebuilds it)")
                return 0
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(args.db + suffix):
                os.remove(args.db + suffix)
    n, events, seconds = generate(args.db, args.traces, args.seed)
    size = os.path.getsize(args.db)
    print(f"{args.db}: {n:,} traces, {events:,} events ({events / max(n, 1):.1f} per trace), "
          f"{size / 2**20:,.0f} MiB, written in {seconds:.0f} s ({events / seconds:,.0f} events/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
