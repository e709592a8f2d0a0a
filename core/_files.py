"""Private files: stores, spools, dead letters and keys are readable by their owner only.

Modes are set explicitly (mkdir/open modes are masked by the umask, and a umask of 022 would leave
them world-readable). Folders are made 0700 when tracewire creates them; an existing folder is left
alone unless it is tracewire's own (`own=True`, e.g. the spool folder), since it may be the user's.
"""

from __future__ import annotations

import os

FILE_MODE = 0o600
DIR_MODE = 0o700
DATA_DIR_NAME = ".tracewire"
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")
# What a `.tracewire` folder holds once tracewire has used it: the sinks' files, the spool folder,
# or the `.gitignore` written when it was created. A folder holding none of them is someone else's.
DB_NAME, JSONL_NAME, SPOOL_NAME = "tracewire.db", "events.jsonl", "spool"
STORE_MARKERS = (DB_NAME, JSONL_NAME, SPOOL_NAME, ".gitignore")
CEILING_ENV = "TRACEWIRE_CEILING_DIRS"


def _mine(st: os.stat_result) -> bool:
    return not hasattr(os, "getuid") or st.st_uid == os.getuid()


def find_data_dir(start: str | None = None) -> str:
    """The `.tracewire` folder to use: the nearest store found walking up from `start` (default:
    the current directory), as git finds `.git`; else `<start>/.tracewire`, made on first write.

    The walk stops, like git's, at a filesystem boundary and below each folder of
    `TRACEWIRE_CEILING_DIRS` (os.pathsep-separated); the home folder is always a ceiling, so a
    store in `~` never captures what runs in the folders under it. A `.tracewire` counts only when
    it is a folder of the current user holding a store (see `STORE_MARKERS`)."""
    here = os.path.abspath(start if start is not None else os.getcwd())
    ceilings = {os.path.realpath(os.path.expanduser("~"))}
    ceilings.update(os.path.realpath(os.path.expanduser(c))
                    for c in os.environ.get(CEILING_ENV, "").split(os.pathsep) if c.strip())
    d = here
    try:
        dev = os.stat(d).st_dev
    except OSError:
        return os.path.join(here, DATA_DIR_NAME)
    while True:
        if _is_store(os.path.join(d, DATA_DIR_NAME)):
            return os.path.join(d, DATA_DIR_NAME)
        parent = os.path.dirname(d)
        if parent == d or os.path.realpath(parent) in ceilings:
            break
        try:
            if os.stat(parent).st_dev != dev:  # another filesystem: a mount point is a ceiling too
                break
        except OSError:
            break
        d = parent
    return os.path.join(here, DATA_DIR_NAME)


def _is_store(path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    if not os.path.isdir(path) or not _mine(st):  # another user's store is not ours to write to
        return False
    return any(os.path.lexists(os.path.join(path, m)) for m in STORE_MARKERS)


def _tighten(path: str, mode: int) -> None:
    """chmod to `mode` if the path is ours and looser than that (never loosens, never follows links)."""
    try:
        st = os.lstat(path)
    except OSError:
        return
    if _mine(st) and (st.st_mode & 0o777) & ~mode:
        try:
            os.chmod(path, mode)
        except OSError:
            pass


def private_dir(path: str, *, own: bool = False) -> str:
    """Create `path` and any missing parents as 0700. A `.tracewire` folder created here also gets a
    `.gitignore` of `*`, so a store inside a project is never committed by accident."""
    path = os.path.abspath(path)
    missing: list[str] = []
    p = path
    while not os.path.isdir(p):
        missing.append(p)
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    for d in reversed(missing):
        try:
            os.mkdir(d, DIR_MODE)
        except FileExistsError:
            continue  # made by another process at the same moment: it sets the mode
        os.chmod(d, DIR_MODE)
        if os.path.basename(d) == DATA_DIR_NAME:
            _write_gitignore(d)
    if own or os.path.basename(path) == DATA_DIR_NAME:
        _tighten(path, DIR_MODE)
    return path


def _write_gitignore(directory: str) -> None:
    try:
        fd = os.open(os.path.join(directory, ".gitignore"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except OSError:
        return
    try:
        os.write(fd, b"*\n")
    finally:
        os.close(fd)


def private_file(path: str) -> None:
    """Create `path` empty with mode 0600 unless it exists; an existing file of ours is tightened to 0600."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        _tighten(path, FILE_MODE)
        return
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def prepare_sqlite(path: str) -> None:
    """Before opening a SQLite file for writing: a private folder and a 0600 main file. SQLite gives the
    -wal/-shm files it creates the main file's permissions; `private_sqlite_sidecars` checks after opening."""
    if path == ":memory:" or path.startswith("file:"):
        return
    private_dir(os.path.dirname(os.path.abspath(path)))
    private_file(path)


def private_sqlite_sidecars(path: str) -> None:
    for suffix in SQLITE_SIDECARS:
        _tighten(path + suffix, FILE_MODE)
