"""Training sequences `[x, reason marker, rationale, answer marker, verbalised label, eos]` and their collator.

The verbalised label is the problem kind's (`trainer.kinds`, `answer_text`): the label name, the names of a
multi-label set, or a regression target's number.

`x` is tokenised on its own and the other parts are appended as token ids, so the pooled prefix is token for token
what the classifier sees at inference (`tokenizer(x, truncation=True, max_length=max_input_length)`). Rows keep the
segment lengths instead of masks; the collator turns them into the attention mask, the pooling mask and the LM
labels, never looking at `pad_token_id` (which equals eos for many models).
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import torch
from datasets import Dataset, IterableDataset
from transformers import PreTrainedTokenizerBase

from modeling_dhrd.chunked_lm_loss import IGNORE_INDEX

from ..data.normalise import LABEL, RATIONALE, TEXT
from ..jobs.progress import datasets_bars_in_terminals_only
from ..kinds.registry import get_kind, infer_kind

logger = logging.getLogger(__name__)

# Tokens the LM loss covers; the training arguments' `lm_loss_scope` is typed with it, and `--help` lists it.
LMLossScope = Literal["all", "rationale", "rationale_answer", "input"]
LM_LOSS_SCOPES = get_args(LMLossScope)
PREPARED_COLUMNS = ("input_ids", "num_input_tokens", "num_reasoning_tokens", "labels", "has_rationale")


@dataclass
class PreparationReport:
    """What preparation did to a dataset; rows are never dropped silently."""

    rows: int
    with_rationale: int
    without_rationale: int
    rationale_truncated: int
    input_truncated: int


@dataclass
class SequenceBuilder:
    """Tokenises one row into a DHRD training (or inference) sequence."""

    tokenizer: PreTrainedTokenizerBase
    id2label: Mapping[int, str]
    reason_marker: str
    answer_marker: str
    text_column: str = TEXT
    label_column: str = LABEL
    rationale_column: str = RATIONALE
    max_input_length: int = 512
    max_rationale_length: int | None = None
    max_length: int = 1024
    include_rationale: bool = True
    require_rationales: bool = False
    problem_kind: str | None = None  # the model's (`DHRDConfig.problem_kind`); None: inferred from each label

    def __post_init__(self) -> None:
        self.label2id = {str(name): int(index) for index, name in self.id2label.items()}
        self.eos_ids = [self.tokenizer.eos_token_id] if self.tokenizer.eos_token_id is not None else []

    def check_columns(self, column_names: Sequence[str]) -> None:
        required = [self.text_column, self.label_column] + ([self.rationale_column] if self.include_rationale else [])
        missing = [name for name in required if name not in column_names]
        if missing:
            raise KeyError(
                f"Column(s) {missing} not found; the dataset has {list(column_names)}. Set text_column / "
                "label_column / rationale_column (or use lm_weight=0 to train without rationales)."
            )

    def input_text(self, example: Mapping[str, Any], row: int, what: str = "input") -> str:
        text = example[self.text_column]
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"Row {row}: empty {what} in column {self.text_column!r}.")
        return text

    def encode_input(self, text: str) -> tuple[list[int], bool]:
        """`(ids, truncated)`: the tokenizer's ids of `text`, cut to `max_input_length` on its truncation side (the
        second, truncating call only for the inputs that need it)."""
        ids = self.tokenizer(text)["input_ids"]
        if len(ids) <= self.max_input_length:
            return ids, False
        return self.tokenizer(text, truncation=True, max_length=self.max_input_length)["input_ids"], True

    def rationale_text(self, example: Mapping[str, Any], row: int) -> str | None:
        """The row's rationale when the LM loss wants one (None: none given, or none wanted)."""
        rationale = example.get(self.rationale_column) if self.include_rationale else None
        if isinstance(rationale, str) and rationale.strip():
            return rationale
        if self.include_rationale and self.require_rationales:
            raise ValueError(f"Row {row}: no rationale in column {self.rationale_column!r} (require_rationales=True).")
        return None

    def __call__(self, example: Mapping[str, Any], row: int) -> dict[str, Any]:
        text = self.input_text(example, row)
        value = example[self.label_column]
        kind = get_kind(self.problem_kind) if self.problem_kind else infer_kind(value, len(self.id2label))
        label = kind.encode_target(value, self.label2id, f"Row {row}")
        x_ids, input_truncated = self.encode_input(text)
        rationale = self.rationale_text(example, row)
        has_rationale = rationale is not None
        result = {
            "labels": label,
            "has_rationale": has_rationale,
            "input_truncated": input_truncated,
            "rationale_truncated": False,
        }
        if not has_rationale:
            return {**result, "input_ids": x_ids, "num_input_tokens": len(x_ids), "num_reasoning_tokens": 0}
        answer = kind.answer_text(label, self.id2label)
        ids, num_reasoning, truncated = self.with_reasoning(x_ids, rationale, answer, row)
        return {
            **result,
            "input_ids": ids,
            "num_input_tokens": len(x_ids),
            "num_reasoning_tokens": num_reasoning,
            "rationale_truncated": truncated,
        }

    def with_reasoning(self, x_ids: list[int], rationale: str, answer: str, row: int) -> tuple[list[int], int, bool]:
        """`x + [reason marker, rationale, answer marker, answer, eos]` within `max_length` (the rationale is cut
        first): the ids, the reasoning tokens kept, and whether the rationale was truncated."""
        encode = lambda part: self.tokenizer(part, add_special_tokens=False)["input_ids"]  # noqa: E731
        reasoning_ids = encode(f"{self.reason_marker} {rationale.strip()}")
        answer_ids = encode(f"{self.answer_marker} {answer}") + self.eos_ids
        budget = self.max_length - len(x_ids) - len(answer_ids)
        if self.max_rationale_length is not None:
            budget = min(budget, self.max_rationale_length)
        if budget < 0:
            raise ValueError(
                f"Row {row}: the input and the answer alone take {len(x_ids) + len(answer_ids)} tokens > max_length "
                f"{self.max_length}; raise max_length or lower max_input_length."
            )
        return (
            x_ids + reasoning_ids[:budget] + answer_ids,
            min(len(reasoning_ids), budget),
            len(reasoning_ids) > budget,
        )


def prepare_dhrd_dataset(
    dataset: Dataset | IterableDataset, builder: SequenceBuilder, num_proc: int | None = None
) -> tuple[Dataset | IterableDataset, PreparationReport | None]:
    """Tokenise `dataset` with `builder`; returns the prepared dataset and a report of what was counted.

    An `IterableDataset` (streamed from the Hub) is prepared lazily, as it is read: it has no report (None), since
    counting would read it all."""
    columns = dataset.column_names
    if columns is not None:
        builder.check_columns(columns)
    if isinstance(dataset, IterableDataset):
        prepared = dataset.map(builder, with_indices=True, remove_columns=columns)
        return prepared.remove_columns(["rationale_truncated", "input_truncated"]), None
    with datasets_bars_in_terminals_only():
        prepared = dataset.map(
            builder, with_indices=True, remove_columns=columns, num_proc=num_proc, desc="Preparing DHRD sequences"
        )
    with_rationale = sum(prepared["has_rationale"])
    report = PreparationReport(
        rows=len(prepared),
        with_rationale=with_rationale,
        without_rationale=len(prepared) - with_rationale,
        rationale_truncated=sum(prepared["rationale_truncated"]),
        input_truncated=sum(prepared["input_truncated"]),
    )
    if builder.include_rationale and report.without_rationale:
        logger.warning(
            "%d of %d rows have no rationale: they train the classification loss only.",
            report.without_rationale,
            report.rows,
        )
    return prepared.remove_columns(["rationale_truncated", "input_truncated"]), report


@dataclass
class DHRDDataCollator:
    """Pads a batch dynamically (to its longest row) and builds the masks and LM labels from segment lengths.

    `lm_loss_scope`: `"all"` (every real token, as in the paper), `"rationale"` (reason marker + rationale),
    `"rationale_answer"` (everything after the input): rows without a rationale get no LM targets. `"input"`: the
    input tokens of every row (GPT-1's auxiliary objective, no teacher); its sequences are the inputs alone.
    """

    pad_token_id: int
    lm_loss_scope: str = "all"
    pad_to_multiple_of: int | None = None

    def __post_init__(self) -> None:
        if self.lm_loss_scope not in LM_LOSS_SCOPES:
            raise ValueError(f"lm_loss_scope must be one of {LM_LOSS_SCOPES}, got {self.lm_loss_scope!r}.")

    def __call__(self, features: list[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        batch = self._empty_batch((len(features),), max(len(feature["input_ids"]) for feature in features))
        for row, feature in enumerate(features):
            self._fill(
                batch,
                row,
                feature["input_ids"],
                int(feature["num_input_tokens"]),
                int(feature["num_reasoning_tokens"]),
                self.has_lm_targets(feature),
            )
        return self._finish(batch, features)

    def has_lm_targets(self, feature: Mapping[str, Any]) -> bool:
        """Whether a row's sequence gets LM targets: every row's input under `"input"`, else its rationale's."""
        return self.lm_loss_scope == "input" or bool(feature.get("has_rationale", False))

    def _empty_batch(self, shape: tuple[int, ...], width: int) -> dict[str, torch.Tensor]:
        """Right-padded `shape + (width,)` tensors; `width` rounded up to `pad_to_multiple_of`."""
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        size = (*shape, width)
        return {
            "input_ids": torch.full(size, self.pad_token_id, dtype=torch.long),
            "attention_mask": torch.zeros(size, dtype=torch.long),
            "pooling_mask": torch.zeros(size, dtype=torch.long),
            "lm_labels": torch.full(size, IGNORE_INDEX, dtype=torch.long),
        }

    def _fill(
        self, batch: dict[str, torch.Tensor], index, ids: Sequence[int], n_input: int, n_reasoning: int, lm: bool
    ) -> None:
        """Write one sequence at `batch[...][index]`: its tokens, masks and (when `lm`) its LM targets."""
        ids = torch.as_tensor(ids, dtype=torch.long)
        length = ids.numel()
        batch["input_ids"][index][:length] = ids
        batch["attention_mask"][index][:length] = 1
        batch["pooling_mask"][index][:n_input] = 1
        if lm:
            start, end = self._lm_span(n_input, n_reasoning, length)
            batch["lm_labels"][index][start:end] = ids[start:end]

    def _finish(self, batch: dict[str, torch.Tensor], features: list[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        # class indices stay integers; multi-hot rows and regression targets are floats (transformers' convention)
        batch["labels"] = torch.tensor([feature["labels"] for feature in features])
        if not any(self.has_lm_targets(feature) for feature in features):
            del batch["lm_labels"]
        return batch

    def _lm_span(self, n_input: int, n_reasoning: int, length: int) -> tuple[int, int]:
        return {
            "all": (0, length),
            "rationale": (n_input, n_input + n_reasoning),
            "rationale_answer": (n_input, length),
            "input": (0, n_input),
        }[self.lm_loss_scope]


def inference_view(batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The classifier's inference inputs inside a training batch: the input prefix `x` alone, right-padded.

    Works for `[batch, seq]` and for option rows `[batch, num_choices, seq]`. Rows are right-padded with `x` first,
    so cutting at the longest input keeps every `x` whole; the result is what a tokenizer would give for the inputs
    alone (no rationale, no answer).
    """
    pooling_mask = batch["pooling_mask"]
    width = int(pooling_mask.sum(-1).max())
    return {"input_ids": batch["input_ids"][..., :width], "attention_mask": pooling_mask[..., :width]}
