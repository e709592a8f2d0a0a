"""LiteLLM copies `litellm.callbacks` into its per-event lists on each call; restoring
`litellm.callbacks` alone leaves those copies behind for the next test module."""

from __future__ import annotations

from collections.abc import Iterator

import litellm
import pytest

from tracewire.integrations.litellm import TracewireLogger

_LISTS = ("callbacks", "input_callback", "success_callback", "failure_callback", "_async_success_callback",
          "_async_failure_callback", "service_callback")


@pytest.fixture(autouse=True)
def _no_logger_left_behind() -> Iterator[None]:
    yield
    for name in _LISTS:
        current = getattr(litellm, name, None)
        if isinstance(current, list):
            current[:] = [c for c in current if not isinstance(c, TracewireLogger)]
