"""Scores without extra dependencies, which the problem kinds report: accuracy and macro-F1 (single-label; accuracy
for multiple choice), micro-/macro-F1 and exact match of multi-hot decisions (multi-label), MSE, Pearson and Spearman
correlation (regression)."""

import numpy as np


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


def multi_label_scores(predicted: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Micro-F1 (over every decision), macro-F1 (mean over classes) and exact match (every class right) of 0/1
    `[n, num_labels]` predictions against multi-hot labels."""
    predicted, labels = np.asarray(predicted) > 0.5, np.asarray(labels) > 0.5
    true_positive = (predicted & labels).sum(0).astype(float)
    denominator = (predicted.sum(0) + labels.sum(0)).astype(float)
    per_class = np.divide(2 * true_positive, denominator, out=np.zeros_like(true_positive), where=denominator > 0)
    micro_denominator = float(denominator.sum())
    return {
        "micro_f1": float(2 * true_positive.sum() / micro_denominator) if micro_denominator else 0.0,
        "macro_f1": float(per_class.mean()) if per_class.size else 0.0,
        "exact_match": float((predicted == labels).all(-1).mean()) if labels.size else 0.0,
    }


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks with ties averaged (as Spearman's correlation needs)."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), dtype=float)
    ranks[order] = np.arange(len(values), dtype=float)
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return 0.0  # undefined for constant predictions or targets: reported as no correlation
    return float(np.corrcoef(a, b)[0, 1])


def regression_scores(predicted: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    predicted, targets = np.asarray(predicted, dtype=float).ravel(), np.asarray(targets, dtype=float).ravel()
    return {
        "mse": float(((predicted - targets) ** 2).mean()) if targets.size else 0.0,
        "pearson": _correlation(predicted, targets),
        "spearman": _correlation(_ranks(predicted), _ranks(targets)),
    }


def eval_scores(metrics: dict) -> dict[str, float]:
    """The scores among the Trainer's `eval_*` entries (no loss, run time or throughput), prefix removed: what a
    training record and a model card report."""
    return {
        key.removeprefix("eval_"): value
        for key, value in metrics.items()
        if key.startswith("eval_") and isinstance(value, float) and not key.endswith(("loss", "runtime", "per_second"))
    }
