"""Adapters by framework name. An adapter that records through another framework's hooks (CrewAI
makes its LLM calls through LiteLLM) names that adapter here instead of importing its integration:
the integrations stay independent of each other, and who builds on whom is declared in one table.
Like Sentry's integration registry, entries are "module:Class" strings, imported on first use, so
naming an adapter costs nothing until it is installed."""

from __future__ import annotations

import importlib
from typing import Any

from tracewire.adapters.base import Adapter, DidNotEnable

ADAPTERS: dict[str, str] = {
    "litellm": "tracewire.integrations.litellm.hooks:LiteLLMAdapter",
    "crewai": "tracewire.integrations.crewai.hooks:CrewAIAdapter",
}


def adapter_class(name: str) -> type[Adapter]:
    """The Adapter subclass registered as `name`. DidNotEnable when its framework is not installed."""
    target = ADAPTERS.get(name)
    if target is None:
        raise ValueError(f"no adapter named {name!r} (known: {', '.join(sorted(ADAPTERS))})")
    module, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise TypeError(f"{target} is not an Adapter")
    return cls


def install_adapter(name: str, **options: Any) -> Adapter:
    """The process-wide installation of adapter `name` (idempotent, see `Adapter.install`)."""
    return adapter_class(name).install(**options)


def uninstall_adapter(name: str) -> None:
    try:
        cls = adapter_class(name)
    except DidNotEnable:  # its framework is missing: it cannot have been installed
        return
    cls.uninstall()


def companion(name: str, **options: Any) -> Adapter | None:
    """A private instance of adapter `name`, set up with `options`, for an adapter that records
    part of its runs through it (CrewAI: the LiteLLM logger, with its tracker as call owner). Not
    the process-wide installation: the owner tears down exactly what it set up (`teardown()`),
    and a user's own installation stays as it is. None when that framework is not installed."""
    try:
        cls = adapter_class(name)
    except DidNotEnable:
        return None
    adapter = cls(**options)
    adapter.setup()
    return adapter
