"""tracewire inside OpenTelemetry: joining an active OpenTelemetry span as parent. (Exporting to
OpenTelemetry is the `otlp` sink's: tracewire.sinks.otlp.)"""

from tracewire.otel.join import active_span_parent, join_active_span

__all__ = ["join_active_span", "active_span_parent"]
