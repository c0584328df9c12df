"""Regression: one number per row (one output); the prediction is the logit itself; scored by MSE, Pearson and
Spearman correlation. Never guessed from data: it is asked for (`--problem_type regression`)."""

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from .base import PredictionCounts, ProblemKind
from .labels import LabelError
from .metrics import regression_scores

TEACHER_TEMPLATE = (
    "Here is {description}.\n\n{input}\n\nThe score is: {answer}.\n"
    "Explain in two or three sentences what in the text leads to this score. Do not restate the number. End your "
    "explanation with {sentinel}"
)


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


class Regression(ProblemKind):
    name = problem_type = "regression"
    best_metric = ("mse", False)
    metric_directions = {"mse": False, "pearson": True, "spearman": True}
    target_dtype = "float64"
    teacher_template = TEACHER_TEMPLATE
    weights_classes = False
    single_output = True

    def encode_target(self, value: Any, label2id: Mapping[str, int], where: str, indices: bool = False) -> float:
        return regression_target(value, where)

    def answer_text(self, target: Any, id2label: Mapping[int, str]) -> str:
        return f"{float(target):g}"

    def decide(self, logits: np.ndarray, thresholds: Sequence[float] | None = None) -> np.ndarray:
        logits = np.asarray(logits, dtype=np.float64)
        return logits[:, 0] if logits.ndim == 2 else logits

    def activations(self, logits: torch.Tensor) -> torch.Tensor:
        return logits

    def record(self, activated, names, thresholds=None, options=None) -> dict[str, Any]:
        return {"score": float(activated[0])}

    def prediction_fields(self, names: Sequence[str]) -> list[pa.Field]:
        return [pa.field("score", pa.float64())]

    def correct(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        return None

    def scores(self, predictions: np.ndarray, labels: np.ndarray, num_outputs: int) -> dict[str, float]:
        return regression_scores(predictions, labels)

    def description(self, names: Sequence[str]) -> str:
        return f"a text to score ({', '.join(names)})"

    def summary(self, counts: PredictionCounts, names: Sequence[str]) -> str:
        mean = counts.score_sum / counts.rows
        return f"score min {counts.score_min:.4g}, mean {mean:.4g}, max {counts.score_max:.4g}"

    def count(self, counts: PredictionCounts, record: Mapping[str, Any]) -> None:
        counts.rows += 1
        score = record["score"]
        counts.score_sum += score
        counts.score_min, counts.score_max = min(counts.score_min, score), max(counts.score_max, score)


REGRESSION = Regression()
