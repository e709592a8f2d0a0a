"""Turn any Python value into JSON-safe data, scrubbing, masking and capping as it goes.

One walk does all four because content is the expensive part of an event: walking it once
keeps the worker's cost per event low. The walk never raises: whatever cannot be converted
becomes a descriptive string.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import decimal
import enum
import math
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from tracewire.pipeline.redact import REDACTED, WITHHELD, Redactor

MAX_DEPTH = 64
MAX_ITEMS = 10_000  # per container; the rest is summarised
_SCALARS = (bool, type(None))


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[truncated, original length {len(text)}]"


def _describe(obj: Any) -> str:
    try:
        return repr(obj)
    except Exception as exc:  # noqa: BLE001 - a broken __repr__ must not break recording
        return f"<{type(obj).__module__}.{type(obj).__qualname__} (repr failed: {type(exc).__name__})>"


class Sanitizer:
    """Makes values JSON-safe; scrubs secrets by key and value; runs the user's mask; caps strings."""

    def __init__(
        self, redactor: Redactor, max_string: int, mask: Callable[[str], str] | None = None
    ) -> None:
        self._redactor = redactor
        self._max = max_string
        self._mask = mask
        self.mask_failures = 0
        self.withheld = 0  # values that could not be checked, and so were not kept

    def text(self, s: str) -> str:
        if not s.isascii() and _has_surrogate(s):  # lone surrogates (bad UTF-8) cannot be stored
            s = s.encode("utf-8", "replace").decode("utf-8")
        s = self._redactor.scrub_text(s)
        if self._mask is not None:
            try:
                masked = self._mask(s)
                s = str.__str__(masked) if isinstance(masked, str) else self._redactor.scrub_text(_describe(masked))
            except Exception:  # noqa: BLE001 - a failing mask hides the value rather than leak it
                self.mask_failures += 1
                s = "[MASK FAILED]"
        return truncate(s, self._max)

    def value(self, obj: Any, mask: bool = True) -> Any:
        return self._checked(obj, 0, set(), mask)

    def _checked(self, obj: Any, depth: int, seen: set[int], mask: bool) -> Any:
        """One value, or WITHHELD if any step on it failed: what could not be scrubbed stays home."""
        try:
            return self._walk(obj, depth, seen, mask)
        except Exception:  # noqa: BLE001 - privacy fails closed, per value
            self.withheld += 1
            return WITHHELD

    def _walk(self, obj: Any, depth: int, seen: set[int], mask: bool) -> Any:
        t = type(obj)
        if t is str:
            if not mask:
                obj = obj.encode("utf-8", "replace").decode("utf-8") if not obj.isascii() and _has_surrogate(obj) else obj
                return truncate(self._redactor.scrub_text(obj), self._max)
            return self.text(obj)
        if t is int or (t is not bool and isinstance(obj, int) and t not in _SCALARS):
            n = int(obj)
            return n if -(2**63) <= n < 2**64 else str(n)  # JSON readers (and orjson) stop at 64 bits
        if t in _SCALARS:
            return obj
        if t is float:
            return obj if math.isfinite(obj) else None  # NaN/Infinity are not JSON; orjson also writes null
        if depth >= MAX_DEPTH:
            return f"<max depth {MAX_DEPTH} reached: {type(obj).__name__}>"
        oid = id(obj)
        if oid in seen:
            return f"<cycle: {type(obj).__name__}>"
        if isinstance(obj, Mapping):
            seen.add(oid)
            try:
                out: dict[str, Any] = {}
                for i, (k, v) in enumerate(list(obj.items())):
                    if i >= MAX_ITEMS:
                        out["…"] = f"{len(obj) - MAX_ITEMS} more items"
                        break
                    key = k if type(k) is str else self._key(k)
                    secret = self._redactor.is_secret_key(key)
                    key = self._redactor.scrub_text(key)  # a key is text too: `{"sk-...": 1}`
                    if secret and v is not None and v != "" and type(v) is not bool:
                        out[key] = REDACTED
                    else:
                        out[key] = self._checked(v, depth + 1, seen, mask)
                return out
            finally:
                seen.discard(oid)
        if isinstance(obj, (list, tuple, set, frozenset)):
            seen.add(oid)
            try:
                items = list(obj)
                if isinstance(obj, (set, frozenset)):
                    items.sort(key=_describe)
                out_list = [self._checked(v, depth + 1, seen, mask) for v in items[:MAX_ITEMS]]
                if len(items) > MAX_ITEMS:
                    out_list.append(f"…{len(items) - MAX_ITEMS} more items")
                return out_list
            finally:
                seen.discard(oid)
        if isinstance(obj, str):  # str subclasses: their data, not their (overridable) __str__
            return self._walk(str.__str__(obj), depth, seen, mask)
        if isinstance(obj, float):
            return self._walk(float(obj), depth, seen, mask)
        converted = self._convert(obj)
        if converted is obj:
            return self._walk(_describe(obj), depth, seen, mask)
        seen.add(oid)
        try:
            return self._walk(converted, depth + 1, seen, mask)
        finally:
            seen.discard(oid)

    def _key(self, k: Any) -> str:
        if isinstance(k, str):
            return str.__str__(k)
        if isinstance(k, enum.Enum):
            return str(k.value)
        return _describe(k) if not isinstance(k, (int, float, bool)) else str(k)

    @staticmethod
    def _convert(obj: Any) -> Any:
        """One step towards JSON; returns obj itself when it knows no better than repr."""
        try:
            if isinstance(obj, enum.Enum):
                return obj.value
            if isinstance(obj, (_dt.datetime, _dt.date, _dt.time)):
                return obj.isoformat()
            if isinstance(obj, _dt.timedelta):
                return obj.total_seconds()
            if isinstance(obj, (uuid.UUID, decimal.Decimal, complex)):
                return str(obj)
            if isinstance(obj, (bytes, bytearray, memoryview)):
                raw = bytes(obj)
                try:
                    return raw.decode("utf-8")
                except UnicodeDecodeError:
                    return {"$bytes_b64": base64.b64encode(raw[:65536]).decode("ascii"), "length": len(raw)}
            dump = getattr(obj, "model_dump", None)  # pydantic v2
            if callable(dump) and not isinstance(obj, type):
                return dump(mode="python")
            if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
                return {f.name: getattr(obj, f.name, None) for f in dataclasses.fields(obj)}
            to_dict = getattr(obj, "dict", None) if hasattr(obj, "__fields__") else None  # pydantic v1
            if callable(to_dict):
                return to_dict()
            if hasattr(obj, "__iter__") and hasattr(obj, "__len__") and not isinstance(obj, type):
                return list(obj)
        except Exception:  # noqa: BLE001 - fall back to repr
            return obj
        return obj


def _has_surrogate(s: str) -> bool:
    try:
        s.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True
