"""What a label is under each of transformers' `problem_type`s, in one place: how a data value becomes the pooled
head's target, how the target is verbalised in a training sequence and a teacher prompt, and how logits become
predictions.

- `single_label_classification`: one class (a name or an index; `labels.label_index`). Prediction: argmax.
- `multi_label_classification`: any subset of the classes, as a multi-hot float vector. A value may be a list of
  names, a multi-hot list (K numbers in {0, 1}), class indices (in a `Sequence(ClassLabel)` column, as Hub
  datasets store them), or a string of names joined by commas (CSV cells; "" is the empty set). Several 0/1
  columns are `--label_columns` (`dataset_args`). Prediction: sigmoid(logit) > 0.5 per class.
- `regression`: a number (one output). Prediction: the logit itself.
"""

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

import numpy as np
import torch

from .labels import LabelError, label_index

ProblemType = Literal["single_label_classification", "multi_label_classification", "regression"]
PROBLEM_TYPES = get_args(ProblemType)
SINGLE_LABEL, MULTI_LABEL, REGRESSION = PROBLEM_TYPES
MULTI_LABEL_THRESHOLD = 0.5  # on the sigmoid: a logit above 0
NO_LABEL_ANSWER = "none"  # the verbalised empty label set


def is_list_value(value: Any) -> bool:
    return isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim == 1)


def multi_label_items(value: Any, where: str) -> list:
    """The items a multi-label value lists: a list as given, names split at commas (a CSV cell; "" is none)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise LabelError(f"{where}: no labels; give a list (empty for none) or remove the row.")
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


def regression_target(value: Any, where: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise LabelError(f"{where}: regression target {value!r} is not a number.") from None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise LabelError(f"{where}: regression target {value!r} is not a number.")
    if not math.isfinite(float(value)):
        raise LabelError(f"{where}: regression target {value} is not a finite number; fill it in or remove the row.")
    return float(value)


def encode_target(
    value: Any, problem_type: str, label2id: Mapping[str, int], where: str, indices: bool = False
) -> int | float | list[float]:
    """The pooled head's target for a data value."""
    if problem_type == MULTI_LABEL:
        return multi_hot(value, label2id, where, indices)
    if problem_type == REGRESSION:
        return regression_target(value, where)
    return label_index(value, label2id, where)


def infer_problem_type(value: Any, num_labels: int) -> str:
    """For data given without a problem type (transformers infers it from the labels the same way)."""
    if num_labels == 1:
        return REGRESSION
    return MULTI_LABEL if is_list_value(value) else SINGLE_LABEL


def answer_text(target: int | float | Sequence[float], problem_type: str, id2label: Mapping[int, str]) -> str:
    """The verbalised answer: the label name; the names of the set (comma-joined, or "none"); the number."""
    if problem_type == MULTI_LABEL:
        names = [str(id2label[i]) for i, flag in enumerate(target) if flag >= MULTI_LABEL_THRESHOLD]
        return ", ".join(names) or NO_LABEL_ANSWER
    if problem_type == REGRESSION:
        return f"{float(target):g}"
    return str(id2label[int(target)])


def predictions(logits: np.ndarray, problem_type: str, thresholds: Sequence[float] | None = None) -> np.ndarray:
    """Class indices, multi-hot 0/1 rows (each label's sigmoid above its threshold: `thresholds`, else 0.5), or
    values, from `[n, num_labels]` logits."""
    from .thresholds import decide

    logits = np.asarray(logits, dtype=np.float64)
    if problem_type == MULTI_LABEL:
        return decide(1 / (1 + np.exp(-logits)), thresholds)
    if problem_type == REGRESSION:
        return logits[:, 0] if logits.ndim == 2 else logits
    return logits.argmax(-1)


def activations(logits: torch.Tensor, problem_type: str) -> torch.Tensor:
    """What a prediction reports per class: softmax probabilities, per-class sigmoid probabilities, or the value."""
    if problem_type == MULTI_LABEL:
        return torch.sigmoid(logits)
    if problem_type == REGRESSION:
        return logits
    return torch.softmax(logits, dim=-1)


def prediction_record(
    activated: Sequence[float], problem_type: str, names: Sequence[str], thresholds: Sequence[float] | None = None
) -> dict[str, Any]:
    """One row of `dhrd predict` output from `activations`: `label` + `probs`; `labels` (those above their threshold:
    `thresholds`, else 0.5) + `probs`; or `score`."""
    from .thresholds import decide

    values = [float(v) for v in activated]
    if problem_type == REGRESSION:
        return {"score": values[0]}
    probs = dict(zip(names, values))
    if problem_type == MULTI_LABEL:
        decided = decide(np.asarray([values]), thresholds)[0]
        return {"labels": [name for name, flag in zip(names, decided) if flag], "probs": probs}
    return {"label": names[max(range(len(values)), key=values.__getitem__)], "probs": probs}
