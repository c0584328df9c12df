"""Multiple-choice rows for [`DHRDForMultipleChoice`]: one sequence per option, the rationale on the gold one.

A row has a context (`text_column`), a list of options (`options_column`), the gold option (an index, or the option's
text) and optionally a rationale. Option `i` is the classifier input `option_input(context, option_i)`; the gold
option's sequence continues with `[reason marker, rationale, answer marker, gold option, eos]` (see the model's
docstring for why there). Inputs longer than `max_input_length` lose the start of the context, never the option.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..data.normalise import OPTIONS
from ..data.options import gold_option, left_truncating, option_input, parse_options
from .sequences import DHRDDataCollator, SequenceBuilder


@dataclass
class ChoiceSequenceBuilder(SequenceBuilder):
    """Tokenises one multiple-choice row into its option sequences (`text_column` holds the context)."""

    options_column: str = OPTIONS

    def __post_init__(self) -> None:
        super().__post_init__()
        self.tokenizer = left_truncating(self.tokenizer)

    def check_columns(self, column_names: Sequence[str]) -> None:
        super().check_columns(column_names)
        if self.options_column not in column_names:
            raise KeyError(
                f"Column {self.options_column!r} (the options) not found; the dataset has {list(column_names)}. "
                "Set options_column."
            )

    def __call__(self, example: Mapping[str, Any], row: int) -> dict[str, Any]:
        context = self.input_text(example, row, what="context")
        options = parse_options(example[self.options_column], f"Row {row}", self.options_column)
        label = gold_option(example[self.label_column], options, f"Row {row}")
        encoded = [self.encode_input(option_input(context, option)) for option in options]
        sequences = [ids for ids, _ in encoded]
        truncated = any(cut for _, cut in encoded)
        rationale = self.rationale_text(example, row)
        has_rationale = rationale is not None
        lengths = [len(ids) for ids in sequences]
        num_reasoning, rationale_truncated = 0, False
        if has_rationale:
            sequences[label], num_reasoning, rationale_truncated = self.with_reasoning(
                sequences[label], rationale, options[label].strip(), row
            )
        return {
            "input_ids": sequences,
            "num_input_tokens": lengths,
            "num_reasoning_tokens": num_reasoning,
            "labels": label,
            "has_rationale": has_rationale,
            "input_truncated": truncated,
            "rationale_truncated": rationale_truncated,
        }


@dataclass
class DHRDMultipleChoiceCollator(DHRDDataCollator):
    """Pads option sequences to `[batch, num_choices, longest]`; LM targets only on the gold option's row (its
    rationale, or under `"input"` its input: the context and the gold option)."""

    def __call__(self, features: list[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        counts = sorted({len(feature["input_ids"]) for feature in features})
        if len(counts) > 1:
            raise ValueError(
                f"Examples in one batch have different numbers of options ({counts}); give every example the same "
                "number of options."
            )
        width = max(len(ids) for feature in features for ids in feature["input_ids"])
        batch = self._empty_batch((len(features), counts[0]), width)
        for row, feature in enumerate(features):
            gold = int(feature["labels"])
            for option, ids in enumerate(feature["input_ids"]):
                carries_targets = option == gold and self.has_lm_targets(feature)
                n_reasoning = int(feature["num_reasoning_tokens"]) if carries_targets else 0
                n_input = int(feature["num_input_tokens"][option])
                self._fill(batch, (row, option), ids, n_input, n_reasoning, carries_targets)
        return self._finish(batch, features)
