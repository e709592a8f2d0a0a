"""Configuration: kwargs > env > defaults; bad values fail at init naming the setting."""

from __future__ import annotations

import pytest

import tracewire
from tracewire.config import SETTINGS, Config, ConfigError


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": "many"}, "batch_size"),
        ({"sample_rate": 1.5}, "sample_rate"),
        ({"flush_interval": -1}, "flush_interval"),
        ({"queue_full_policy": "explode"}, "queue_full_policy"),
        ({"capture_content": "perhaps"}, "capture_content"),
        ({"sink": "carrier-pigeon"}, "sink"),
        ({"mask": "no_such_module:fn"}, "mask"),
        ({"mask": 42}, "mask"),
        ({"max_string_length": 3}, "max_string_length"),
        ({"processors": [1]}, "processors"),
    ],
)
def test_bad_value_names_the_setting(kwargs, setting) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as info:
        tracewire.init(**kwargs)
    assert f"'{setting}'" in str(info.value)
    assert "expected" in str(info.value)


def test_unknown_setting_is_refused() -> None:
    with pytest.raises(ConfigError, match="bach_size"):
        tracewire.init(bach_size=3)


def test_bad_env_value_names_the_variable(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TRACEWIRE_QUEUE_MAX_EVENTS", "lots")
    with pytest.raises(ConfigError, match="TRACEWIRE_QUEUE_MAX_EVENTS"):
        tracewire.init()


def test_precedence_kwargs_over_env_over_default(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TRACEWIRE_BATCH_SIZE", "77")
    monkeypatch.setenv("TRACEWIRE_SAMPLE_RATE", "0.25")
    c = Config.resolve({"batch_size": 5})
    assert c.batch_size == 5 and c.sample_rate == 0.25 and c.flush_interval == 0.2
    monkeypatch.setenv("TRACEWIRE_MASK", "tests.core.test_core_config:upper")
    assert Config.resolve({}).mask("abc") == "ABC"


def upper(s: str) -> str:
    return s.upper()


def test_every_setting_has_env_and_doc() -> None:
    for s in SETTINGS:
        assert s.doc
        if s.name != "processors":
            assert s.env_var == f"TRACEWIRE_{s.name.upper()}"


def test_init_is_idempotent_and_reconfigures(tmp_path) -> None:  # type: ignore[no-untyped-def]
    a = tracewire.init(sink="memory")
    assert tracewire.init(sink="memory") is a
    b = tracewire.init(sink="memory", batch_size=3)
    assert b is not a and a._closed


def test_docs_configuration_table_matches_the_settings() -> None:
    from pathlib import Path

    from tracewire.config import markdown_table

    page = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    table = page.split("<!-- config-table -->\n", 1)[1].split("\n<!-- /config-table -->", 1)[0]
    assert table.strip() == markdown_table().strip()
