"""The public adapter API: everything a framework integration may use of tracewire's core.

An integration imports from here (and the shared vocabularies `tracewire.model.attributes` and
`tracewire.model.genai`), never a private name, never another integration. The client's own adapter
methods: `start_span`, `point`, `defer`, `frozen`, `parent_of`, `trace_of`, `is_sampled`,
`count_dropped`, `report_error`, `capture_content`.
"""

from __future__ import annotations

from collections.abc import Callable

from tracewire.adapters.base import Adapter, DidNotEnable, hook_failed, require
from tracewire.adapters.recent import Recent
from tracewire.adapters.registry import ADAPTERS, adapter_class, companion, install_adapter, uninstall_adapter
from tracewire.adapters.runs import ABANDONED, SpanRegistry
from tracewire.engine import client as _engine
from tracewire.engine import state
from tracewire.engine.client import CURRENT, DEFER_UNIT, UNSET, Client, Span, error_info
from tracewire.model.codec import Snapshot, loads, serialize_with
from tracewire.model.content import SIZED, held_size, hold, thaw
from tracewire.model.context import (
    SessionInfo,
    SpanContext,
    add_parent_resolver,
    current_session,
    current_span,
    remove_parent_resolver,
    session_user,
)
from tracewire.model.event import ENVELOPE_BYTES
from tracewire.model.ids import new_span_id, new_trace_id


def active_client() -> Client:
    """The process-wide client (initialised from the environment on first use). A hook that
    cannot afford the call reads `state.client` itself and calls this only when it is None."""
    return state.client or state.get_client()


def at_exit(hook: Callable[[], None]) -> None:
    """Run `hook` once at interpreter exit, before the final flush: for work a framework still
    holds in queues of its own (LiteLLM's async logging worker)."""
    if hook not in _engine.exit_hooks:
        _engine.exit_hooks.append(hook)


__all__ = [
    "Adapter", "DidNotEnable", "require", "hook_failed", "SpanRegistry", "ABANDONED", "Recent",
    "ADAPTERS", "adapter_class", "install_adapter", "uninstall_adapter", "companion",
    "Client", "Span", "SpanContext", "SessionInfo", "UNSET", "CURRENT", "DEFER_UNIT", "ENVELOPE_BYTES",
    "error_info", "session_user", "thaw", "hold", "held_size", "SIZED", "Snapshot", "loads", "serialize_with",
    "current_span", "current_session", "add_parent_resolver", "remove_parent_resolver",
    "new_span_id", "new_trace_id", "active_client", "at_exit", "state",
]
