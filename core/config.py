"""Configuration: keyword arguments > TRACEWIRE_* environment variables > defaults.

Every setting is one row of `SETTINGS`; the configuration table in docs/configuration.md is generated
from the same rows (`python -m tracewire.config`), so code and docs cannot drift apart.
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tracewire._files import CEILING_ENV, DATA_DIR_NAME, DB_NAME, JSONL_NAME, SPOOL_NAME, find_data_dir


class ConfigError(ValueError):
    """A setting has a value tracewire cannot use; the message names the setting."""


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("true/false, 1/0, yes/no or on/off")


def _int_at_least(low: int) -> Callable[[Any], int]:
    def parse(v: Any) -> int:
        if isinstance(v, bool):
            raise ValueError(f"an integer >= {low}")
        try:
            n = int(v) if not isinstance(v, float) or v.is_integer() else None
        except (TypeError, ValueError):
            n = None
        if n is None or n < low:
            raise ValueError(f"an integer >= {low}")
        return n

    return parse


def _float_in(low: float, high: float = math.inf) -> Callable[[Any], float]:
    def parse(v: Any) -> float:
        try:
            f = float(v)
        except (TypeError, ValueError):
            f = math.nan
        if isinstance(v, bool) or not (low <= f <= high):
            raise ValueError(f"a number from {low} to {high}" if high != math.inf else f"a number >= {low}")
        return f

    return parse


def _choice(*options: str) -> Callable[[Any], str]:
    def parse(v: Any) -> str:
        s = str(v).strip().lower()
        if s not in options:
            raise ValueError("one of " + ", ".join(options))
        return s

    return parse


def _text(v: Any) -> str:
    if not isinstance(v, (str, os.PathLike)) or not str(v).strip():
        raise ValueError("a non-empty string")
    return str(v)


def _path(v: Any) -> str:
    """A file or folder path, made absolute now: it keeps meaning what it meant in the folder the
    app started in (SQLite's `:memory:` and `file:` URIs are kept as they are)."""
    s = _text(v)
    return s if s == ":memory:" or s.startswith("file:") else os.path.abspath(os.path.expanduser(s))


@dataclass(frozen=True)
class InStore:
    """A default inside the nearest store folder (`_files.find_data_dir`), found when the config is
    resolved, not at import: the app may change folders first."""

    name: str

    def __str__(self) -> str:
        return os.path.join(DATA_DIR_NAME, self.name)


def _optional_text(v: Any) -> str | None:
    return None if v is None or v == "" else _text(v)


def _ca_file(v: Any) -> str | None:
    """A readable PEM file of CA certificates, loaded once here so a bad one fails at init."""
    path = _optional_text(v)
    if path is None:
        return None
    if not os.path.isfile(path):
        raise ValueError(f"a PEM file of CA certificates (no such file: {path})")
    import ssl

    try:
        ssl.create_default_context(cafile=path)
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(f"a PEM file of CA certificates ({path}: {exc})") from None
    return path


def _names(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        return tuple(p.strip().lower() for p in v.split(",") if p.strip())
    if isinstance(v, (list, tuple, set, frozenset)) and all(isinstance(p, str) for p in v):
        return tuple(p.lower() for p in v)
    raise ValueError("a comma-separated string or a list of strings")


def _callable_or_path(v: Any) -> Callable[..., Any] | None:
    """A callable, or 'package.module:attribute' naming one (so env vars can set it)."""
    if v is None or v == "":
        return None
    if callable(v):
        return v  # type: ignore[no-any-return]
    if isinstance(v, str) and ":" in v:
        mod, _, attr = v.partition(":")
        try:
            obj = getattr(importlib.import_module(mod), attr)
        except Exception as exc:  # noqa: BLE001 - the message names the setting
            raise ValueError(f"an importable 'module:callable' ({exc})") from None
        if callable(obj):
            return obj  # type: ignore[no-any-return]
    raise ValueError("a callable or a 'module:callable' string")


def _processors(v: Any) -> tuple[Callable[..., Any], ...]:
    items = tuple(v) if isinstance(v, (list, tuple)) else (v,)
    if not all(callable(p) for p in items):
        raise ValueError("a list of callables `event -> event | None`")
    return items


SINK_NAMES = ("sqlite", "jsonl", "memory", "http", "otlp", "none")


def _sinks(v: Any) -> tuple[Any, ...]:
    """Sink names (comma-separated or a list) and/or Sink objects."""
    items = v.split(",") if isinstance(v, str) else v if isinstance(v, (list, tuple)) else [v]
    out: list[Any] = []
    for item in items:
        if isinstance(item, str):
            name = item.strip().lower()
            if name not in SINK_NAMES:
                raise ValueError("sink names from " + ", ".join(SINK_NAMES) + " or tracewire.Sink instances")
            out.append(name)
        elif callable(getattr(item, "write", None)):
            out.append(item)  # a Sink object: `sinks.build_sinks` checks it is a tracewire.Sink
        else:
            raise ValueError("sink names from " + ", ".join(SINK_NAMES) + " or tracewire.Sink instances")
    if not out:
        raise ValueError("at least one sink")
    return tuple(out)


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    parse: Callable[[Any], Any]
    doc: str
    env: bool = True  # settable from TRACEWIRE_<NAME>

    @property
    def env_var(self) -> str | None:
        return f"TRACEWIRE_{self.name.upper()}" if self.env else None


_MIB = 1024 * 1024

SETTINGS: tuple[Setting, ...] = (
    Setting("disabled", False, _bool, "Turn every tracewire call into a cheap no-op."),
    Setting("sink", ("sqlite",), _sinks, "Where events go: `sqlite`, `jsonl`, `memory`, `http`, `otlp`, `none` (comma-separated for several), or Sink objects."),
    Setting("db", InStore(DB_NAME), _path, "SQLite file of the `sqlite` sink and of the CLI. "
            f"Default: in the nearest `{DATA_DIR_NAME}/` folder found walking up from the current directory, "
            "as git finds `.git` (else `./.tracewire/`, made on first write). The walk stops at a filesystem "
            f"boundary, at the home folder and at the folders listed in `{CEILING_ENV}`, and uses only a "
            "folder of yours that already holds a store. A relative path is relative to the current directory."),
    Setting("max_store_bytes", None, lambda v: None if v in (None, "") else _int_at_least(1024 * 1024)(v), "Size cap in bytes (at least 1 MiB) of the `db` file's used pages: past it the `sqlite` sink deletes the oldest whole traces until they are under 90% of it (logged once). Default: no cap; `tracewire prune` deletes by age."),
    Setting("jsonl_path", InStore(JSONL_NAME), _path, "File the `jsonl` sink appends to. Default: in the nearest store folder (see `db`)."),
    Setting("capture_content", True, _bool, "Record inputs and outputs (prompts, messages, tool arguments, results). Off: they are never read."),
    Setting("mask", None, _callable_or_path, "`fn(str) -> str` run on every string of input, output, metadata and error message (or `module:function`)."),
    Setting("redact_keys", (), _names, "Extra key names whose values are always scrubbed (comma-separated; matched as words, any spelling)."),
    Setting("allow_keys", (), _names, "Key names never scrubbed by name, for false positives (comma-separated; any spelling). Value shapes in them are still scrubbed."),
    Setting("max_string_length", 32_768, _int_at_least(64), "Longer strings are cut, keeping the start and noting the original length."),
    Setting("max_event_bytes", 1 * _MIB, _int_at_least(1024), "Largest serialized event; bigger content fields are cut to fit."),
    Setting("sample_rate", 1.0, _float_in(0.0, 1.0), "Fraction of traces recorded; a trace is kept or dropped whole."),
    Setting("batch_size", 512, _int_at_least(1), "Most events the worker hands a sink at once."),
    Setting("batch_bytes", 4 * _MIB, _int_at_least(1024), "Most serialized bytes in one batch."),
    Setting("flush_interval", 0.2, _float_in(0.001, 3600.0), "Seconds the worker waits before writing a partial batch."),
    Setting("queue_max_events", 100_000, _int_at_least(1), "Queue limit in events."),
    Setting("queue_max_bytes", 64 * _MIB, _int_at_least(1024), "Queue limit in (estimated) bytes."),
    Setting("queue_full_policy", "drop_newest", _choice("drop_newest", "drop_oldest", "spool"), "What happens to an event that does not fit: `drop_newest` refuses it, `drop_oldest` evicts the oldest queued event (either way counted in `stats()['dropped']`); `spool` commits it to the `http` sink's disk spool on the caller's thread instead (drop_newest without one)."),
    Setting("exit_flush_timeout", 2.0, _float_in(0.0, 600.0), "Seconds the exit hook spends flushing; a stuck sink cannot hold exit longer."),
    Setting("service_name", "tracewire-app", _text, "Service name reported with exported spans."),
    Setting("processors", (), _processors, "Extra `event -> event | None` callables run after the built-in ones (keyword only).", env=False),
    # delivery to a collector (`http` sink) and the durable local spool
    Setting("endpoint", None, _optional_text, "Collector base URL for the `http` sink, e.g. `https://collector:4319`; set without `sink`, it makes `http` the sink."),
    Setting("api_key", None, _optional_text, "API key for the collector (sent as `Authorization: Bearer`; never logged)."),
    Setting("signing_key", None, _optional_text, "Signing secret for the collector's HMAC-SHA256 batch signatures."),
    Setting("spool_dir", InStore(SPOOL_NAME), _path, "Directory of the durable local spool (outbox). Default: in the nearest store folder (see `db`)."),
    Setting("spool_max_bytes", 1024 * _MIB, _int_at_least(1024 * 1024), "Spool size cap."),
    Setting("spool_full_policy", "drop_newest", _choice("drop_newest", "drop_oldest"), "What happens at the spool cap (counted in `stats()`)."),
    Setting("durable", False, _bool, "Commit each event to the spool before `record()` returns (loses nothing on kill -9, slower)."),
    Setting("commit_interval", 0.02, _float_in(0.001, 60.0), "Seconds between spool commits (bounds what a kill -9 can lose)."),
    Setting("http_timeout", 10.0, _float_in(0.1, 600.0), "Seconds per request to the collector."),
    Setting("verify_tls", True, _bool, "Verify the collector's TLS certificate."),
    Setting("ca_file", None, _ca_file, "PEM file of CA certificates to trust for the collector's TLS certificate (a private CA or a self-signed certificate), in addition to the system's."),
    Setting("retry_max_backoff", 30.0, _float_in(0.01, 3600.0), "Longest wait (seconds) between resends to an unreachable or failing collector (full-jitter exponential backoff)."),
    # OpenTelemetry export (`otlp` sink); OTEL_EXPORTER_OTLP_* variables and OTEL_SDK_DISABLED are honoured too
    Setting("otlp_endpoint", None, _optional_text, "OTLP endpoint (else `OTEL_EXPORTER_OTLP_ENDPOINT`)."),
    Setting("otlp_protocol", None, lambda v: None if v in (None, "") else _choice("http/protobuf", "grpc")(v), "`http/protobuf` or `grpc` (else `OTEL_EXPORTER_OTLP_PROTOCOL`, default http/protobuf)."),
    Setting("otlp_headers", None, _optional_text, "Extra OTLP headers `k=v,k2=v2` (else `OTEL_EXPORTER_OTLP_HEADERS`)."),
    Setting("otlp_timeout", None, lambda v: None if v in (None, "") else _float_in(0.1, 600.0)(v), "OTLP export timeout in seconds (else `OTEL_EXPORTER_OTLP_TIMEOUT`)."),
    Setting("otlp_capture_content", None, lambda v: None if v in (None, "") else _bool(v), "Export content (messages, tool arguments and results, input/output values) over OTLP; opt-in as in the GenAI conventions (else `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`, default off). Never with `capture_content` off."),
)
SETTINGS_BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class Config:
    values: Mapping[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    @classmethod
    def resolve(cls, kwargs: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Config:
        env = os.environ if environ is None else environ
        unknown = set(kwargs) - set(SETTINGS_BY_NAME)
        if unknown:
            raise ConfigError(
                f"tracewire.init: unknown setting(s) {', '.join(sorted(unknown))}; "
                f"known settings: {', '.join(SETTINGS_BY_NAME)}"
            )
        values: dict[str, Any] = {}
        for s in SETTINGS:
            values[s.name] = _value(s, kwargs, env)
        if values["endpoint"] and "sink" not in kwargs and "TRACEWIRE_SINK" not in env:
            values["sink"] = ("http",)  # an endpoint alone means: deliver to that collector
        return cls(values)


def _value(s: Setting, kwargs: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    if s.name in kwargs:
        raw, source = kwargs[s.name], f"{s.name}="
    elif s.env_var and s.env_var in env:
        raw, source = env[s.env_var], s.env_var
    elif isinstance(s.default, InStore):
        return os.path.join(find_data_dir(), s.default.name)  # a few stat calls, once per setting
    else:
        return s.default
    try:
        return s.parse(raw)
    except ValueError as exc:
        from tracewire._dsn import redact_dsn  # a bad endpoint URL may hold a password

        raise ConfigError(
            f"tracewire: invalid value {redact_dsn(repr(raw))} for setting '{s.name}' (from {source}); "
            f"expected {exc}"
        ) from None


def setting(name: str, given: Any = None, environ: Mapping[str, str] | None = None) -> Any:
    """One setting as `Config.resolve` would make it (`given`, else TRACEWIRE_<NAME>, else the
    default), without the others: `setting("db", args.db)` is the store the CLI reads, absolute."""
    return _value(SETTINGS_BY_NAME[name], {} if given is None else {name: given},
                  os.environ if environ is None else environ)


def otel_sdk_disabled(environ: Mapping[str, str] | None = None) -> bool:
    """`OTEL_SDK_DISABLED=true`, read as the OpenTelemetry SDK reads it: the `otlp` sink then
    exports nothing, and `tracewire doctor` says so."""
    env = os.environ if environ is None else environ
    return env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def markdown_table() -> str:
    rows = ["| setting | environment variable | default | meaning |", "|---|---|---|---|"]
    for s in SETTINGS:
        default = ",".join(s.default) if isinstance(s.default, tuple) else s.default
        shown = f"`{default!s}`" if default != "" else "—"
        rows.append(f"| `{s.name}` | {f'`{s.env_var}`' if s.env_var else '—'} | {shown} | {s.doc} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
