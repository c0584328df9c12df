"""The problem kinds by name, and the one rule that tells a model's kind from its config."""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from modeling_dhrd.classification_loss import problem_type_for
from modeling_dhrd.configuration_dhrd import OPTION_SCORE_LABEL, ProblemType

from .base import ProblemKind
from .multi_label import MULTI_LABEL, is_list_value
from .multiple_choice import MULTIPLE_CHOICE
from .ordinal import ORDINAL
from .regression import REGRESSION
from .single_label import SINGLE_LABEL

if TYPE_CHECKING:  # transformers.trainer_utils imports peft and accelerate: tasks read files without them
    from transformers import EvalPrediction

__all__ = [
    "KINDS",
    "MULTIPLE_CHOICE",
    "MULTI_LABEL",
    "ORDINAL",
    "REGRESSION",
    "SINGLE_LABEL",
    "ProblemKindChoice",
    "ProblemType",
    "compute_classification_metrics",
    "get_kind",
    "infer_kind",
    "kind_of",
    "named_kind",
]

KINDS: dict[str, ProblemKind] = {
    kind.name: kind for kind in (SINGLE_LABEL, MULTI_LABEL, REGRESSION, MULTIPLE_CHOICE, ORDINAL)
}
# What `--problem_type` may name: every kind but multiple choice, which `--options_column` asks for.
ProblemKindChoice = Literal[tuple(name for name in KINDS if name != MULTIPLE_CHOICE.name)]


def get_kind(name: str) -> ProblemKind:
    if name not in KINDS:
        raise ValueError(f"Unknown problem kind {name!r}; use one of {list(KINDS)}.")
    return KINDS[name]


def named_kind(config: Any) -> ProblemKind | None:
    """The kind a model's config names: its `problem_kind` (DHRD configs and exports); for a config without one (a
    plain transformers classifier), an option scorer's one output, else its
    `problem_type`; None where it names none (transformers then infers it from the labels)."""
    name = getattr(config, "problem_kind", None)
    if name is not None:
        return get_kind(name)
    if [str(config.id2label[i]) for i in range(config.num_labels)] == [OPTION_SCORE_LABEL]:
        return MULTIPLE_CHOICE
    return get_kind(config.problem_type) if config.problem_type else None


def kind_of(config: Any) -> ProblemKind:
    """A model's kind: the one its config names, else what transformers infers (one output: regression)."""
    named = named_kind(config)
    if named is not None:
        return named
    return REGRESSION if config.num_labels == 1 else SINGLE_LABEL


def infer_kind(value: Any, num_labels: int) -> ProblemKind:
    """For a label value given without a kind: transformers' rule (`problem_type_for`), a list being several labels."""
    return get_kind(problem_type_for(num_labels, several_per_row=is_list_value(value)))


def compute_classification_metrics(
    eval_prediction: "EvalPrediction",
    kind: str | ProblemKind = SINGLE_LABEL.name,
    thresholds: Sequence[float] | None = None,
) -> dict[str, float]:
    """The metrics of `kind` for a Trainer's predictions (multi-label decisions at `thresholds`, else 0.5).
    `DHRDTrainer`'s default `compute_metrics` calls it with its model's kind and tuned thresholds."""
    kind = get_kind(kind) if isinstance(kind, str) else kind
    return kind.metrics(eval_prediction.predictions, eval_prediction.label_ids, thresholds)
