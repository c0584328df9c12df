"""Multiple-choice rows: a row's options, its gold option, the text each option is scored as, and how a teacher sees
the row. One module for every reader (the data description, the Trainer's sequence builder, inference, the teacher
prompts); what the kind decides (names, records, metrics) is `trainer.kinds.multiple_choice`'s."""

import copy
import json
from collections.abc import Sequence
from typing import Any

from ..kinds.labels import LabelError, label_value
from ..kinds.multiple_choice import option_name

# The text of one option row: the one format for training, evaluation and the exported scorer (README recipe).
OPTION_TEMPLATE = "{context}\nAnswer: {option}"


def option_input(context: str, option: str) -> str:
    return OPTION_TEMPLATE.format(context=context.rstrip(), option=option.strip())


def left_truncating(tokenizer):
    """A copy of `tokenizer` that cuts long inputs on the left: an option row loses the start of its context, never
    the option, which is what gets scored (training and inference alike)."""
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.truncation_side = "left"
    return tokenizer


def parse_options(value: Any, where: str, column: str = "options") -> list[str]:
    """A row's options: a list of texts, or (a CSV cell) a JSON list of texts; at least two, none empty."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise LabelError(
                f"{where}: column {column!r} holds {value[:80]!r}, not a list of options; write them as a list (in a "
                'CSV cell, a JSON list such as ["yes", "no"]).'
            ) from None
    if not isinstance(value, (list, tuple)) or len(value) < 2:
        raise LabelError(f"{where}: column {column!r} must list at least two options, got {value!r}.")
    if not all(isinstance(option, str) and option.strip() for option in value):
        raise LabelError(f"{where}: every option in column {column!r} must be non-empty text, got {list(value)!r}.")
    return list(value)


def gold_option(value: Any, options: Sequence[str], where: str) -> int:
    """The gold option's index, given as an index or as the option's text (the first option with that text: some
    releases repeat an option, e.g. 122 CommonsenseQA train questions)."""
    value = label_value(value, f"{where}: gold option")
    if isinstance(value, str):
        if value not in options:
            raise LabelError(f"{where}: gold option {value!r} is not one of the options {list(options)}.")
        return list(options).index(value)
    if not 0 <= value < len(options):
        raise LabelError(
            f"{where}: gold option {value} is out of range [0, {len(options)}) for its {len(options)} options."
        )
    return value


def teacher_listing(context: str, options: Sequence[str]) -> str:
    """The row as a teacher sees it: the context, then one `Option k: text` line per option. The teacher is told the
    gold option's *text* (`teachers.prompts.answer_text` takes it from the row's options), so it explains the
    content, not a number."""
    lines = [f"{option_name(i)}: {option.strip()}" for i, option in enumerate(options)]
    return "\n".join([context.rstrip(), *lines])
