"""Per-label decision thresholds for multi-label classifiers, tuned on validation rows for F1.

A multi-label head decides each label on its own sigmoid probability; 0.5 is right only for a label whose
positives are as common as its negatives. For each label the threshold that maximises that label's F1 on the
validation rows is kept (the midpoint between two neighbouring probabilities, so a rounding of the scores does not
move a decision; of equal F1, the one nearest 0.5). A label without positives in validation keeps 0.5.
"""

import numpy as np

DEFAULT_THRESHOLD = 0.5  # on the sigmoid: a logit above 0


def _f1(predicted: np.ndarray, gold: np.ndarray) -> float:
    true_positive = float((predicted & gold).sum())
    denominator = float(predicted.sum() + gold.sum())
    return 2 * true_positive / denominator if denominator else 0.0


def tune_thresholds(probabilities: np.ndarray, labels: np.ndarray) -> list[float]:
    """One threshold per label (`probabilities`, `labels`: `[rows, labels]`; labels multi-hot)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels) > 0.5
    thresholds = []
    for column in range(probabilities.shape[1]):
        scores, gold = probabilities[:, column], labels[:, column]
        if not gold.any():
            thresholds.append(DEFAULT_THRESHOLD)
            continue
        values = np.unique(scores)
        candidates = np.concatenate([[DEFAULT_THRESHOLD], (values[:-1] + values[1:]) / 2, [values[0] / 2]])
        best = max(candidates, key=lambda t: (_f1(scores > t, gold), -abs(t - DEFAULT_THRESHOLD)))
        thresholds.append(float(best))
    return thresholds


def decide(probabilities: np.ndarray, thresholds: list[float] | None) -> np.ndarray:
    """Multi-hot 0/1 decisions: each label's probability above its threshold (0.5 without thresholds)."""
    limits = np.asarray(thresholds if thresholds is not None else DEFAULT_THRESHOLD, dtype=np.float64)
    return (np.asarray(probabilities, dtype=np.float64) > limits).astype(np.int64)
