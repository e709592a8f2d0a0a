"""The one shape every framework adapter has: a missing framework is a clear error naming the pip
extra; `install()` / `uninstall()` are idempotent and thread-safe; a hook's failure is counted,
never raised into the framework."""

from __future__ import annotations

import importlib
import importlib.metadata
import re
import threading
from types import ModuleType
from typing import Any, ClassVar, TypeVar

from tracewire.engine import state
from tracewire.engine.client import Client

A = TypeVar("A", bound="Adapter")


class DidNotEnable(ImportError):
    """The framework an adapter records is not installed, or installed in a version outside the
    range the adapter supports (the message names the installed version, the range and the extra)."""


def require(module: str, extra: str, supported: str | None = None) -> ModuleType:
    """Import `module` for the adapter of pip extra `extra`, or raise DidNotEnable naming it.

    `supported`: the framework's distribution and version range the adapter works with, written as
    in pyproject's extra (`"crewai>=1.9"`; clauses `>=` and `<`). Checked before the import, so a
    release without the APIs the adapter uses is refused in words rather than by a missing name."""
    if supported is not None:
        check_supported(supported, extra)
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DidNotEnable(
            f"tracewire.integrations.{extra} needs {module.split('.')[0]}: pip install 'tracewire[{extra}]'"
        ) from exc


def check_supported(requirement: str, extra: str) -> None:
    """Raise DidNotEnable when the distribution `requirement` names is installed in a version outside
    its range (nothing when it is not installed: the import that follows says so)."""
    name, _ = parse_requirement(requirement)
    try:
        installed = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return
    if not version_in_range(installed, requirement):
        raise DidNotEnable(
            f"tracewire.integrations.{extra} supports {requirement.replace(',', ', ')}, "
            f"installed is {name} {installed}: pip install 'tracewire[{extra}]'"
        )


_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*((?:(?:>=|<)\s*[0-9][0-9.]*\s*,?\s*)*)$")
_CLAUSE = re.compile(r"(>=|<)\s*([0-9][0-9.]*)")
# A release segment (after an epoch, ignored), then what follows it: a pre- or dev-release marker
# sorts before the release.
_VERSION = re.compile(r"^\s*v?(?:\d+!)?(\d+(?:\.\d+)*)(.*)$", re.IGNORECASE)
_PRE = re.compile(r"^[-_.]?(a|b|c|rc|alpha|beta|pre|preview|dev)\d*", re.IGNORECASE)


def parse_requirement(requirement: str) -> tuple[str, list[tuple[str, tuple[int, ...]]]]:
    """`"crewai>=1.9,<2"` -> `("crewai", [(">=", (1, 9)), ("<", (2,))])`. ValueError otherwise."""
    match = _REQUIREMENT.match(requirement)
    if match is None:
        raise ValueError(f"supported range {requirement!r}: expected 'name>=X,<Y' (clauses >= and <)")
    return match.group(1), [(op, _release(v)) for op, v in _CLAUSE.findall(match.group(2))]


def version_in_range(version: str, requirement: str) -> bool:
    """Whether `version` satisfies `requirement`'s clauses, comparing release numbers (1.9 == 1.9.0).
    A pre-release is below its release (1.9.0rc1 fails >=1.9, and <1.106 refuses 1.106.0rc1); post
    and local versions count as their release. A version with no release number is not judged."""
    match = _VERSION.match(version)
    if match is None:
        return True
    release, pre = _release(match.group(1)), _PRE.match(match.group(2)) is not None
    for op, bound in parse_requirement(requirement)[1]:
        if op == ">=" and (release < bound or (release == bound and pre)):
            return False
        if op == "<" and release >= bound:
            return False
    return True


def _release(text: str) -> tuple[int, ...]:
    parts = [int(p) for p in text.strip(".").split(".") if p]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


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
