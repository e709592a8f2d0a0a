"""`tracewire experiments list|show|compare` and `tracewire datasets list|show|add`, on the local store."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from tracewire.cli.output import ID, Output, note
from tracewire.read import formats as F

_DB_HELP = "SQLite store (default: $TRACEWIRE_DB, else the configured store)"


def _path(args: argparse.Namespace) -> str:
    from tracewire.experiments.store import store_path

    path = store_path(args.db)
    note(f"store: {path}")
    return path


def _guarded(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """What the user got wrong is a line on stderr: a name not found exits 1, a bad value 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except (LookupError, FileNotFoundError) as exc:
            print(f"tracewire: {exc.args[0] if exc.args else exc}", file=sys.stderr)
            return 1
        except ValueError as exc:
            print(f"tracewire: {exc}", file=sys.stderr)
            return 2

    return run


def _dump(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


# -- experiments -------------------------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    from tracewire.experiments import store as S
    from tracewire.experiments.rows import mean

    path = _path(args)
    with S.opened(path) as conn:
        runs = S.list_runs(conn, args.name, args.limit)
    header = ["run", "started", "name", "dataset", "items", "errors", "timeouts", "scores", "cost", "p50"]
    rows = []
    for run_id, name, dataset, version, started, _, summary_text in runs:
        s = S.loads(summary_text)
        scores = ", ".join(f"{n} {mean(e['mean'])}" for n, e in s["scores"].items())
        rows.append([(run_id[:8], ID), (F.when(started), None), (name, None), (f"{dataset} v{version}", None),
                     (str(s["items"]), None), (str(s["errors"]), None), (str(s["timeouts"]), None),
                     (scores or F.MISSING, None), (F.cost(s["cost_usd"]), None),
                     (F.duration(s["latency_ms"]["p50"]), None)])
    Output().table(header, rows, right=(4, 5, 6, 8))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from tracewire.experiments.result import load_run

    run = load_run(args.run, _path(args))
    if args.json:
        _dump({k: v for k, v in asdict(run).items() if k != "db"})
        return 0
    out = Output()
    for line in run.table().splitlines():
        out.line(line)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from tracewire.experiments.result import load_run

    path = _path(args)
    comparison = load_run(args.a, path).compare(load_run(args.b, path))
    if args.json:
        _dump(comparison.to_dict())
        return 0
    out = Output()
    for line in comparison.text().splitlines():
        out.line(line)
    return 0


# -- datasets ----------------------------------------------------------------------------------------------
def cmd_datasets_list(args: argparse.Namespace) -> int:
    from tracewire.experiments import store as S

    path = _path(args)
    with S.opened(path) as conn:
        found = S.dataset_versions(conn)
    Output().table(["dataset", "version", "items", "created"],
                   [[(name, None), (str(v), None), (str(n), None), (F.when(t), None)] for name, v, n, t in found],
                   right=(1, 2))
    return 0


def cmd_datasets_show(args: argparse.Namespace) -> int:
    from tracewire.experiments.datasets import dataset
    from tracewire.experiments.rows import columns, preview

    ds = dataset(args.name, version=args.version, db=_path(args))
    if args.json:
        _dump({"name": ds.name, "version": ds.version, "items": [
            {"id": i.id, "input": i.input, "expected": i.expected, "metadata": i.metadata,
             "source_trace_id": i.source_trace_id} for i in ds.items]})
        return 0
    out = Output()
    out.line(f"{ds.name} v{ds.version}  {len(ds)} item{'' if len(ds) == 1 else 's'}")
    out.line()
    body = [[i.id, preview(i.input, 40), preview(i.expected, 40), i.source_trace_id or F.MISSING] for i in ds.items]
    for line in columns(["item", "input", "expected", "from trace"], body):
        out.line(line)
    return 0


def _value(text: str) -> Any:
    """A command-line value: JSON when it parses as JSON, else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def cmd_datasets_add(args: argparse.Namespace) -> int:
    from tracewire.experiments.datasets import add_items, item_from_trace, items_from_file

    if args.file and args.expected is not None:
        raise ValueError("--expected goes with --from-trace (a file's items carry their own)")
    path = _path(args)
    if args.file:
        if not os.path.exists(args.file):
            raise FileNotFoundError(f"no such file: {args.file}")
        items = items_from_file(args.file)
    else:
        kwargs: dict[str, Any] = {} if args.expected is None else {"expected": _value(args.expected)}
        items = [item_from_trace(trace_id, db=path, **kwargs) for trace_id in args.from_trace]
    ds = add_items(args.name, items, db=path)
    print(f"{ds.name} v{ds.version}: {len(ds)} item{'' if len(ds) == 1 else 's'} ({len(items)} added)")
    return 0


def add_commands(sub: Any) -> None:
    """The `experiments` and `datasets` commands, on the `tracewire` command's subparsers."""

    def db(p: argparse.ArgumentParser) -> None:
        p.add_argument("--db", default=None, metavar="PATH", help=_DB_HELP)

    exp = sub.add_parser("experiments", help="experiment runs: list, show one, compare two")
    cmds = exp.add_subparsers(dest="experiments_command", required=True)
    p = cmds.add_parser("list", help="runs, newest first, with their aggregates")
    db(p)
    p.add_argument("--name", default=None, help="only runs of this experiment")
    p.add_argument("--limit", type=int, default=50, metavar="N", help="at most N runs (default 50)")
    p.set_defaults(func=_guarded(cmd_list))
    p = cmds.add_parser("show", help="one run: aggregates, then a row per dataset item")
    db(p)
    p.add_argument("run", metavar="NAME", help="an experiment name (its newest run) or a run id prefix")
    p.add_argument("--json", action="store_true", help="the run as JSON")
    p.set_defaults(func=_guarded(cmd_show))
    p = cmds.add_parser("compare", help="run B against run A, item by item: regressions first")
    db(p)
    p.add_argument("a", metavar="A", help="the baseline: an experiment name (its newest run) or a run id prefix")
    p.add_argument("b", metavar="B", help="the run compared with it")
    p.add_argument("--json", action="store_true", help="the comparison as JSON")
    p.set_defaults(func=_guarded(cmd_compare))

    ds = sub.add_parser("datasets", help="datasets: list, show one, add items from a file or traces")
    cmds = ds.add_subparsers(dest="datasets_command", required=True)
    p = cmds.add_parser("list", help="datasets with their newest version")
    db(p)
    p.set_defaults(func=_guarded(cmd_datasets_list))
    p = cmds.add_parser("show", help="a dataset's items")
    db(p)
    p.add_argument("name", metavar="NAME", help="the dataset")
    p.add_argument("--version", type=int, default=None, metavar="N", help="this version (default: the newest)")
    p.add_argument("--json", action="store_true", help="the items as JSON")
    p.set_defaults(func=_guarded(cmd_datasets_show))
    p = cmds.add_parser("add", help="add items as a new version (the first, for a new name)")
    db(p)
    p.add_argument("name", metavar="NAME", help="the dataset (made by the first add)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", metavar="PATH", help="items from a .jsonl or .csv file")
    source.add_argument("--from-trace", action="append", metavar="TRACE_ID",
                        help="an item from a recorded trace: its root input, and its output as expected (repeatable)")
    p.add_argument("--expected", default=None, metavar="VALUE",
                   help="with --from-trace: the expected output instead of the trace's (JSON, else text)")
    p.set_defaults(func=_guarded(cmd_datasets_add))
