"""Classifying many texts fast with a DHRD checkpoint, an exported classifier or any Hub sequence classifier.

Batches are built by a token budget over length-sorted inputs, not by a fixed count: a batch holds as many rows as
fit `max_batch_tokens` padded tokens (at most `max_batch_size`), so short inputs run in large batches and a long
paragraph never pads a batch of short sentences. Sorting happens within windows of `sort_window` rows, so memory
stays bounded on millions of rows. Inputs are truncated as in training (`max_input_length` and side, read from the
model's input contract when not given).
"""

import json
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from modeling_dhrd.input_contract import InputContract
from modeling_dhrd.pooling import packed_segments, packing_is_respected, pool_packed_hidden_states

from ..device import load_kwargs, resolve_device
from ..jobs.progress import progress_bar
from ..kinds.registry import kind_of, named_kind
from ..tokenization import padding_id

if TYPE_CHECKING:
    from ..data.labelled import LabelledData

logger = logging.getLogger(__name__)

TRAINING_RECORD = "dhrd_training.json"
HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")
BARE_NAME = re.compile(r"\w[\w.-]*")
UNBOUNDED_LENGTH = 1_000_000  # tokenizers without a length limit report ~1e30 as model_max_length
PADDING_FREE_HELP = (
    "Run each batch as one packed row: inputs one after another, positions restarting, no padding. Faster with "
    "flash-attention (a GPU, --attn_implementation flash_attention_2); with SDPA or eager attention a packed row "
    "costs its length squared, so leave it off there (the same scores either way)."
)
ATTENTION_HELP = (
    "The model's attention kernel on load (transformers' attn_implementation: sdpa, eager, flash_attention_2, ...). "
    "Default: transformers' choice (SDPA)."
)


def check_model_reference(model: str, bare_names: bool = False) -> None:
    """A local folder with a config, or something shaped like a Hub id (`user/name`; with `bare_names` also `gpt2`
    or an embedded backbone's name). A path that is not there is named as a missing folder, not judged by the Hub's
    repo-id rules."""
    path = Path(model)
    if path.exists():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{model} is not a model folder (no config.json).")
        return
    looks_like_a_path = model.startswith((".", "/", "~")) or model.count("/") > 1
    if looks_like_a_path or not (HUB_ID.fullmatch(model) or (bare_names and BARE_NAME.fullmatch(model))):
        raise FileNotFoundError(f"No such model folder: {model} (nor a Hub id like user/name).")


def training_record(folder: str) -> dict:
    """The `dhrd_training.json` `dhrd train` writes next to a checkpoint (base model, datasets, settings, scores): what
    an export's model card reports. `{}` when the folder has none."""
    path = Path(folder) / TRAINING_RECORD
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: unreadable training record ({error}).") from None


def model_input_contract(config, model: str) -> InputContract | None:
    """The input contract `model`'s config carries; a model without one is said once, in one line."""
    contract = InputContract.from_config(config)
    if contract is None:
        logger.warning(
            "%s carries no input contract (config.input_contract; not saved by DHRD): inputs are built from the "
            "data flags given and cut at --max_input_length, else the tokenizer's limit.",
            model,
        )
    return contract


@dataclass(frozen=True)
class SavedSettings:
    """What a classifier's config says about reading its inputs and deciding its outputs."""

    contract: InputContract | None
    label_thresholds: list[float] | None  # multi-label decision thresholds (None: 0.5 for every label)


def classifier_data(model: str, data_args) -> tuple[SavedSettings, "LabelledData"]:
    """A classifier's saved settings and the data described for it: the contract's input format where the flags give
    none, and the model's labels and kind (data whose own differ is refused)."""
    from transformers import AutoConfig

    from ..data.description import DataError
    from ..data.label_schema import ModelLabels
    from ..data.labelled import LabelledData

    check_model_reference(model)
    try:
        config = AutoConfig.from_pretrained(model)
    except OSError as error:  # not on the Hub, offline and not cached, no access: named, never skipped
        raise OSError(f"{model}: its config cannot be read ({str(error).splitlines()[0][:300]})") from None
    contract = model_input_contract(config, model)
    data_args = data_args.with_input_format(contract.input_format if contract else {})
    names = [str(config.id2label[i]) for i in range(config.num_labels)]
    # a config without a kind names none, but one output is a regressor to transformers too (its loss is MSE); with
    # several outputs single- and multi-label look alike, and the data decides
    kind = named_kind(config) or (kind_of(config) if config.num_labels == 1 else None)
    scores_options = kind is not None and kind.scores_options
    if scores_options and not data_args.options_column:
        raise DataError(
            f"{model} scores the options of multiple-choice rows; pass --options_column (the column listing each "
            "row's options)."
        )
    if data_args.options_column and not scores_options:
        raise DataError(
            f"--options_column is for option scorers (multiple choice); {model} is a classifier with the labels "
            f"{names}: drop --options_column."
        )
    saved = SavedSettings(contract, getattr(config, "label_thresholds", None))
    return saved, LabelledData(data_args, model=ModelLabels(names, kind))


def load_pretrained(auto_class, model: str, **kwargs):
    """`auto_class.from_pretrained(model)` from safetensors only; unreadable weights name the file and the fix."""
    import modeling_dhrd  # noqa: F401 - registers DHRD with the Auto classes

    try:
        return auto_class.from_pretrained(model, use_safetensors=True, **kwargs)
    except Exception as error:
        if type(error).__name__ != "SafetensorError" and "deserializ" not in str(error).lower():
            raise
        raise ValueError(
            f"{model}: the weights (model.safetensors) cannot be read ({error}); the file is truncated or corrupt: "
            "save or download it again."
        ) from None


def load_classifier(
    model: str,
    device: torch.device | str = "auto",
    dtype: torch.dtype | None = None,
    contract: InputContract | None = None,
    attn_implementation: str | None = None,
):
    """`(model, tokenizer)` for inference: safetensors weights only, loaded onto `device` (`trainer.device`) in
    `dtype` (None: as saved), eval mode; the tokenizer truncates as the input contract says (length, side): the one
    given (`classifier_data`'s), else the model config's."""
    from transformers import AutoConfig, AutoModelForMultipleChoice, AutoModelForSequenceClassification, AutoTokenizer

    import modeling_dhrd  # noqa: F401 - registers DHRD with the Auto classes

    config = AutoConfig.from_pretrained(model)
    # A DHRD option scorer is a multiple-choice model; its native export, a one-output sequence classifier.
    option_scorer = config.model_type == "dhrd" and kind_of(config).scores_options
    auto_class = AutoModelForMultipleChoice if option_scorer else AutoModelForSequenceClassification
    kwargs = load_kwargs(resolve_device(device), dtype)
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    classifier = load_pretrained(auto_class, model, config=config, **kwargs)
    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"{model}: no usable tokenizer ({str(error).splitlines()[0][:200]}); save the tokenizer next to the model "
            "(`tokenizer.save_pretrained(folder)`)."
        ) from None
    contract = contract or InputContract.from_config(classifier.config)
    if contract is not None:
        contract.apply_to_tokenizer(tokenizer)
    return classifier.eval(), tokenizer


def max_input_length(explicit: int | None, tokenizer=None, contract: InputContract | None = None) -> int | None:
    """Truncation: the flag, else what the model was trained with (its contract; a tokenizer from `load_classifier`
    carries it as its limit), else the tokenizer's limit (None: no limit, or without a tokenizer: the serving side's
    own limit)."""
    if explicit is not None:
        return explicit
    if contract is not None and contract.max_input_length is not None:
        return contract.max_input_length
    limit = getattr(tokenizer, "model_max_length", None)
    return int(limit) if limit and limit < UNBOUNDED_LENGTH else None


def token_budget_batches(lengths: Sequence[int], max_batch_tokens: int, max_batch_size: int) -> list[list[int]]:
    """Positions grouped longest first; a batch's padded size (rows x its longest row) stays within the budget
    (a single row longer than the budget is a batch of its own)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for position in order:
        if batches:
            batch = batches[-1]
            width = lengths[batch[0]]
            if len(batch) < max_batch_size and (len(batch) + 1) * width <= max_batch_tokens:
                batch.append(position)
                continue
        batches.append([position])
    return batches


def classify_batches(
    model,
    tokenizer,
    texts: Sequence[str],
    max_input_length: int | None,
    max_batch_tokens: int = 16384,
    max_batch_size: int = 256,
    sort_window: int = 65536,
    progress: bool = True,
    desc: str = "Classifying",
    padding_free: bool = False,
) -> Iterator[tuple[list[int], torch.Tensor]]:
    """`(positions, float32 logits)` per batch, in the order batches run (longest inputs first in each window).
    `padding_free`: each batch runs as one packed row (`packed_scorer`), no padding at all."""
    pad_id = padding_id(tokenizer, model.config)
    scores = packed_scorer(model) if padding_free else row_scorer(model)
    truncation = {"truncation": True, "max_length": max_input_length} if max_input_length else {}
    with progress_bar(len(texts), desc, unit="row", disable=not progress) as bar:
        for window_start in range(0, len(texts), sort_window):
            encoded = _token_ids(tokenizer, texts[window_start : window_start + sort_window], truncation)
            for batch in token_budget_batches([len(ids) for ids in encoded], max_batch_tokens, max_batch_size):
                inputs = _packed_row(encoded, batch) if padding_free else _padded_rows(encoded, batch, pad_id)
                with torch.inference_mode():
                    logits = scores(**{name: tensor.to(model.device) for name, tensor in inputs.items()})
                bar.update(len(batch))
                yield [window_start + position for position in batch], logits.float().cpu()


def _padded_rows(encoded: Sequence[np.ndarray], batch: list[int], pad_id: int) -> dict[str, torch.Tensor]:
    """The batch right-padded to its longest input (the first: batches run longest first)."""
    width = len(encoded[batch[0]])
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, position in enumerate(batch):
        ids = encoded[position]
        input_ids[row, : len(ids)] = torch.from_numpy(ids)
        attention_mask[row, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def _packed_row(encoded: Sequence[np.ndarray], batch: list[int]) -> dict[str, torch.Tensor]:
    """The batch's inputs one after another in one row, positions restarting at each (no padding, no mask)."""
    rows = [encoded[position] for position in batch]
    if any(len(ids) == 0 for ids in rows):  # it would be no sequence: one score fewer than rows
        raise ValueError("--padding_free: an input tokenises to no token at all (an empty text?); drop the row.")
    return {
        "input_ids": torch.from_numpy(np.concatenate(rows)).unsqueeze(0),
        "position_ids": torch.cat([torch.arange(len(ids)) for ids in rows]).unsqueeze(0),
    }


def packed_scorer(model) -> Callable[..., torch.Tensor]:
    """How one packed row of inputs (`input_ids`, `position_ids` restarting per input) becomes `[inputs, outputs]`
    scores, each input pooled at its own last token as the padded forward pools it. Worth it with flash-attention's
    variable-length kernels (a GPU): there attention stays within each input at no cost, and a batch computes no
    padding. With SDPA or eager attention a packed row's attention costs its length squared (correct, not faster).

    A DHRD checkpoint pools packed rows itself (`pooling_mask`); a native `*ForSequenceClassification` export runs
    its base model over the row and its `score` head at each input's last token."""
    score = _dhrd_packed(model) if model.config.model_type == "dhrd" else _native_packed(model)
    if not packing_is_respected(score, model.device):
        raise ValueError(
            f"--padding_free: {type(model).__name__}'s attention lets packed inputs see each other (it does not "
            "derive a mask from packed position_ids): drop --padding_free."
        )
    attention = str(getattr(model.config, "_attn_implementation", None) or "")
    if "flash" not in attention:
        logger.warning(
            "--padding_free with %s attention: a packed row's attention costs its length squared (the same scores, "
            "not faster); it pays with --attn_implementation flash_attention_2 on a GPU.",
            attention or "the default",
        )
    return score


def _dhrd_packed(model) -> Callable[..., torch.Tensor]:
    forward = row_scorer(model)
    return lambda input_ids, position_ids: forward(
        input_ids=input_ids, position_ids=position_ids, pooling_mask=torch.ones_like(input_ids)
    )


def _native_packed(model) -> Callable[..., torch.Tensor]:
    base, head = getattr(model, model.base_model_prefix, None), getattr(model, "score", None)
    if base is None or not callable(head):
        raise ValueError(
            f"--padding_free: {type(model).__name__} has no base model and `score` head to pool packed inputs "
            "with; drop --padding_free."
        )

    def score(input_ids: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        # no cache: with one, transformers builds a plain causal mask and packed inputs would see each other
        hidden = base(input_ids=input_ids, position_ids=position_ids, use_cache=False).last_hidden_state
        # each input's last token, found by the rule the DHRD model pools packed rows with (one input: the row's end)
        segments = packed_segments(position_ids)
        segments = torch.zeros_like(position_ids) if segments is None else segments
        return head(pool_packed_hidden_states(hidden, torch.ones_like(position_ids), segments, "last"))

    return score


def row_scorer(model) -> Callable[..., torch.Tensor]:
    """How a batch of `[rows, seq]` inputs becomes `[rows, outputs]` scores: a classifier's forward, or a DHRD option
    scorer's `score_rows` (its forward takes `[batch, num_choices, seq]`)."""
    score_rows = getattr(model, "score_rows", None)
    return score_rows if score_rows is not None else (lambda **batch: model(**batch).logits)


def _token_ids(tokenizer, texts: Sequence[str], truncation: dict, chunk: int = 2048) -> list[np.ndarray]:
    """Each text's token ids as a compact int64 array, tokenised `chunk` texts at a time: a fast tokenizer's
    per-token encodings (strings, offsets) for a whole window would cost ~100 bytes a token."""
    ids: list[np.ndarray] = []
    for start in range(0, len(texts), chunk):
        batch = tokenizer(list(texts[start : start + chunk]), return_attention_mask=False, **truncation)
        ids += [np.asarray(row, dtype=np.int64) for row in batch["input_ids"]]
    return ids


def classify(
    model,
    tokenizer,
    texts: Sequence[str],
    batch_size: int,
    max_input_length: int | None,
    progress: bool = True,
    padding_free: bool = False,
) -> torch.Tensor:
    """Logits of every text, in input order (rows per batch at most `batch_size`)."""
    logits = torch.empty((len(texts), model.config.num_labels))
    for positions, batch_logits in classify_batches(
        model,
        tokenizer,
        texts,
        max_input_length,
        max_batch_tokens=batch_size * 512,
        max_batch_size=batch_size,
        progress=progress,
        padding_free=padding_free,
    ):
        logits[positions] = batch_logits
    return logits
