"""What a classification task is to DHRD: how a record becomes the classifier input `x`, its labels, and its metric.

Records load from a local folder of the original files (`--data-dir`, `$DHRD_DATA_DIR`) or, on a connected
machine, from the Hub through `datasets`. Every task yields rows with the same columns: `idx`, `text` (the
classifier input), `label` (an index into `label_names`) and `group` (the unit of exact-match scoring; MultiRC's
question, otherwise the row itself).
"""

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset

from ..kinds.base import ProblemKind
from ..kinds.labels import label_index
from ..kinds.metrics import f1_per_class
from ..kinds.registry import get_kind

SPLIT_ALIASES = {"validation": "val", "dev": "val", "val": "val", "train": "train", "test": "test"}


def data_dir_or_env(data_dir: str | os.PathLike | None) -> str | os.PathLike | None:
    """The folder of original task files: the argument, else `$DHRD_DATA_DIR`, else None (load from the Hub)."""
    return data_dir if data_dir is not None else os.environ.get("DHRD_DATA_DIR")


class TaskDataError(ValueError):
    """A task file is missing, or a record lacks a field; the message names the file and the field."""


@dataclass(frozen=True)
class Task:
    """A classification task.

    Args:
        name: registry key (`"copa"`).
        label_names: class names in index order; they are also the verbalised answers in training sequences.
        to_rows: maps one raw record (local file or Hub format) to one or more `{"text", "label", "idx", "group"}`.
        metric: the official metric: `"accuracy"`, `"accuracy_macro_f1"` (both among the kind's metrics) or
            `"multirc"` (adds F1 over answer options and exact match per question to them).
        local_files: split -> file path relative to the data folder.
        hub: `(path, config)` for `datasets.load_dataset`, or None when the task has no Hub copy wired in.
        description: one line for teacher prompts ("a choice of plausible alternatives").
        problem_kind: the problem kind's name (`trainer.kinds`), whose metrics every task reports.
    """

    name: str
    label_names: tuple[str, ...]
    to_rows: Callable[[Mapping[str, Any]], Iterable[dict]]
    metric: str = "accuracy"
    local_files: Mapping[str, str] = field(default_factory=dict)
    hub: tuple[str, str | None] | None = None
    description: str = ""
    problem_kind: str = "single_label_classification"

    @property
    def kind(self) -> ProblemKind:
        return get_kind(self.problem_kind)

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.label_names))

    def label_index(self, value: Any) -> int:
        """Index of a label given as name, bool or int (local files and the Hub spell them differently)."""
        return label_index(value, {name: index for index, name in enumerate(self.label_names)}, self.name)

    def load(self, split: str, data_dir: str | os.PathLike | None = None, limit: int | None = None) -> Dataset:
        """Rows of `split` from `data_dir` (else `$DHRD_DATA_DIR`, else the Hub)."""
        data_dir = data_dir_or_env(data_dir)
        records = self._local_records(split, Path(data_dir)) if data_dir else self._hub_records(split)
        rows = []
        for position, (record, source) in enumerate(records):
            if "idx" not in record:  # files without ids (e-SNLI): number records in file order
                record = {**record, "idx": position}
            try:
                rows.extend(self.to_rows(record))
            except KeyError as error:
                raise TaskDataError(f"{source}: record has no field {error} needed by task {self.name!r}.") from None
            if limit is not None and len(rows) >= limit:
                rows = rows[:limit]
                break
        return Dataset.from_list(rows)

    def _local_records(self, split: str, data_dir: Path) -> Iterable[tuple[dict, str]]:
        key = split if split in self.local_files else SPLIT_ALIASES.get(split, split)
        if key not in self.local_files:
            raise TaskDataError(f"{self.name}: no local split {split!r}; available: {sorted(self.local_files)}.")
        path = data_dir / self.local_files[key]
        if not path.is_file():
            raise TaskDataError(f"{self.name}: split {split!r} expects the file {path}, which does not exist.")
        return ((record, f"{path}:{line}") for line, record in enumerate(read_json_lines(path), start=1))

    def _hub_records(self, split: str) -> Iterable[tuple[dict, str]]:
        if self.hub is None:
            raise TaskDataError(f"{self.name}: no Hub dataset is wired in; pass data_dir= (or set DHRD_DATA_DIR).")
        from datasets import load_dataset

        hub_split = {"val": "validation", "dev": "validation"}.get(split, split)
        path, config = self.hub
        dataset = load_dataset(path, config, split=hub_split)
        return ((record, f"{path}/{config}[{hub_split}]#{i}") for i, record in enumerate(dataset))

    def score(self, predictions: Iterable[int], labels: Iterable[int], groups: Iterable | None = None) -> dict:
        """The kind's metrics, and the task's official ones where it has its own (MultiRC's F1a and exact match)."""
        predictions, labels = np.asarray(list(predictions)), np.asarray(list(labels))
        scores = self.kind.scores(predictions, labels, self.num_labels)
        if self.metric == "multirc":
            scores["f1a"] = f1_per_class(predictions, labels, [1])[0]
            scores["em"] = exact_match(predictions, labels, list(groups) if groups is not None else range(len(labels)))
        return scores

    def score_rows(self, predictions: Iterable[int], rows) -> dict:
        """`score` against a prepared split (a `Dataset` from `load`): labels and, where the task has them, the
        groups (MultiRC questions) come from its columns."""
        groups = rows["group"] if "group" in rows.column_names else None
        return self.score(predictions, rows["label"], groups)


def exact_match(predictions: np.ndarray, labels: np.ndarray, groups: list) -> float:
    """Share of groups (MultiRC questions) whose every row is predicted correctly."""
    correct: dict = {}
    for prediction, label, group in zip(predictions, labels, groups):
        correct[group] = correct.get(group, True) and prediction == label
    return float(np.mean(list(correct.values()))) if correct else 0.0


def read_json_lines(path: Path) -> Iterable[dict]:
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as error:
                    raise TaskDataError(f"{path}:{number}: not valid JSON ({error.msg}).") from None
