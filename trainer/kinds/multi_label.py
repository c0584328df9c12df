"""Multi-label classification: any subset of the classes, as a multi-hot float vector; each label decided on its
own sigmoid probability (at its tuned threshold, `thresholds`, else 0.5); scored by micro-/macro-F1 and exact match.

A value may be a list of names, a multi-hot list (K numbers in {0, 1}), class indices (in a `Sequence(ClassLabel)`
column, as Hub datasets store them), or a string of names joined by commas (CSV cells; "" is the empty set). Several
0/1 columns are `--label_columns` (`trainer.data`).
"""

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from .base import PredictionCounts, ProblemKind, class_probabilities
from .labels import LabelError, label_index
from .metrics import multi_label_scores
from .thresholds import DEFAULT_THRESHOLD, decide

NO_LABEL_ANSWER = "none"  # the verbalised empty label set

TEACHER_TEMPLATE = (
    "Here is {description}.\n\n{input}\n\nThe labels that apply are: {answer}.\n"
    "Explain in two or three sentences what in the text makes these labels apply and the others not. Do not list "
    "the labels themselves. End your explanation with {sentinel}"
)


def is_list_value(value: Any) -> bool:
    return isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim == 1)


def multi_label_items(value: Any, where: str) -> list:
    """The items a multi-label value lists: a list as given, a JSON list in a CSV cell (`[]` is the empty set), or
    names split at commas. An empty CSV cell is read as missing, never as the empty set: a forgotten label must not
    train as "none of the labels apply"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise LabelError(
            f"{where}: no labels; give a list (in a CSV cell, [] for none of the labels; an empty cell is read as "
            "missing) or remove the row."
        )
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise LabelError(f"{where}: {value[:80]!r} is not a JSON list of label names or indices.") from None
    if isinstance(value, str):
        return [name.strip() for name in value.split(",") if name.strip()]
    if not is_list_value(value):
        raise LabelError(
            f"{where}: multi-label value {value!r} is not a list of label names, class indices or a multi-hot vector."
        )
    return list(value)


def multi_hot(value: Any, label2id: Mapping[str, int], where: str, indices: bool = False) -> list[float]:
    """A multi-label value as a multi-hot vector over `label2id`'s classes (see the module docstring).

    A list of numbers is a multi-hot vector (it must have one 0/1 entry per class), unless `indices`: the data's
    feature says its integers are class indices (a `Sequence(ClassLabel)` column). Reading it either way is never
    guessed from the values, so a vector of the wrong width is an error, not a set of indices."""
    width = len(label2id)
    value = multi_label_items(value, where)
    numbers = bool(value) and all(isinstance(v, (bool, int, float, np.number)) for v in value)
    if numbers and not indices:
        if len(value) != width or any(float(v) not in (0.0, 1.0) for v in value):
            raise LabelError(
                f"{where}: {value} is not a multi-hot vector of {width} 0/1 entries (one per label: "
                f"{list(label2id)}); give label names instead, or class indices in a Sequence(ClassLabel) column."
            )
        return [float(v) for v in value]
    vector = [0.0] * width
    for item in value:
        vector[label_index(item, label2id, where)] = 1.0
    return vector


class MultiLabel(ProblemKind):
    name = problem_type = "multi_label_classification"
    best_metric = ("micro_f1", True)
    metric_directions = {"micro_f1": True, "macro_f1": True, "exact_match": True}
    teacher_template = TEACHER_TEMPLATE

    def target_feature(self) -> Any:
        """A multi-hot row of floats (see `ProblemKind.target_feature`)."""
        from datasets import List, Value

        return List(Value("float64"))

    def encode_target(self, value: Any, label2id: Mapping[str, int], where: str, indices: bool = False) -> list:
        return multi_hot(value, label2id, where, indices)

    def answer_text(self, target: Any, id2label: Mapping[int, str]) -> str:
        names = [str(id2label[i]) for i, flag in enumerate(target) if flag >= DEFAULT_THRESHOLD]
        return ", ".join(names) or NO_LABEL_ANSWER

    def restated_answer(self, target: Any, id2label: Mapping[int, str]) -> str | None:
        """None for the empty set: "none of the labels apply" explains the row, it names no label."""
        answer = self.answer_text(target, id2label)
        return None if answer == NO_LABEL_ANSWER and NO_LABEL_ANSWER not in id2label.values() else answer

    def decide(self, logits: np.ndarray, thresholds: Sequence[float] | None = None) -> np.ndarray:
        return decide(1 / (1 + np.exp(-np.asarray(logits, dtype=np.float64))), thresholds)

    def activations(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits)

    def record(self, activated, names, thresholds=None, options=None) -> dict[str, Any]:
        values = [float(v) for v in activated]
        decided = decide(np.asarray([values]), thresholds)[0]
        return {"labels": [name for name, flag in zip(names, decided) if flag], "probs": dict(zip(names, values))}

    def prediction_fields(self, names: Sequence[str]) -> list[pa.Field]:
        return [pa.field("labels", pa.list_(pa.string())), pa.field("probs", class_probabilities(names))]

    def correct(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Rows whose every label is decided right (at 0.5: the tuned thresholds come after training)."""
        return ((logits > 0) == (labels > 0.5)).all(-1).sum()

    def scores(self, predictions: np.ndarray, labels: np.ndarray, num_outputs: int) -> dict[str, float]:
        return multi_label_scores(predictions, labels)

    def balanced_class_weights(self, labels: Sequence, id2label: Mapping[int, str]) -> list[float]:
        """Each label's negatives / positives (binary cross-entropy's `pos_weight`); a label that no row, or every
        row, carries is named, with the fix."""
        rows = len(labels)
        counts = [0] * len(id2label)
        for label in labels:
            for index, flag in enumerate(label):
                counts[index] += flag > 0.5
        empty = [id2label[index] for index, count in enumerate(counts) if count in (0, rows)]
        if empty:
            raise ValueError(
                f"--class_weights balanced: label(s) {empty} have no rows marked, or every row marked; give the "
                "weights as numbers, or add rows."
            )
        return [(rows - count) / count for count in counts]

    def names_in_value(self, value: Any, where: str) -> list:
        """The label names a multi-label value lists; numbers (indices, multi-hot) cannot name the classes."""
        items = multi_label_items(value, where)
        if not all(isinstance(item, str) for item in items):
            raise LabelError(
                f"{where}: the multi-label values are numbers (class indices or multi-hot); pass --label_names with "
                "the names in index order."
            )
        return items

    def description(self, names: Sequence[str]) -> str:
        return f"a text to tag with any of the labels: {', '.join(names)} (or none)"

    def summary(self, counts: PredictionCounts, names: Sequence[str]) -> str:
        return ", ".join(f"{name} {counts.labels[name]}" for name in names)


def require_multi_label(problem_type: str | None) -> None:
    """Thresholds decide multi-label outputs only (an unknown problem type is decided by the first labels seen)."""
    if problem_type not in (None, MULTI_LABEL.name):
        raise ValueError(f"--tune_thresholds is for multi-label classifiers; this one is {problem_type}.")


MULTI_LABEL = MultiLabel()
