"""A bounded record of recent runs, for what an adapter must remember after a run ended (ids it
already recorded, ends that came before their start): kept in insertion order, the oldest forgotten
first, so a framework that never reports back cannot grow it without bound."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Recent(OrderedDict[K, V]):
    """An OrderedDict of at most `limit` keys; `remember` is the bounded insert."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def remember(self, key: K, value: Any = None) -> None:
        """Set `key` as the newest entry, forgetting the oldest beyond `limit`."""
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)
