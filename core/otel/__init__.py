"""tracewire and OpenTelemetry: the GenAI mapping the `otlp` sink exports with, and joining an
active OpenTelemetry span as parent."""

from tracewire.otel.join import active_span_parent, join_active_span

__all__ = ["join_active_span", "active_span_parent"]
