"""Joining an active OpenTelemetry span as parent: a tracewire root started inside it becomes its
child, in its trace."""

from __future__ import annotations

from tracewire.engine import state
from tracewire.engine.client import Client
from tracewire.sinks.otlp_mapping import active_span_parent


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
