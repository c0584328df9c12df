"""`DHRDTrainingArguments`: the Trainer's knobs for the joint DHRD loss, as a TRL-style dataclass."""

import copy
import logging
from dataclasses import dataclass, field

import torch
from transformers import TrainingArguments

from .sequences import LMLossScope

logger = logging.getLogger(__name__)

# The model settings the arguments may override; `DHRDConfig` owns and validates them.
CONFIG_OVERRIDES = ("cls_weight", "lm_weight", "lm_loss_chunk_size")


@dataclass
class DHRDTrainingArguments(TrainingArguments):
    r"""
    [`~transformers.TrainingArguments`] plus the DHRD-specific settings. Every field is also a command-line flag
    through [`~transformers.HfArgumentParser`].

    The loss weights and the LM-loss chunk size belong to the model (`DHRDConfig`, e.g.
    `DHRDForSequenceClassification.from_backbone(..., lm_weight=0.5)`): here they default to `None` (keep the
    model's value) and an explicit value overrides the model's, with a log line, validated by the config.
    """

    cls_weight: float | None = field(
        default=None,
        metadata={
            "help": "Weight (beta) of the classification cross-entropy of the pooled head. Default: the model "
            "config's `cls_weight` (1.0 unless set by `from_backbone`)."
        },
    )
    lm_weight: float | None = field(
        default=None,
        metadata={
            "help": "Weight (alpha) of the reasoning head's token-level LM loss; 0 trains the pooled baseline. "
            "Default: the model config's `lm_weight` (1.0 unless set by `from_backbone`)."
        },
    )
    lm_loss_scope: LMLossScope = field(
        default="all",
        metadata={
            "help": "Tokens the LM loss covers: 'all' (input + rationale + answer, as in the paper), 'rationale' "
            "(reason marker + rationale), 'rationale_answer' (everything after the input), or 'input' (the input "
            "alone, on every row: the teacher-free control; rationales are not read)."
        },
    )
    max_input_length: int = field(
        default=512,
        metadata={
            "help": "Tokens kept of the classifier input x, cut on the tokenizer's truncation side. Inference must "
            "apply the same rule: tokenizer(x, truncation=True, max_length=max_input_length)."
        },
    )
    max_rationale_length: int | None = field(
        default=None,
        metadata={"help": "Tokens kept of the reason marker + rationale (cut at the end). None: only max_length."},
    )
    max_length: int = field(
        default=1024,
        metadata={"help": "Tokens of a whole training sequence; the rationale is cut first to fit it."},
    )
    lm_loss_chunk_size: int | None = field(
        default=None,
        metadata={
            "help": "Token positions projected onto the vocabulary at once by the chunked LM loss. Default: the "
            "model config's (256)."
        },
    )
    padding_free: bool = field(
        default=False,
        metadata={
            "help": "Pack each training batch's sequences into rows, position_ids restarting per sequence, no "
            "padding (TRL's padding_free): one row with flash-attention, else rows as wide as the longest sequence. "
            "The same losses, less computed padding; evaluation keeps padded batches. Needs a backbone whose "
            "attention reads packed position_ids (checked)."
        },
    )
    dataset_num_proc: int | None = field(
        default=None, metadata={"help": "Processes tokenising the datasets (datasets' `map(num_proc=...)`)."}
    )
    class_weights: str | None = field(
        default=None,
        metadata={
            "help": "Weights of the classification loss, one per label: 'balanced' (from the training rows: rows / "
            "(labels x rows of the label); multi-label: each label's negatives / positives, as pos_weight) or numbers "
            "in label order, comma-separated (e.g. '1,4'). Saved in the model config (`class_weights`) and card."
        },
    )
    early_stopping_patience: int | None = field(
        default=None,
        metadata={
            "help": "Stop when the best-model metric has not improved for N evaluations, and end on the best "
            "checkpoint (load_best_model_at_end), so it is the one saved and exported. The metric follows the problem "
            "type unless --metric_for_best_model says: macro_f1 (single-label), micro_f1 (multi-label), mse "
            "(regression, lower is better), accuracy (multiple choice); a metric named takes its direction from the "
            "problem type unless --greater_is_better is given. Needs a validation split; evaluates and saves every "
            "epoch unless --eval_strategy says otherwise (--save_strategy no is refused)."
        },
    )
    tune_thresholds: bool = field(
        default=False,
        metadata={
            "help": "Multi-label: after training, tune each label's decision threshold for F1 on the validation "
            "rows (saved in the config as `label_thresholds`, used by evaluate / predict, shown in the card)."
        },
    )
    require_rationales: bool = field(
        default=False,
        metadata={
            "help": "Raise on training rows without a rationale instead of training them on the classification "
            "loss only (they are counted and reported either way)."
        },
    )

    def __getstate__(self) -> dict:
        """What pickling keeps (the Trainer's `torch.save(args)` into `training_args.bin`): every field but the
        tokens, which `to_dict` already redacts for logs; a checkpoint folder must never carry a secret."""
        return {key: None if key.endswith("_token") else value for key, value in self.__dict__.items()}

    def __copy__(self) -> "DHRDTrainingArguments":
        """In-memory copies keep the token: only what is written is redacted."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    def __deepcopy__(self, memo: dict) -> "DHRDTrainingArguments":
        clone = object.__new__(type(self))
        memo[id(self)] = clone
        clone.__dict__.update({key: copy.deepcopy(value, memo) for key, value in self.__dict__.items()})
        return clone

    def _record_given_metric_choices(self) -> None:
        """Whether `--metric_for_best_model` and `--greater_is_better` were given, recorded before transformers'
        `__post_init__` fills them in (the metric "loss" for `load_best_model_at_end`, the direction guessed from the
        metric's name): the trainer puts the problem kind's metric and direction where they were not given."""
        self.metric_given = self.metric_for_best_model is not None
        self.greater_is_better_given = self.greater_is_better is not None

    def _prepare_early_stopping(self) -> None:
        """Early stopping compares evaluations and keeps the best checkpoint: evaluation and saving on one schedule
        (every epoch unless an evaluation strategy is given), the best model loaded at the end. The metric is the
        problem kind's (`ProblemKind.best_metric`) unless one is given. An explicit `--save_strategy no` is refused
        (the default is "steps"), not silently overridden: it would save the checkpoints it asked not to."""
        if self.early_stopping_patience is None:
            return
        if self.early_stopping_patience < 1:
            raise ValueError(
                f"--early_stopping_patience must be a positive integer, got {self.early_stopping_patience}."
            )
        if str(getattr(self.save_strategy, "value", self.save_strategy)) == "no":
            raise ValueError(
                "--early_stopping_patience keeps the best checkpoint, so it saves at every evaluation: drop "
                "--save_strategy no."
            )
        if str(getattr(self.eval_strategy, "value", self.eval_strategy)) == "no":
            self.eval_strategy = "epoch"
        logger.info("Early stopping: evaluating and saving every %s; the best checkpoint is kept", self.eval_strategy)
        self.save_strategy = self.eval_strategy
        self.save_steps = self.eval_steps or self.save_steps
        self.load_best_model_at_end = True

    @property
    def chooses_on_validation(self) -> bool:
        """Whether training decides something from the validation rows (when to stop, which checkpoint, when to lower
        the learning rate, the thresholds): a model chosen there scores optimistically there. (transformers' scheduler
        types are str enums.)"""
        return bool(
            self.early_stopping_patience is not None
            or self.tune_thresholds
            or self.load_best_model_at_end
            or self.lr_scheduler_type in ("reduce_lr_on_plateau", "greedy")  # they step on the evaluations
        )

    @property
    def reads_validation_in_training(self) -> bool:
        """Whether training itself reads the validation rows: evaluations on a schedule (early stopping and the
        best checkpoint among them) or thresholds tuned on them."""
        return self.eval_strategy != "no" or self.tune_thresholds  # transformers' strategies are str enums

    def given_class_weights(self) -> list[float] | None:
        """`--class_weights` as numbers (None: none given, or 'balanced', which the trainer counts from the rows)."""
        if self.class_weights is None or self.class_weights.strip() == "balanced":
            return None
        try:
            weights = [float(item) for item in self.class_weights.split(",")]
        except ValueError:
            weights = []
        if not weights or not all(weight > 0 for weight in weights):
            raise ValueError(
                f"--class_weights must be 'balanced' or positive numbers in label order (e.g. '1,4'), got "
                f"{self.class_weights!r}."
            )
        return weights

    def _check_optimisation_numbers(self) -> None:
        """Numbers the optimizer or the data loader would refuse only after the model and data are loaded: refused
        when the arguments are made (at parse time on the command line), before anything heavy."""
        checks = {
            "learning_rate": (self.learning_rate >= 0, ">= 0"),
            "weight_decay": (self.weight_decay >= 0, ">= 0"),
            "max_grad_norm": (self.max_grad_norm is None or self.max_grad_norm >= 0, ">= 0"),
            "warmup_steps": (self.warmup_steps >= 0, ">= 0 (steps, or a fraction of them below 1)"),
            "num_train_epochs": (self.num_train_epochs > 0 or self.max_steps > 0, "> 0 (or give max_steps)"),
            "per_device_train_batch_size": (self.per_device_train_batch_size >= 1, "a positive integer"),
            "per_device_eval_batch_size": (self.per_device_eval_batch_size >= 1, "a positive integer"),
            "gradient_accumulation_steps": (self.gradient_accumulation_steps >= 1, "a positive integer"),
        }
        for name, (valid, rule) in checks.items():
            if not valid:
                raise ValueError(f"--{name} must be {rule}, got {getattr(self, name)}.")

    def __post_init__(self) -> None:
        if (self.bf16 or self.fp16) and not self.use_cpu and not torch.accelerator.is_available():
            # transformers refuses bf16 without an accelerator unless told to run on the CPU, where bf16 works.
            logger.info("No accelerator found: training on the CPU (use_cpu=True) with bf16/fp16 autocast.")
            self.use_cpu = True
        if self.use_cpu or not torch.accelerator.is_available():
            self.dataloader_pin_memory = False  # pinned memory serves host-to-GPU copies: on the CPU it only warns
        if self.max_steps == 0:
            raise ValueError("max_steps=0 trains nothing: give a number of steps, or -1 to train num_train_epochs.")
        self._check_optimisation_numbers()
        self.given_class_weights()
        self._record_given_metric_choices()
        self._prepare_early_stopping()
        super().__post_init__()
        for name in ("max_input_length", "max_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}.")
        if self.max_input_length >= self.max_length:
            raise ValueError(
                f"max_input_length ({self.max_input_length}) must be smaller than max_length ({self.max_length}): "
                "the training sequence also holds the markers, the rationale and the answer."
            )
        if self.max_rationale_length is not None and self.max_rationale_length < 0:
            raise ValueError(f"max_rationale_length must be >= 0, got {self.max_rationale_length}.")
        if self.activation_checkpointing and self.activation_checkpointing_kwargs is None:
            # Non-reentrant checkpointing works with frozen embeddings (LoRA) and with the chunked LM loss. (The
            # deprecated `gradient_checkpointing*` names mirror these, as transformers keeps them.)
            self.activation_checkpointing_kwargs = self.gradient_checkpointing_kwargs = {"use_reentrant": False}


def require_validation_rows(args: "DHRDTrainingArguments", has_evaluation: bool) -> None:
    """Early stopping compares evaluations and threshold tuning reads validation rows: without a validation split
    either is refused, before anything heavy (not after the training)."""
    if args.early_stopping_patience is not None and not has_evaluation:
        raise ValueError("--early_stopping_patience compares evaluations: give a validation split.")
    if args.tune_thresholds and not has_evaluation:
        raise ValueError("--tune_thresholds tunes on the validation rows: give a validation split.")
