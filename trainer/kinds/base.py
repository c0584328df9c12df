"""What a problem kind decides, as one interface: every reader of labels, every metric, prediction record and
teacher prompt asks the kind, never the shapes of arrays.

A kind owns
- the target: how a data value becomes the pooled head's target (`encode_target`) and how the target is verbalised
  in a training sequence and a teacher prompt (`answer_text`, `teacher_template`);
- the decision: how logits become predictions (`decide`), what a prediction reports (`activations`, `record`, typed
  for a parquet output by `prediction_schema`) and what a training log counts as right (`correct`);
- the scores: its metrics (`scores`, `metrics`) with whether each is better higher (`metric_directions`), the
  headline one early stopping follows (`best_metric`) and what `dhrd predict` says at the end (`summary`);
- its names: the one the project stores (`DHRDConfig.problem_kind`) and transformers' `problem_type` the DHRD model
  trains with (the export decides its own: an option scorer exports as a one-output `regression` classifier).

The kinds are modules of this package (`single_label`, `multi_label`, `regression`, `multiple_choice`, `ordinal`),
found by name in `registry`.
"""

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from .labels import label_value


@dataclass
class PredictionCounts:
    """What a prediction summary says, gathered while the output is written: rows per predicted label (per chosen
    option position for multiple choice; rows carrying each label for multi-label), or the range of scores."""

    rows: int = 0
    labels: Counter = field(default_factory=Counter)
    score_sum: float = 0.0
    score_min: float = float("inf")
    score_max: float = float("-inf")


def class_probabilities(names: Sequence[str]) -> pa.DataType:
    """A record's `probs` over named classes: one float per class, named as the record's JSON keys name them."""
    return pa.struct([pa.field(str(name), pa.float64()) for name in names])


class ProblemKind(ABC):
    """One problem kind; the instances in `registry.KINDS` are the only ones."""

    name: str  # `DHRDConfig.problem_kind`
    problem_type: str | None  # transformers' `problem_type` of the DHRD model (None: the model's own loss)
    best_metric: tuple[str, bool]  # (metric, greater is better) for early stopping and the best checkpoint
    # Every metric `scores` reports -> whether greater is better: the direction `--metric_for_best_model` takes
    # (transformers would guess it from the name, and call a lower-is-better MSE higher-is-better).
    metric_directions: Mapping[str, bool]
    teacher_template: str | None = None  # the teacher prompt for data of this kind (None: the default one)
    # Batches of option rows `[batch, num_choices, seq]` (the model scores each option), not of inputs `[batch, seq]`.
    scores_options: bool = False
    # The type of a normalised row's `label` (a `datasets` dtype): what `encode_target` returns, or the gold option.
    target_dtype: str = "int64"
    # Which end of a long input training cuts (None: the tokenizer's side).
    truncation_side: str | None = None
    weights_classes: bool = True  # `--class_weights` applies (the kinds whose outputs are classes)
    # One label per row, as a softmax over classes: what CoT and reasoning-head decoding verbalise and a vLLM
    # `/classify` server returns.
    one_label_per_row: bool = False
    # The output names when the kind fixes them (an option scorer's one output), else None (the data's labels).
    fixed_label_names: tuple[str, ...] | None = None
    # One number per row, one output: the output is named after the label column.
    single_output: bool = False

    def __repr__(self) -> str:
        return f"<problem kind {self.name}>"

    @abstractmethod
    def encode_target(self, value: Any, label2id: Mapping[str, int], where: str, indices: bool = False) -> Any:
        """The pooled head's target for a data value; a bad value is a `LabelError` naming `where`."""

    def target_feature(self) -> Any:
        """The `datasets` feature of a normalised row's `label`: declared, not inferred, so a user's column that has
        the normalised column's name (a CSV `label` of names is a string column) never lends it its own type."""
        from datasets import Value

        return Value(self.target_dtype)

    @abstractmethod
    def answer_text(self, target: Any, id2label: Mapping[int, str]) -> str:
        """The verbalised answer of a target, in a training sequence and a teacher prompt."""

    def restated_answer(self, target: Any, id2label: Mapping[int, str]) -> str | None:
        """What a teacher's rationale must not say verbatim (it would teach the student to copy the answer): the
        verbalised answer, or None where the answer names no label."""
        return self.answer_text(target, id2label)

    @abstractmethod
    def decide(self, logits: np.ndarray, thresholds: Sequence[float] | None = None) -> np.ndarray:
        """Predictions from `[n, outputs]` logits: class indices, multi-hot rows, values or chosen options."""

    @abstractmethod
    def activations(self, logits: torch.Tensor) -> torch.Tensor:
        """What a prediction reports per output: probabilities, the value, or the option scores."""

    @abstractmethod
    def record(
        self,
        activated: Sequence[float] | torch.Tensor,
        names: Sequence[str],
        thresholds: Sequence[float] | None = None,
        options: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """One row of `dhrd predict` output from `activations`."""

    @abstractmethod
    def prediction_fields(self, names: Sequence[str]) -> list[pa.Field]:
        """The typed columns of a `record` (in its order) with these label names."""

    def prediction_schema(self, id_column: str, id_type: pa.DataType, names: Sequence[str]) -> pa.Schema:
        """The columns of `dhrd predict`'s parquet output: the row id, typed as the data types it, then the record's.
        Declared, never inferred from the first rows: a first row group without a single label would type `labels`
        as nulls, and every later group that has one would not fit."""
        return pa.schema([pa.field(id_column, id_type), *self.prediction_fields(names)])

    @abstractmethod
    def correct(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor | None:
        """Rows predicted right in a training batch (None: the kind has no right answer, as regression)."""

    @abstractmethod
    def scores(self, predictions: np.ndarray, labels: np.ndarray, num_outputs: int) -> dict[str, float]:
        """The kind's metrics of decided predictions against labels."""

    def metrics(self, logits: np.ndarray, labels: np.ndarray, thresholds: Sequence[float] | None = None) -> dict:
        """The kind's metrics of logits (decided at `thresholds` where the kind has them)."""
        logits = np.asarray(logits[0] if isinstance(logits, tuple) else logits)
        return self.scores(self.decide(logits, thresholds), np.asarray(labels), logits.shape[-1])

    @abstractmethod
    def description(self, names: Sequence[str]) -> str:
        """A teacher prompt's 'Here is <description>.' for own data of this kind with these label names."""

    def card_labels(self, names: Sequence[str]) -> str:
        """What a model card says of the outputs (and how to read them where a plain `pipeline` would not)."""
        return "Labels: " + ", ".join(f"`{name}`" for name in names) + "."

    @abstractmethod
    def summary(self, counts: PredictionCounts, names: Sequence[str]) -> str:
        """`dhrd predict`'s closing summary of what was predicted."""

    def competing_labels(self, target: Any, id2label: Mapping[int, str]) -> list[str]:
        """The label names a teacher's rationale for `target` must not conclude with (the label consistency filter):
        none, unless the kind names one label per row (there: every other label)."""
        return []

    def require_one_label(self, purpose: str, fix: str = "") -> None:
        """Refuse `purpose` (CoT or reasoning-head decoding, an explanation, a vLLM `/classify` server) unless this
        kind predicts one label per row, a softmax over classes: what those decode, explain or return."""
        if not self.one_label_per_row:
            raise ValueError(f"{purpose} reads one label per row (a softmax over classes); this is {self.name}{fix}.")

    def require_batchable(self, rows: Mapping[str, Sequence], where: str) -> None:
        """Refuse rows that training batches cannot stack (what every kind's rows can, but multiple choice's of
        several option counts), before a run starts: `where` names the file or split."""
        return None

    def balanced_class_weights(self, labels: Sequence, id2label: Mapping[int, str]) -> list[float]:
        """`--class_weights balanced` from the training rows' targets (the kinds with classes override it)."""
        raise ValueError(f"--class_weights weight labels; {self.name} has none to weight: drop it.")

    def integers_name_labels(self, names: Sequence[str]) -> bool:
        """Whether an integer label is read as the label of that name (else as a class index), decided once for a
        column from its label names."""
        return False

    def names_of_numbers(self, found: Sequence[int]) -> list[str] | None:
        """Label names for integer labels found in the data, or None: they are class indices 0..K-1 (the kinds
        whose integers are values name them)."""
        return None

    def order_names(self, names: set[str], where: str) -> list[str]:
        """Label names found in the data, in index order (sorted: `--label_names` sets another order)."""
        return sorted(names)

    def names_in_value(self, value: Any, where: str) -> list:
        """The label names (or indices) a data value lists, for label names found in the data."""
        return [label_value(value, where)]

    def count(self, counts: PredictionCounts, record: Mapping[str, Any]) -> None:
        """Adds one output record to `counts` (labels; the kinds that predict numbers override it)."""
        counts.rows += 1
        counts.labels.update(record.get("labels", [record.get("label")]))
