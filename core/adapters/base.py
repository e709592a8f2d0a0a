"""The one shape every framework adapter has: a missing framework is a clear error naming the pip
extra; `install()` / `uninstall()` are idempotent and thread-safe; a hook's failure is counted,
never raised into the framework."""

from __future__ import annotations

import importlib
import threading
from types import ModuleType
from typing import Any, ClassVar, TypeVar

from tracewire.engine import state
from tracewire.engine.client import Client

A = TypeVar("A", bound="Adapter")


class DidNotEnable(ImportError):
    """The framework an adapter records is not installed (the message names the extra)."""


def require(module: str, extra: str) -> ModuleType:
    """Import `module` for the adapter of pip extra `extra`, or raise DidNotEnable naming it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DidNotEnable(
            f"tracewire.integrations.{extra} needs {module.split('.')[0]}: pip install 'tracewire[{extra}]'"
        ) from exc


def hook_failed(framework: str, where: str, exc: BaseException, client: Client | None = None) -> None:
    """Count a hook's own failure on `client` (the process-wide one by default), in
    `stats()["internal_errors"]`. Never raises: called from inside a framework's callbacks."""
    try:
        (client or state.client or state.get_client()).report_error(f"{framework}:{where}", exc)
    except Exception:  # noqa: BLE001
        pass


class Adapter:
    """A framework hookup installed once per process. A subclass names its `framework`, attaches
    its hooks in `setup()` and detaches them in `teardown()`; `install()` returns the one
    installed instance, so calling it twice records every run once."""

    framework: ClassVar[str]
    _lock: ClassVar[threading.Lock] = threading.Lock()
    _installed: ClassVar[dict[type[Adapter], Adapter]] = {}

    def setup(self) -> None:
        raise NotImplementedError

    def teardown(self) -> None:
        """Detach the hooks; spans still open are closed as unfinished."""

    def failed(self, where: str, exc: BaseException) -> None:
        hook_failed(self.framework, where, exc)

    @classmethod
    def install(cls: type[A], *args: Any, **options: Any) -> A:
        with Adapter._lock:
            current = Adapter._installed.get(cls)
            if current is None:
                current = cls(*args, **options)
                current.setup()
                Adapter._installed[cls] = current
            return current  # type: ignore[return-value]

    @classmethod
    def uninstall(cls) -> None:
        with Adapter._lock:
            current = Adapter._installed.pop(cls, None)
        if current is not None:
            current.teardown()

    @classmethod
    def installed(cls: type[A]) -> A | None:
        return Adapter._installed.get(cls)  # type: ignore[return-value]
