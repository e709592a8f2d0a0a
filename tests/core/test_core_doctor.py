"""`tracewire doctor`: a verdict first (store, counts, last write, sinks, findings each `ok`,
`fine for local use` or `needs fixing`), `--json` the machine report; exit 1 only when something
needs fixing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import tracewire
from tracewire.cli.main import main


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for k in [k for k in os.environ if k.startswith("TRACEWIRE_")] + ["OTEL_SDK_DISABLED"]:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # not above the folders used: no ceiling among them
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["doctor", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_fresh_folder_is_fine_for_local_use(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _doctor(capsys)
    store = here / ".tracewire" / "tracewire.db"
    assert code == 0 and err == f"store: {store}\n"
    lines = out.splitlines()
    assert lines[0] == "tracewire doctor: fine for local use"
    assert lines[1] == f"store: {store}"
    assert any(ln.startswith("fine for local use") and "no endpoint configured" in ln for ln in lines), out
    assert not any(ln.startswith("needs fixing") for ln in lines), out
    assert not (here / ".tracewire").exists()  # doctor looks, it does not make a store


def test_counts_traces_and_events_and_the_last_write(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tracewire.init()
    for name in ("one", "two"):
        with tracewire.span("agent", name):
            tracewire.record("log", input=name)
    tracewire.shutdown()
    (here / "sub").mkdir()
    os.chdir(here / "sub")  # the nearest store, from a folder below it
    code, out, _ = _doctor(capsys)
    assert code == 0, out
    assert f"store: {here / '.tracewire' / 'tracewire.db'} (2 traces, 6 events, last write " in out
    assert any(ln.startswith("ok") and "store" in ln and "2 traces, 6 events" in ln for ln in out.splitlines()), out
    code, out, _ = _doctor(capsys, "--json")
    report = json.loads(out)
    assert code == 0 and report["verdict"] == "fine for local use"
    store = report["store"]
    assert (store["traces"], store["events"], store["exists"], store["writable"]) == (2, 6, True, True)
    assert store["last_write"] > 0 and store["last_event_time_ns"] > 0
    assert report["sinks"] == {"sqlite": {"path": store["path"], "ok": True}}
    assert {"level": "fine for local use", "subject": "collector",
            "message": "no endpoint configured: events stay on this machine"} in report["findings"]


def test_what_needs_fixing_exits_1(here: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    bad = here / "not-a-store.db"
    bad.write_bytes(b"this is not SQLite" * 100)
    code, out, err = _doctor(capsys, "--db", str(bad))
    assert code == 1 and err == f"store: {bad}\n"
    assert out.splitlines()[0] == "tracewire doctor: needs fixing"
    assert any(ln.startswith("needs fixing") and "not a readable tracewire store" in ln for ln in out.splitlines())
    monkeypatch.setenv("TRACEWIRE_SINK", "sqlite,otlp")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    code, out, _ = _doctor(capsys, "--json")
    report = json.loads(out)
    assert code == 1 and report["sinks"]["otlp"] == {"endpoint": None, "exporting": False}
    assert {"level": "needs fixing", "subject": "otlp",
            "message": "OTEL_SDK_DISABLED=true: the otlp sink exports nothing (unset it to export)"} in report["findings"]
    monkeypatch.delenv("OTEL_SDK_DISABLED")
    code, out, _ = _doctor(capsys)
    assert code == 0 and "otlp" in out and "OpenTelemetry default" in out, out


def test_a_refused_setting_needs_fixing_and_is_named(here: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACEWIRE_SAMPLE_RATE", "2")
    code, out, err = _doctor(capsys)
    assert err == f"store: {here / '.tracewire' / 'tracewire.db'}\n"
    assert code == 1 and out.splitlines()[0] == "tracewire doctor: needs fixing"
    assert "sample_rate" in out and "TRACEWIRE_SAMPLE_RATE" in out
    code, out, _ = _doctor(capsys, "--json")
    report = json.loads(out)
    assert code == 1 and report["verdict"] == "needs fixing" and "sample_rate" in report["findings"][0]["message"]
