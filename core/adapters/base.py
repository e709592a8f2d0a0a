"""Guarded framework imports: a missing framework is a clear error naming the pip extra."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"tracewire.integrations.{extra} needs {module.split('.')[0]}: pip install 'tracewire[{extra}]'"
        ) from exc
