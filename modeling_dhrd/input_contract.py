"""The input contract: how a row became the classifier's input in training, saved with the model.

A classifier only reproduces its validation scores on inputs built the way it was trained: the same text column(s)
or template, the same options column, cut at the same length on the same side. The contract lives in the model's
config (`config.input_contract`, a plain dict in `config.json`), so every way a model is saved carries it:
`save_pretrained`, the Trainer's checkpoints and `save_model`, `push_to_hub`, and the export (whose tokenizer also
gets `model_max_length` and `truncation_side`, so a plain `pipeline(..., truncation=True)` cuts as in training).
The labels are the config's own `id2label`. `dhrd evaluate` / `predict` and the serving client read it back.
"""

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

TruncationSide = Literal["left", "right"]


@dataclass(frozen=True)
class InputContract:
    """`input_format`: the row-to-text settings (`text_column`, `text_columns`, `input_template`, `options_column`;
    only those that were set; `trainer.data.description` interprets them). `max_input_length`: tokens kept per input
    (None: no limit). `truncation_side`: which end a long input loses (`left` for option scorers: the context's
    start, never the option)."""

    input_format: dict[str, str] = field(default_factory=dict)
    max_input_length: int | None = None
    truncation_side: TruncationSide = "right"

    def __post_init__(self) -> None:
        if not all(isinstance(key, str) and isinstance(value, str) for key, value in self.input_format.items()):
            raise ValueError(f"input_contract: input_format maps setting names to text, got {self.input_format!r}.")
        length, side = self.max_input_length, self.truncation_side
        if length is not None and (not isinstance(length, int) or length < 1):
            raise ValueError(f"input_contract: max_input_length must be a positive integer, got {length!r}.")
        if side not in ("left", "right"):
            raise ValueError(f"input_contract: truncation_side must be 'left' or 'right', got {side!r}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_config(cls, config) -> "InputContract | None":
        """The contract a config carries (None when it has none: a model saved before contracts, or not by DHRD)."""
        saved = getattr(config, "input_contract", None)
        if not saved:
            return None
        if not isinstance(saved, Mapping):
            raise ValueError(f"config.input_contract must be a mapping, got {type(saved).__name__}.")
        known = {key: saved[key] for key in ("input_format", "max_input_length", "truncation_side") if key in saved}
        return cls(**{**known, "input_format": dict(known.get("input_format") or {})})

    def apply_to_tokenizer(self, tokenizer) -> None:
        """The tokenizer cuts as in training: `tokenizer(text, truncation=True)` keeps `max_input_length` tokens from
        the trained side (what `pipeline(..., truncation=True)` calls), also once saved and reloaded (transformers
        saves `truncation_side` only from `init_kwargs`)."""
        tokenizer.truncation_side = tokenizer.init_kwargs["truncation_side"] = self.truncation_side
        if self.max_input_length is not None:
            tokenizer.model_max_length = self.max_input_length
