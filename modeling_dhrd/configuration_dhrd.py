"""Configuration of Dual-Head Reasoning Distillation (DHRD) classifiers.

This file is copied verbatim into every saved checkpoint (remote code), so it imports only `transformers` and its
torch-only sibling `classification_loss` (transformers' problem types, written once there).
"""

import copy
from typing import Any, ClassVar, Literal

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
    MODEL_FOR_MASKED_LM_MAPPING_NAMES,
)
from transformers.utils.type_validators import interval

from .classification_loss import ORDINAL_REGRESSION, PROBLEM_TYPES

# The choices of `pooling` and `head`, typed once (the CLI's `ModelArguments` lists the same ones in `--help`).
Pooling = Literal["last", "mean"]
Head = Literal["linear", "mlp"]
# What the model predicts: transformers' three problem types, multiple choice (one score per option, the options of
# an example compete through a softmax) or ordered classes. The project's `trainer.kinds` has one module per kind.
ProblemType = Literal[PROBLEM_TYPES]
ProblemKindName = Literal[ProblemType, "multiple_choice", "ordinal_regression"]
MULTIPLE_CHOICE = "multiple_choice"
OPTION_SCORE_LABEL = "option_score"  # the one output's name of an option scorer (and of its native export)
# The one map from this project's kind names to transformers' `problem_type` (a name of transformers' is itself).
KIND_PROBLEM_TYPES: dict[str, str | None] = {
    MULTIPLE_CHOICE: None,  # the model's own loss: a softmax over each example's option scores
    ORDINAL_REGRESSION: "single_label_classification",  # a softmax over the classes, an ordinal loss
}


def problem_type_of(problem_kind: str) -> str | None:
    """transformers' `problem_type` of a model of `problem_kind`."""
    return KIND_PROBLEM_TYPES.get(problem_kind, problem_kind)


@strict
class DHRDConfig(PreTrainedConfig):
    r"""
    Configuration of [`DHRDForSequenceClassification`]: a decoder-only backbone with a pooled classification head
    (`score`, used for training and inference) and a reasoning head (`lm_head`, the backbone's own LM head, used only
    in training to learn teacher rationales).

    The backbone's configuration is kept whole as the sub-config `text_config`, like composite models do, so any
    decoder-only architecture known to transformers can serve as backbone.

    Args:
        text_config (`dict` or `PreTrainedConfig`, *optional*):
            Configuration of the decoder-only backbone (e.g. a `LlamaConfig`). Defaults to a default `LlamaConfig`.
        pooling (`str`, *optional*, defaults to `"last"`):
            `"last"` pools the hidden state of the last input token (the paper's choice; with causal attention it
            has seen the whole input), `"mean"` averages the hidden states of all input tokens.
        head (`str`, *optional*, defaults to `"linear"`):
            `"linear"`: one bias-free `score` layer, identical to transformers' native `*ForSequenceClassification`
            (so an export is a rename). `"mlp"`: the paper's 2-layer pooling MLP.
        classifier_dropout (`float`, *optional*, defaults to 0.0):
            Dropout on the pooled hidden state (and inside the MLP head).
        cls_weight (`float`, *optional*, defaults to 1.0):
            Weight of the classification cross-entropy in the joint loss.
        lm_weight (`float`, *optional*, defaults to 1.0):
            Weight of the token-level LM loss of the reasoning head. `0.0` is exactly the pooled baseline.
        reason_marker (`str`, *optional*, defaults to `"\nReasoning:"`):
            Text placed between the input `x` and the rationale `r` in training sequences.
        answer_marker (`str`, *optional*, defaults to `"\nAnswer:"`):
            Text placed between the rationale and the verbalised label.
        has_reasoning_head (`bool`, *optional*, defaults to `True`):
            Whether the model carries the reasoning (LM) head. Exported classifiers set it to `False`.
        lm_loss_chunk_size (`int`, *optional*, defaults to 256):
            Number of token positions whose vocabulary logits are materialised at once by the LM loss.
        class_weights (`list[float]`, *optional*):
            Training-only weights of the classification loss, one per label: cross-entropy's `weight` for single-label
            classification (e.g. "balanced": rows / (labels x rows of the class)), binary cross-entropy's `pos_weight`
            for multi-label. Not for regression. Inference never reads them.
        label_thresholds (`list[float]`, *optional*):
            Multi-label only: each label's decision threshold on its sigmoid probability (default 0.5 for all),
            e.g. tuned for F1 on validation rows (`--tune_thresholds`). Kept by the export; `dhrd predict` uses them.
        problem_kind (`str`, *optional*):
            What the model predicts: `"single_label_classification"`, `"multi_label_classification"`, `"regression"`
            (transformers' `problem_type`, which it sets; unset, it is decided by the first labels seen, as in
            transformers), `"multiple_choice"` (an option scorer, [`DHRDForMultipleChoice`]: one output named
            `"option_score"`, no `problem_type`) or `"ordinal_regression"` (ordered classes, `id2label` in their order:
            one output per class as `"single_label_classification"`, trained with an ordinal loss).
        input_contract (`dict`, *optional*):
            How a row became the model's input in training: `input_format` (text column(s), template, options
            column), `max_input_length` and `truncation_side`. Written by `DHRDTrainer`, kept by every save and by the
            export, read back by `dhrd evaluate` / `dhrd predict` so inference builds inputs as training did.

    Example:

    ```python
    >>> from transformers import LlamaConfig
    >>> from configuration_dhrd import DHRDConfig

    >>> config = DHRDConfig(text_config=LlamaConfig(), num_labels=3, head="mlp")
    ```"""

    model_type = "dhrd"
    sub_configs_defaults: ClassVar[dict[str, SubConfigSpec]] = {
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="llama"),
    }

    text_config: dict | PreTrainedConfig | None = None
    # Types and intervals are checked by `@strict` on construction and on every assignment, like LlamaConfig's.
    pooling: Pooling = "last"
    head: Head = "linear"
    classifier_dropout: int | float = interval(min=0.0, max=1.0, exclude_max=True)(default=0.0)
    cls_weight: int | float = interval(min=0.0)(default=1.0)
    lm_weight: int | float = interval(min=0.0)(default=1.0)
    reason_marker: str = "\nReasoning:"
    answer_marker: str = "\nAnswer:"
    has_reasoning_head: bool = True
    lm_loss_chunk_size: int = interval(min=1)(default=256)
    tie_word_embeddings: bool = False
    class_weights: list | None = None
    label_thresholds: list | None = None
    input_contract: dict | None = None
    problem_kind: ProblemKindName | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        requested_num_labels = kwargs.get("num_labels")
        if (
            requested_num_labels is not None
            and self.id2label is not None
            and requested_num_labels != len(self.id2label)
        ):
            raise ValueError(
                f"num_labels={requested_num_labels} conflicts with the {len(self.id2label)} labels of id2label "
                f"({self.id2label}). A checkpoint's head has a fixed label set: to train a new head, build the model "
                "with `DHRDForSequenceClassification.from_backbone(..., num_labels=...)`."
            )
        super().__post_init__(**kwargs)
        if self.problem_kind == MULTIPLE_CHOICE and requested_num_labels in (None, 1):
            self.id2label, self.label2id = {0: OPTION_SCORE_LABEL}, {OPTION_SCORE_LABEL: 0}  # the one output's name
        elif self.problem_kind is None and self.problem_type is not None:
            self.problem_kind = self.problem_type
        elif self.problem_kind not in (None, MULTIPLE_CHOICE) and self.problem_type is None:
            self.problem_type = problem_type_of(self.problem_kind)
        if self.id2label is not None and self.label2id is None:
            self.label2id = {label: index for index, label in self.id2label.items()}
        # Tying is decided by the backbone: the reasoning head is the backbone's own LM head.
        self.tie_word_embeddings = bool(getattr(self.text_config, "tie_word_embeddings", False))
        _check_decoder_only(self.text_config)

    def validate_dhrd_fields(self) -> None:
        """Part of `@strict` validation (rules across fields): runs on construction and on `config.validate()`."""
        if not isinstance(self.num_labels, int) or self.num_labels < 1:
            raise ValueError(f"`num_labels` must be a positive integer, got {self.num_labels!r}.")
        if self.problem_kind == MULTIPLE_CHOICE:
            if self.id2label != {0: OPTION_SCORE_LABEL} or self.problem_type is not None:
                raise ValueError(
                    f"A multiple-choice config scores each option with one output named {OPTION_SCORE_LABEL!r} and no "
                    f"problem_type; got id2label={self.id2label}, problem_type={self.problem_type!r}."
                )
        elif self.problem_kind is not None and self.problem_type not in (None, problem_type_of(self.problem_kind)):
            raise ValueError(f"problem_kind {self.problem_kind!r} contradicts problem_type {self.problem_type!r}.")
        if self.cls_weight == 0 and self.lm_weight == 0:
            raise ValueError("`cls_weight` and `lm_weight` cannot both be 0: there would be nothing to train.")
        for name in ("reason_marker", "answer_marker"):
            if not getattr(self, name).strip():
                raise ValueError(f"`{name}` must be a non-empty string.")
        if self.class_weights is not None:
            weights = self.class_weights
            if len(weights) != self.num_labels or not all(
                isinstance(w, (int, float)) and not isinstance(w, bool) and w > 0 for w in weights
            ):
                raise ValueError(
                    f"`class_weights` must be {self.num_labels} positive numbers (one per label), got {weights!r}."
                )
            if self.problem_kind in ("regression", ORDINAL_REGRESSION):
                raise ValueError(f"`class_weights` are not part of the {self.problem_kind} loss: drop them.")
        if self.label_thresholds is not None:
            limits = self.label_thresholds
            if len(limits) != self.num_labels or not all(
                isinstance(t, (int, float)) and not isinstance(t, bool) and 0 < t < 1 for t in limits
            ):
                raise ValueError(f"`label_thresholds` must be {self.num_labels} numbers in (0, 1), got {limits!r}.")
            if self.problem_type not in (None, "multi_label_classification"):
                raise ValueError(f"`label_thresholds` decide multi-label outputs; this model is {self.problem_type}.")


# What training decides besides the weights. A config rebuilt from the backbone (the LoRA merge loads a fresh base
# model) lacks it, so every save path copies it with `copy_trained_state`; an export keeps what inference reads
# (the loss settings mean nothing without the reasoning head; the class weights stay as a record of training).
TRAINED_STATE = (
    "cls_weight",
    "lm_weight",
    "lm_loss_chunk_size",
    "class_weights",
    "label_thresholds",
    "input_contract",
)
EXPORTED_STATE = ("class_weights", "label_thresholds", "input_contract")


def copy_trained_state(source: PreTrainedConfig, target: PreTrainedConfig, names: tuple[str, ...] = TRAINED_STATE):
    """Set `names` on `target` from `source`, a trained DHRD config: the one place that says what a model carries
    across a save that rebuilds its config. Unset values (`None`) are not written onto a target without them."""
    for name in names:
        value = getattr(source, name, None)
        if value is not None or hasattr(target, name):
            setattr(target, name, copy.deepcopy(value))


def _check_decoder_only(text_config: PreTrainedConfig) -> None:
    """Refuse backbones whose hidden states are not causal: pooling a prefix is only exact with causal attention."""
    model_type = getattr(text_config, "model_type", "")
    if getattr(text_config, "is_encoder_decoder", False):
        raise ValueError(
            f"DHRD needs a decoder-only backbone, but `{model_type}` is an encoder-decoder model. "
            "Pick a causal LM such as Llama, Qwen2, Gemma or GPT-2."
        )
    encoder_only = model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not getattr(text_config, "is_decoder", False)
    if encoder_only or model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise ValueError(
            f"DHRD needs a decoder-only (causal LM) backbone, but `{model_type}` is not one: its hidden states are "
            "not causal, so pooling the input prefix of `input + rationale` would see the rationale. "
            "Pick a causal LM such as Llama, Qwen2, Gemma or GPT-2."
        )


__all__ = [
    "EXPORTED_STATE",
    "TRAINED_STATE",
    "DHRDConfig",
    "copy_trained_state",
    "Head",
    "Pooling",
    "ProblemKindName",
    "ProblemType",
]
