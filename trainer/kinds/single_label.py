"""Single-label classification: one class per row (a name or an index, `labels.label_index`); decided by argmax;
scored by accuracy and macro-F1 over all classes."""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from .base import PredictionCounts, ProblemKind, class_probabilities
from .labels import label_index
from .metrics import accuracy, macro_f1


class SingleLabel(ProblemKind):
    name = problem_type = "single_label_classification"
    best_metric = ("macro_f1", True)
    metric_directions = {"accuracy": True, "macro_f1": True}
    one_label_per_row = True

    def encode_target(self, value: Any, label2id: Mapping[str, int], where: str, indices: bool = False) -> int:
        return label_index(value, label2id, where)

    def answer_text(self, target: Any, id2label: Mapping[int, str]) -> str:
        return str(id2label[int(target)])

    def competing_labels(self, target: Any, id2label: Mapping[int, str]) -> list[str]:
        return [str(name) for index, name in id2label.items() if index != target]

    def decide(self, logits: np.ndarray, thresholds: Sequence[float] | None = None) -> np.ndarray:
        return np.asarray(logits, dtype=np.float64).argmax(-1)

    def activations(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits, dim=-1)

    def record(self, activated, names, thresholds=None, options=None) -> dict[str, Any]:
        values = [float(v) for v in activated]
        return {"label": names[max(range(len(values)), key=values.__getitem__)], "probs": dict(zip(names, values))}

    def prediction_fields(self, names: Sequence[str]) -> list[pa.Field]:
        return [pa.field("label", pa.string()), pa.field("probs", class_probabilities(names))]

    def correct(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return (logits.argmax(-1) == labels).sum()

    def scores(self, predictions: np.ndarray, labels: np.ndarray, num_outputs: int) -> dict[str, float]:
        return {"accuracy": accuracy(predictions, labels), "macro_f1": macro_f1(predictions, labels, num_outputs)}

    def balanced_class_weights(self, labels: Sequence, id2label: Mapping[int, str]) -> list[float]:
        """scikit-learn's 'balanced': rows / (labels x rows of the class); a class without rows is named, with the
        fix."""
        counts = [0] * len(id2label)
        for label in labels:
            counts[int(label)] += 1
        empty = [id2label[index] for index, count in enumerate(counts) if count == 0]
        if empty:
            raise ValueError(
                f"--class_weights balanced: label(s) {empty} have no training rows; give the weights as numbers, or "
                "add rows."
            )
        return [len(labels) / (len(id2label) * count) for count in counts]

    def description(self, names: Sequence[str]) -> str:
        return f"a text to classify as one of: {', '.join(names)}"

    def summary(self, counts: PredictionCounts, names: Sequence[str]) -> str:
        return ", ".join(f"{name} {counts.labels[name]}" for name in names)


SINGLE_LABEL = SingleLabel()
