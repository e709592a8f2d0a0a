"""Sinks by name. Each factory imports its module only when that sink is configured, so
`import tracewire` stays light and optional dependencies stay optional."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracewire.config import Config
    from tracewire.sinks.base import Sink

# name -> (module, factory function taking the Config)
_FACTORIES: dict[str, tuple[str, str]] = {
    "sqlite": ("tracewire.sinks.sqlite", "from_config"),
    "jsonl": ("tracewire.sinks.jsonl", "from_config"),
    "memory": ("tracewire.sinks.memory", "from_config"),
    "http": ("tracewire.sinks.http", "from_config"),
    "otlp": ("tracewire.sinks.otlp", "from_config"),
}


def create(name: str, config: Config) -> Sink:
    from tracewire.config import ConfigError

    try:
        module, fn = _FACTORIES[name]
    except KeyError:
        raise ConfigError(f"tracewire: unknown sink '{name}' (setting 'sink'); known: {', '.join(_FACTORIES)}") from None
    try:
        factory: Any = getattr(importlib.import_module(module), fn)
    except ImportError as exc:
        raise ConfigError(f"tracewire: sink '{name}' is not available: {exc} (setting 'sink')") from None
    return factory(config)  # type: ignore[no-any-return]


def build_sinks(config: Config) -> list[Sink]:
    """The configured sinks: names made into sinks, Sink objects as given."""
    from tracewire.config import ConfigError
    from tracewire.sinks.base import Sink

    sinks: list[Sink] = []
    for spec in config.sink:
        if isinstance(spec, str):
            if spec != "none":
                sinks.append(create(spec, config))
        elif isinstance(spec, Sink):
            sinks.append(spec)
        else:
            raise ConfigError(f"tracewire: invalid value for setting 'sink': {type(spec).__name__} is not a "
                              "tracewire.Sink (subclass it, or name a built-in sink)")
    return sinks
