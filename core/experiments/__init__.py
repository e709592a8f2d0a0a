"""Datasets and experiments: run a task over a dataset, score each output, compare two runs.

    ds = tracewire.dataset("questions", items=[{"input": "2+2?", "expected": "4"}])
    run = tracewire.experiment("v1", ds, answer, evaluators=[exact_match])
    print(run.table()); print(run.compare(other_run))
"""

from __future__ import annotations

from tracewire.experiments.compare import Comparison, ItemChange
from tracewire.experiments.datasets import (
    Dataset,
    DatasetItem,
    add_items,
    dataset,
    item_from_trace,
    items_from_file,
)
from tracewire.experiments.judge import llm_judge
from tracewire.experiments.result import ExperimentResult, load_run
from tracewire.experiments.rows import Row
from tracewire.experiments.runner import experiment
from tracewire.model.score import Score

__all__ = [
    "Comparison", "Dataset", "DatasetItem", "ExperimentResult", "ItemChange", "Row", "Score", "add_items", "dataset",
    "experiment", "item_from_trace", "items_from_file", "llm_judge", "load_run",
]
