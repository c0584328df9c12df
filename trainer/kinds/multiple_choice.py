"""Multiple choice: each row lists its options and the label is the gold option (an index, or the option's text:
`trainer.data.options`). The model scores each `[context, option]` input with one output and a row's options
compete through a softmax; the prediction is the best-scored option; scored by accuracy.

The DHRD model computes its own loss over the options (`DHRDForMultipleChoice`, no `problem_type`); its native
export scores one option per input with one real-valued output, which transformers calls `regression`.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from modeling_dhrd.configuration_dhrd import OPTION_SCORE_LABEL

from .base import PredictionCounts, ProblemKind
from .labels import LabelError
from .metrics import accuracy

TEACHER_TEMPLATE = (
    'Here is {description}.\n\n{input}\n\nThe right option is: "{answer}"\n'
    "Explain in two or three sentences why this option is right and the others are not. Do not mention option "
    "numbers. End your explanation with {sentinel}"
)


def option_name(index: int) -> str:
    """How an option position is named in labels, summaries and prompts: 'Option 1' for index 0."""
    return f"Option {index + 1}"


class MultipleChoice(ProblemKind):
    name = "multiple_choice"
    problem_type = None
    best_metric = ("accuracy", True)
    metric_directions = {"accuracy": True}
    teacher_template = TEACHER_TEMPLATE
    weights_classes = False
    scores_options = True
    truncation_side = "left"  # an option row loses its context's start, never the option
    fixed_label_names = (OPTION_SCORE_LABEL,)  # the one output of an option scorer

    def require_batchable(self, rows: Mapping[str, Sequence], where: str) -> None:
        """Training batches stack every row's options into one `[batch, num_choices, seq]` tensor (and `dhrd compare`
        scores its split in them): one option count for all rows."""
        option_lists = rows["options"]
        first = len(option_lists[0]) if len(option_lists) else 0
        for row, options in enumerate(option_lists):
            if len(options) != first:
                raise LabelError(
                    f"{where} row {row}: {len(options)} options where row 0 has {first}; training needs the same "
                    "number of options in every row (split the data by option count, or pad with a never-right "
                    "option)."
                )

    def encode_target(self, value: Any, label2id: Mapping[str, int], where: str, indices: bool = False) -> int:
        raise TypeError("A multiple-choice label is the gold option among the row's own options: `gold_option`.")

    def answer_text(self, target: Any, id2label: Mapping[int, str]) -> str:
        return option_name(int(target))

    def decide(self, logits: np.ndarray, thresholds: Sequence[float] | None = None) -> np.ndarray:
        return np.asarray(logits, dtype=np.float64).argmax(-1)

    def activations(self, logits: torch.Tensor) -> torch.Tensor:
        return logits

    def record(self, activated, names=(), thresholds=None, options=None) -> dict[str, Any]:
        """The chosen option's text and index, and every option's probability (softmax over the row's options, in
        option order)."""
        probs = torch.softmax(torch.as_tensor(activated).float(), -1)
        best = int(probs.argmax())
        return {"option": options[best], "option_index": best, "probs": [float(p) for p in probs]}

    def prediction_fields(self, names: Sequence[str]) -> list[pa.Field]:
        """The probabilities are a list: rows have their own options, and their own number of them."""
        return [
            pa.field("option", pa.string()),
            pa.field("option_index", pa.int64()),
            pa.field("probs", pa.list_(pa.float64())),
        ]

    def correct(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return (logits.argmax(-1) == labels).sum()

    def scores(self, predictions: np.ndarray, labels: np.ndarray, num_outputs: int) -> dict[str, float]:
        return {"accuracy": accuracy(predictions, labels)}

    def card_labels(self, names: Sequence[str]) -> str:
        return "It scores the options of multiple-choice questions."

    def description(self, names: Sequence[str]) -> str:
        return "a question with several options, one of them right"

    def summary(self, counts: PredictionCounts, names: Sequence[str]) -> str:
        return ", ".join(f"{option_name(index)} {counts.labels[index]}" for index in sorted(counts.labels))

    def count(self, counts: PredictionCounts, record: Mapping[str, Any]) -> None:
        counts.rows += 1
        counts.labels[record["option_index"]] += 1


MULTIPLE_CHOICE = MultipleChoice()
