"""Ordinal regression: one of K classes that have an order (ratings, severities, "disagree" .. "agree").

Trained as one softmax over the K classes with an ordinal loss, cross-entropy plus the squared earth mover's distance
between the predicted and the true cumulative distributions (`modeling_dhrd.classification_loss.ordinal_loss_sum`,
torch-only: it is copied into every checkpoint). Of the usual recipes, cumulative logits (K - 1 threshold outputs,
e.g. CORAL) and regression with rounding (one output) both leave the head without one output per class, so an export
would not load as a classifier over the K classes; this one does, and its `pipeline` returns the probabilities this
kind decides on.

Decided at the median of the predicted distribution (the first class whose cumulative probability reaches 1/2), the
decision that minimises the expected absolute error; scored by mean absolute error in classes (the headline, lower
is better), quadratic-weighted kappa and accuracy. The class order is the label names' order: `--label_names`, a
`ClassLabel` feature or a task's names; names found in the data are put in order only when they are all numbers.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from modeling_dhrd.classification_loss import ORDINAL_REGRESSION

from .labels import LabelError
from .metrics import accuracy
from .single_label import SingleLabel

TEACHER_TEMPLATE = (
    "Here is {description}.\n\n{input}\n\nThe rating is: {answer}.\n"
    "Explain in two or three sentences what in the text places it at this rating rather than one above or below. "
    "Do not restate the rating. End your explanation with {sentinel}"
)


def _is_integer(name: str) -> bool:
    try:
        return str(int(name)) == name
    except ValueError:
        return False


def median_class(probabilities: np.ndarray) -> np.ndarray:
    """The first class whose cumulative probability reaches 1/2, per row of `[n, K]` probabilities."""
    below = np.cumsum(np.asarray(probabilities, dtype=np.float64), axis=-1)
    return np.minimum((below < 0.5).sum(-1), probabilities.shape[-1] - 1)


def mean_absolute_error(predictions: np.ndarray, labels: np.ndarray) -> float:
    """How many classes off a prediction is, on average."""
    predictions, labels = np.asarray(predictions, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    return float(np.abs(predictions - labels).mean()) if labels.size else 0.0


def quadratic_weighted_kappa(predictions: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    """Cohen's kappa with quadratic weights (scikit-learn's `cohen_kappa_score(weights="quadratic")`): agreement
    beyond chance, a disagreement of d classes weighing d². 0.0 where chance cannot be told apart (one class only)."""
    predictions, labels = np.asarray(predictions, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    observed = np.zeros((num_classes, num_classes))
    np.add.at(observed, (labels, predictions), 1.0)
    expected = np.outer(observed.sum(1), observed.sum(0)) / max(observed.sum(), 1.0)
    grid = np.arange(num_classes)
    weights = (grid[:, None] - grid[None, :]) ** 2
    chance = float((weights * expected).sum())
    return 1.0 - float((weights * observed).sum()) / chance if chance else 0.0


class OrdinalRegression(SingleLabel):
    name = ORDINAL_REGRESSION
    problem_type = "single_label_classification"
    best_metric = ("mae", False)
    metric_directions = {"mae": False, "qwk": True, "accuracy": True}
    teacher_template = TEACHER_TEMPLATE
    weights_classes = False

    def integers_name_labels(self, names: Sequence[str]) -> bool:
        """Ratings: where every label name is an integer ("1".."5"), an integer label is its name, never a class
        index (read as an index, a 5 would be out of range and a 1 the second rating)."""
        return bool(names) and all(_is_integer(name) for name in names)

    def names_of_numbers(self, found: Sequence[int]) -> list[str]:
        """Integer labels found in the data are ratings: the scale from the lowest to the highest, a rating no row
        has included (its place on the scale is known)."""
        low, high = min(found), max(found)
        if low == high:
            raise LabelError(f"one rating only ({low}): pass --label_names with the whole scale, lowest first.")
        return [str(number) for number in range(low, high + 1)]

    def decide(self, logits: np.ndarray, thresholds: Sequence[float] | None = None) -> np.ndarray:
        logits = np.asarray(logits, dtype=np.float64)
        exp = np.exp(logits - logits.max(-1, keepdims=True))
        return median_class(exp / exp.sum(-1, keepdims=True))

    def record(self, activated, names, thresholds=None, options=None) -> dict[str, Any]:
        values = [float(v) for v in activated]
        return {"label": names[int(median_class(np.asarray([values]))[0])], "probs": dict(zip(names, values))}

    def correct(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        below = torch.softmax(logits.float(), dim=-1).cumsum(-1)
        return ((below < 0.5).sum(-1).clamp(max=logits.shape[-1] - 1) == labels).sum()

    def scores(self, predictions: np.ndarray, labels: np.ndarray, num_outputs: int) -> dict[str, float]:
        """A prediction outside the classes (-1: a decoded answer that names none) scores as the worst answer, the
        class farthest from the gold one, so an unreadable answer never counts as a near miss."""
        predictions, labels = np.asarray(predictions, dtype=np.int64), np.asarray(labels, dtype=np.int64)
        farthest = np.where(labels < num_outputs / 2, num_outputs - 1, 0)
        valid = (predictions >= 0) & (predictions < num_outputs)
        scored = np.where(valid, predictions, farthest)
        return {
            "mae": mean_absolute_error(scored, labels),
            "qwk": quadratic_weighted_kappa(scored, labels, num_outputs),
            "accuracy": accuracy(predictions, labels),
        }

    def order_names(self, names: set[str], where: str) -> list[str]:
        """Names found in the data, in order: only numbers have one that can be read off (two names of one number,
        "1" and "1.0", are refused: their order would be a guess)."""
        try:
            values = {name: float(name) for name in names}
        except ValueError:
            values = {}
        if not values or any(np.isnan(v) for v in values.values()):
            raise LabelError(
                f"{where}: ordered classes need their order, which names like {sorted(names)[:5]} do not tell; "
                "pass --label_names with the names from lowest to highest."
            )
        ordered = sorted(names, key=values.__getitem__)
        same = [(a, b) for a, b in zip(ordered, ordered[1:]) if values[a] == values[b]]
        if same:
            first, second = same[0]
            raise LabelError(f"{where}: the labels {first!r} and {second!r} are one number; write it one way.")
        return ordered

    def card_labels(self, names: Sequence[str]) -> str:
        order = " < ".join(f"`{name}`" for name in names)
        return (
            f"Ordered labels: {order}. The model's decision (what `dhrd predict` reports and its metrics score) is "
            "the median class, the first in this order whose cumulative probability reaches 1/2; a plain `pipeline` "
            "returns the most probable one: call it with `top_k=None` for every class's probability."
        )

    def description(self, names: Sequence[str]) -> str:
        return f"a text to rate on the ordered scale: {' < '.join(names)}"


ORDINAL = OrdinalRegression()
