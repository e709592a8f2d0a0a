"""The default store is the nearest `.tracewire/` holding a store, found walking up from the
current directory like git finds `.git`, never past a ceiling (the home folder,
TRACEWIRE_CEILING_DIRS) and never into a `.tracewire` that is not a tracewire store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import tracewire
from tracewire._files import find_data_dir
from tracewire.config import Config, setting


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp/home/project with a store made by a first run at its top, and app/jobs below it."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TRACEWIRE_CEILING_DIRS", raising=False)
    for k in ("TRACEWIRE_DB", "TRACEWIRE_JSONL_PATH", "TRACEWIRE_SPOOL_DIR"):
        monkeypatch.delenv(k, raising=False)
    root = tmp_path / "home" / "project"
    (root / "app" / "jobs").mkdir(parents=True)
    monkeypatch.chdir(root)
    tracewire.init()
    with tracewire.span("agent", "at the top"):
        pass
    tracewire.shutdown()
    assert (root / ".tracewire" / "tracewire.db").is_file()
    return root


def _trace_names(db: Path) -> list[str]:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return [n for (n,) in conn.execute("SELECT name FROM events WHERE phase = 'start' ORDER BY seq_no")]
    finally:
        conn.close()


def test_an_app_run_below_the_store_writes_to_it(project: Path) -> None:
    """`python app/jobs/x.py` run from inside app/jobs finds the project's store: one store, not two."""
    script = project / "app" / "jobs" / "x.py"
    script.write_text("import tracewire\ntracewire.init()\n"
                      "with tracewire.span('agent', 'from jobs'):\n    pass\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    r = subprocess.run([sys.executable, str(script)], cwd=project / "app" / "jobs", env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert not (project / "app" / "jobs" / ".tracewire").exists() and not (project / "app" / ".tracewire").exists()
    assert _trace_names(project / ".tracewire" / "tracewire.db") == ["at the top", "from jobs"]


def test_config_defaults_resolve_through_the_nearest_store(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project / "app" / "jobs")
    store = str(project / ".tracewire")
    assert find_data_dir() == store
    c = Config.resolve({})
    assert (c.db, c.jsonl_path, c.spool_dir) == (os.path.join(store, "tracewire.db"),
                                                 os.path.join(store, "events.jsonl"), os.path.join(store, "spool"))
    assert setting("db") == c.db  # what the CLI reads, resolved alone
    # given paths win and keep meaning relative to the current directory, made absolute
    monkeypatch.setenv("TRACEWIRE_DB", "here.db")
    assert Config.resolve({}).db == setting("db") == str(project / "app" / "jobs" / "here.db")
    assert setting("db", "given.db") == str(project / "app" / "jobs" / "given.db")
    assert Config.resolve({"db": "../there.db"}).db == str(project / "app" / "there.db")
    assert Config.resolve({"db": ":memory:"}).db == ":memory:"


def test_without_a_store_above_it_is_made_in_the_current_directory(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    start = tmp_path / "a" / "b"
    start.mkdir(parents=True)
    assert find_data_dir(str(start)) == str(start / ".tracewire")
    monkeypatch.chdir(start)
    assert find_data_dir() == str(start / ".tracewire") and Config.resolve({}).db == str(start / ".tracewire" /
                                                                                          "tracewire.db")


def test_a_dot_tracewire_that_is_not_a_store_is_passed_over(project: Path) -> None:
    jobs = project / "app" / "jobs"
    (project / "app" / ".tracewire").mkdir()  # an empty folder: not a store
    (jobs / ".tracewire").write_text("a file, not a folder")
    assert find_data_dir(str(jobs)) == str(project / ".tracewire")
    (project / "app" / ".tracewire" / "notes.txt").write_text("someone else's")
    assert find_data_dir(str(jobs)) == str(project / ".tracewire")
    (project / "app" / ".tracewire" / "tracewire.db").touch()  # now it holds a store: the nearest wins
    assert find_data_dir(str(jobs)) == str(project / "app" / ".tracewire")


def test_the_walk_stops_at_the_home_folder_and_at_ceilings(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = project.parent
    (home / ".tracewire").mkdir()
    (home / ".tracewire" / "tracewire.db").touch()
    other = home / "other" / "deep"
    other.mkdir(parents=True)
    # a store in ~ does not capture every run in the folders under it...
    assert find_data_dir(str(other)) == str(other / ".tracewire")
    # ...but is the store of a run in ~ itself
    assert find_data_dir(str(home)) == str(home / ".tracewire")
    jobs = project / "app" / "jobs"
    monkeypatch.setenv("TRACEWIRE_CEILING_DIRS", os.pathsep.join(["", str(project / "app")]))
    assert find_data_dir(str(jobs)) == str(jobs / ".tracewire")  # the project's store is above the ceiling
    # as with git, a ceiling bounds the walks that start below it, not one that starts in it
    assert find_data_dir(str(project / "app")) == str(project / ".tracewire")
    monkeypatch.setenv("TRACEWIRE_CEILING_DIRS", str(project))  # the ceiling itself is not searched
    assert find_data_dir(str(jobs)) == str(jobs / ".tracewire")
    monkeypatch.setenv("TRACEWIRE_CEILING_DIRS", str(home / "unrelated"))
    assert find_data_dir(str(jobs)) == str(project / ".tracewire")


def test_the_cli_in_a_subdirectory_reads_the_nearest_store_and_says_where(
        project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from tracewire.cli.main import main

    monkeypatch.chdir(project / "app" / "jobs")
    assert main(["traces"]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines()[0] == f"store: {project / '.tracewire' / 'tracewire.db'}"
    assert "at the top" in out and "1 trace" in out
    assert not (project / "app" / "jobs" / ".tracewire").exists()
