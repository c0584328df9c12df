"""Classification metrics without extra dependencies: accuracy and macro-F1 (the default `compute_metrics`)."""

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # transformers.trainer_utils imports peft and accelerate: tasks read files without them
    from transformers import EvalPrediction


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    return float((predictions == labels).mean()) if labels.size else 0.0


def f1_per_class(predictions: np.ndarray, labels: np.ndarray, classes: list[int]) -> list[float]:
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    scores = []
    for cls in classes:
        true_positive = float(((predictions == cls) & (labels == cls)).sum())
        predicted = float((predictions == cls).sum())
        actual = float((labels == cls).sum())
        denominator = predicted + actual
        scores.append(2 * true_positive / denominator if denominator else 0.0)
    return scores


def macro_f1(predictions: np.ndarray, labels: np.ndarray, num_labels: int | None = None) -> float:
    """Mean F1 over classes; with `num_labels`, over all classes, else over those present in labels or predictions."""
    classes = (
        list(range(num_labels))
        if num_labels
        else sorted(set(np.asarray(labels).tolist()) | set(np.asarray(predictions).tolist()))
    )
    return float(np.mean(f1_per_class(predictions, labels, classes))) if classes else 0.0


def compute_classification_metrics(eval_prediction: "EvalPrediction") -> dict[str, float]:
    """Accuracy and macro-F1 from logits `[n, num_labels]` and gold label ids."""
    logits = eval_prediction.predictions
    logits = logits[0] if isinstance(logits, tuple) else logits
    predictions = np.asarray(logits).argmax(-1)
    labels = np.asarray(eval_prediction.label_ids)
    return {"accuracy": accuracy(predictions, labels), "macro_f1": macro_f1(predictions, labels, logits.shape[-1])}


def eval_scores(metrics: dict) -> dict[str, float]:
    """The scores among the Trainer's `eval_*` entries (no loss, run time or throughput), prefix removed: what a
    training record and a model card report."""
    return {
        key.removeprefix("eval_"): value
        for key, value in metrics.items()
        if key.startswith("eval_") and isinstance(value, float) and not key.endswith(("loss", "runtime", "per_second"))
    }
