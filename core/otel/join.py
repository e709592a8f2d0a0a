"""Joining an active OpenTelemetry span as parent: a tracewire root started inside it becomes its
child, in its trace."""

from __future__ import annotations

from collections.abc import Callable

from tracewire.engine import state
from tracewire.engine.client import Client
from tracewire.model.context import SpanContext


def active_span_parent(is_sampled: Callable[[str], bool]) -> Callable[[], SpanContext | None]:
    """A root parent provider: the active, valid OpenTelemetry span (if any) as a tracewire
    parent, so a tracewire root span becomes its child in the same trace. `is_sampled`: the
    client's sampling, which still decides for its own records."""
    from opentelemetry import trace as otel_trace

    get_current_span = otel_trace.get_current_span

    def provider() -> SpanContext | None:
        ctx = get_current_span().get_span_context()
        if not ctx.is_valid:
            return None
        trace_id = f"{ctx.trace_id:032x}"
        return SpanContext(trace_id, f"{ctx.span_id:016x}", is_sampled(trace_id))

    return provider


def join_active_span(client: Client | None = None) -> None:
    """Make tracewire traces started inside an active OpenTelemetry span join that trace as its
    children. Installed automatically when the `otlp` sink is configured; call it yourself to
    get the same with other sinks (needs `opentelemetry-api`, e.g. `tracewire[otel]`)."""
    try:
        import opentelemetry.trace  # noqa: F401
    except ImportError as exc:
        raise ImportError("tracewire.otel needs opentelemetry: pip install 'tracewire[otel]'") from exc
    if client is None:
        client = state.client or state.get_client()
    client.set_root_parent(active_span_parent(client.is_sampled))
