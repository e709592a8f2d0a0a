"""Named, versioned datasets: items of input, expected output and metadata, made from code, from a
JSONL or CSV file, or from recorded traces.

A dataset's versions are immutable. Creating it again with different items, or adding items, makes the
next version; creating it again with the same items reuses the newest version. An item's id (given, or
derived from its input) stays the same across versions, so runs on different versions still line up.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracewire.experiments import store as S

_ITEM_KEYS = frozenset(("id", "input", "expected", "metadata", "source_trace_id"))
_UNSET: Any = object()


@dataclass(frozen=True)
class DatasetItem:
    id: str
    input: Any
    expected: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    source_trace_id: str | None = None


@dataclass(frozen=True)
class Dataset:
    """One version of a dataset, as stored in the SQLite file `db`."""

    name: str
    version: int
    items: tuple[DatasetItem, ...]
    db: str

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[DatasetItem]:
        return iter(self.items)

    def add(self, items: Iterable[Mapping[str, Any]]) -> Dataset:
        """The next version: this version's items followed by `items`."""
        return _save(self.name, [_plain(i) for i in self.items] + list(items), self.db)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _plain(item: DatasetItem) -> dict[str, Any]:
    return {"id": item.id, "input": item.input, "expected": item.expected, "metadata": item.metadata,
            "source_trace_id": item.source_trace_id}


def _normalize(items: Iterable[Any]) -> list[dict[str, Any]]:
    """Items checked (a bad one is a ValueError naming its position and key) and made JSON-safe, each
    with an id: its own, else a digest of its input (`-2`, `-3`… for repeated inputs)."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for n, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ValueError(f"dataset item {n}: expected a dict with 'input' (and optionally 'expected', "
                             f"'metadata', 'id'), got {type(item).__name__}")
        unknown = sorted(set(item) - _ITEM_KEYS)
        if unknown:
            raise ValueError(f"dataset item {n}: unknown key {unknown[0]!r}; items take {', '.join(sorted(_ITEM_KEYS))}")
        if "input" not in item:
            raise ValueError(f"dataset item {n}: 'input' is missing")
        metadata = item.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            raise ValueError(f"dataset item {n}: 'metadata' must be a dict, got {type(metadata).__name__}")
        given_id = item.get("id")
        if given_id is not None and (not isinstance(given_id, str) or not given_id):
            raise ValueError(f"dataset item {n}: 'id' must be a non-empty string")
        value = S.safe(item["input"])
        base = given_id or hashlib.sha256(_canonical(value).encode()).hexdigest()[:12]
        item_id, k = base, 1
        while item_id in seen:
            if given_id is not None:
                raise ValueError(f"dataset item {n}: id {given_id!r} is used twice")
            k += 1
            item_id = f"{base}-{k}"
        seen.add(item_id)
        source = item.get("source_trace_id")
        out.append({"id": item_id, "input": value, "expected": S.safe(item.get("expected")),
                    "metadata": S.safe(dict(metadata)), "source_trace_id": None if source is None else str(source)})
    return out


def _of(name: str, version: int, rows: list[dict[str, Any]], db: str) -> Dataset:
    return Dataset(name, version, tuple(DatasetItem(r["id"], r["input"], r["expected"], r["metadata"],
                                                    r["source_trace_id"]) for r in rows), db)


def _save(name: str, items: Iterable[Any], db: str) -> Dataset:
    rows = _normalize(items)
    digest = hashlib.sha256(_canonical(rows).encode()).hexdigest()
    with S.opened(db, write=True) as conn:
        latest = S.latest_version(conn, name)
        if latest is not None and latest[1] == digest:
            return _of(name, latest[0], rows, db)
        return _of(name, S.insert_version(conn, name, digest, rows), rows, db)


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"dataset name must be a non-empty string, got {name!r}")
    return name


def dataset(name: str, items: Iterable[Mapping[str, Any]] | None = None, *, version: int | None = None,
            db: str | None = None) -> Dataset:
    """The dataset `name`: with `items`, the version holding exactly them (a new version when they differ
    from the newest); without, the newest stored version (or `version`). `db`: the SQLite store (default:
    the running client's, else the one the CLI reads). LookupError when there is nothing to load."""
    _check_name(name)
    path = S.store_path(db)
    if items is not None:
        if version is not None:
            raise ValueError("dataset(): give items or version, not both")
        return _save(name, items, path)
    if os.path.exists(path):
        with S.opened(path) as conn:
            latest = S.latest_version(conn, name)
            want = latest[0] if version is None and latest else version
            if latest and want is not None and 1 <= want <= latest[0]:
                return _of(name, want, S.version_items(conn, name, want), path)
    raise LookupError(f"no dataset {name!r}" + (f" version {version}" if version is not None else "")
                      + f" in {path}")


def add_items(name: str, items: Iterable[Mapping[str, Any]], *, db: str | None = None) -> Dataset:
    """Append `items` to the newest version of `name` as a new version (version 1 if `name` is new)."""
    _check_name(name)
    path = S.store_path(db)
    try:
        current = dataset(name, db=path)
    except LookupError:
        return _save(name, list(items), path)
    return current.add(items)


# -- items from elsewhere ------------------------------------------------------------------------------
def items_from_file(path: str | Path) -> list[dict[str, Any]]:
    """Items from a `.jsonl` file (an object per line with the item's keys) or a `.csv` file (columns
    input, expected, id, metadata as a JSON object; any other column goes into metadata; cells are text,
    an empty `expected` is None). ValueError names the file and line of a bad record."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        out = []
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{p}:{n}: not JSON ({exc.msg})") from None
        return out
    if suffix == ".csv":
        with p.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or "input" not in reader.fieldnames:
                raise ValueError(f"{p}: a CSV dataset needs an 'input' column")
            return [_csv_item(p, n, row) for n, row in enumerate(reader, 2)]
    raise ValueError(f"{p}: a dataset file is .jsonl or .csv")


def _csv_item(path: Path, line: int, row: dict[str, str]) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    if row.get("metadata"):
        try:
            metadata = json.loads(row["metadata"])
        except json.JSONDecodeError:
            raise ValueError(f"{path}:{line}: 'metadata' is not a JSON object") from None
        if not isinstance(metadata, dict):
            raise ValueError(f"{path}:{line}: 'metadata' is not a JSON object")
    metadata.update({k: v for k, v in row.items() if k not in _ITEM_KEYS and k is not None})
    item: dict[str, Any] = {"input": row["input"], "expected": row.get("expected") or None, "metadata": metadata}
    if row.get("id"):
        item["id"] = row["id"]
    return item


def item_from_trace(trace_id: str, *, expected: Any = _UNSET, db: str | None = None) -> dict[str, Any]:
    """An item from a recorded trace (a whole id or a unique prefix): its root span's input as the input
    and, unless `expected` is given, its output as the expected output."""
    from tracewire.read.fold import tree
    from tracewire.read.local import LocalStore

    store = LocalStore(S.store_path(db))
    try:
        full = store.resolve(trace_id)
        roots = [r for r in tree(store.trace_events(full)) if r.status != "point"]
    finally:
        store.close()
    if not roots:
        raise LookupError(f"trace {trace_id} has no span to take an input from")
    root = roots[0]
    return {"input": root.input, "expected": root.output if expected is _UNSET else expected,
            "metadata": {"trace_name": f"{root.kind} {root.name}"}, "source_trace_id": full}
