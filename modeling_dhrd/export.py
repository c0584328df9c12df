"""Export a trained DHRD model as a plain pooled classifier: the reasoning head is dropped.

With last-token pooling and a linear head, DHRD's classifier *is* transformers' native `*ForSequenceClassification`
(backbone + bias-free `score` at the last input token), so the export is a rename of the state dict and the result
loads with plain `AutoModelForSequenceClassification`, `pipeline("text-classification")` and vLLM. Other settings
(mean pooling, MLP head) export as DHRD remote code without the reasoning head.

A `DHRDForMultipleChoice` exports the same way, as a native `*ForSequenceClassification` with one output
(`num_labels=1`, `problem_type="regression"`): an option scorer. Why native rather than remote code: it loads with
plain transformers, runs in `pipeline`/vLLM as any one-output classifier, and scoring options is a
`view(batch, num_choices)` plus argmax on the caller's side (README recipe); a remote-code `*ForMultipleChoice`
would need `trust_remote_code` everywhere for the sake of one reshape. Mean pooling / MLP heads export as DHRD remote
code (`AutoModelForMultipleChoice`).

Every export is verified before it is published: the written folder is reloaded and must reproduce the source
model's logits on left- and right-padded batches, otherwise nothing is written.
"""

import copy
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import init_empty_weights
from transformers import (
    AutoModelForMultipleChoice,
    AutoModelForSequenceClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING

from .atomic import atomic_directory
from .configuration_dhrd import EXPORTED_STATE, MULTIPLE_CHOICE, copy_trained_state
from .input_contract import InputContract
from .pooling import position_ids_from_attention_mask
from .unwrap import full_precision_forward, unwrap_dhrd

logger = logging.getLogger(__name__)

DHRD_PAD_TOKEN = "<|dhrd_pad|>"
DEFAULT_VERIFICATION_TEXTS = (
    "No.",
    "The movie was great.",
    "Premise: A man plays a guitar on stage. Hypothesis: A person is performing music.",
    "I did not expect the ending to be that sad, but the acting was wonderful and the music carried every scene.",
)


class ExportVerificationError(RuntimeError):
    """The exported checkpoint, reloaded, does not reproduce the source model's logits."""


@dataclass
class ExportResult:
    path: Path
    native: bool
    architecture: str
    max_abs_diff: float


def export_classifier(
    model: torch.nn.Module,
    save_directory: str | os.PathLike,
    tokenizer: PreTrainedTokenizerBase,
    *,
    verification_texts: list[str] | tuple[str, ...] | None = None,
    atol: float | None = None,
    overwrite: bool = False,
) -> ExportResult:
    """Write `model` without its reasoning head to `save_directory`, with its tokenizer, as safetensors.

    Args:
        model: a `DHRDForSequenceClassification`, or a peft model wrapping one (LoRA adapters are merged into a copy;
            `model` itself is left untouched).
        save_directory: target folder; written atomically (temporary folder, verified, then renamed).
        tokenizer: the model's tokenizer; a copy is saved. The native export may give it a dedicated pad token; the
            model's input contract (if any) sets its `model_max_length` and `truncation_side` as trained.
        verification_texts: inputs for the reload check (defaults to a few sentences of different lengths).
        atol: largest allowed max-abs logit difference (default 1e-4 in fp32, 5e-2 in half precision).
        overwrite: replace an existing `save_directory`.
    """
    save_directory = Path(save_directory)
    if save_directory.exists() and not overwrite:
        raise FileExistsError(f"{save_directory} already exists; pass overwrite=True to replace it.")
    dhrd = _merged_dhrd_model(model)
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.padding_side = "right"  # native pooling finds the last input token as the rightmost non-pad
    native_class = _native_classifier_class(dhrd)
    if native_class is None:
        exported = _remote_code_classifier(dhrd)
        logger.warning(
            "pooling=%r, head=%r: exported as DHRD remote code (`trust_remote_code=True`). Native loaders and vLLM's "
            "pooling runner serve only last-token pooling with a linear head.",
            dhrd.config.pooling,
            dhrd.config.head,
        )
    else:
        exported = _native_classifier(dhrd, native_class, tokenizer)
    if getattr(exported.config, "tie_word_embeddings", False):  # its input embeddings are the trained reasoning
        exported.config.reason_marker = dhrd.config.reason_marker  # head: `dhrd explain` prompts it with these
        exported.config.answer_marker = dhrd.config.answer_marker
    # thresholds as tuned and the input contract, for `dhrd predict` and the card; class weights as a record
    copy_trained_state(dhrd.config, exported.config, EXPORTED_STATE)
    contract = InputContract.from_config(dhrd.config)
    if contract is not None:  # the export reads inputs as training did, in dhrd and in a plain pipeline alike
        contract.apply_to_tokenizer(tokenizer)
    if atol is None:
        atol = 1e-4 if dhrd.dtype == torch.float32 else 5e-2
    texts = list(verification_texts or DEFAULT_VERIFICATION_TEXTS)

    with atomic_directory(save_directory, overwrite=overwrite) as tmp_dir:
        exported.save_pretrained(tmp_dir)
        tokenizer.save_pretrained(tmp_dir)
        auto_class = (
            AutoModelForMultipleChoice
            if native_class is None and _scores_options(dhrd)
            else AutoModelForSequenceClassification
        )
        reloaded = auto_class.from_pretrained(tmp_dir, trust_remote_code=native_class is None, dtype=dhrd.dtype)
        max_diff = _max_logit_difference(model, reloaded, tokenizer, texts)
        if not max_diff <= atol:
            raise ExportVerificationError(
                f"The exported classifier differs from the source model by {max_diff:.3g} > {atol:g} in logits; "
                f"nothing was written to {save_directory}."
            )
    return ExportResult(save_directory, native_class is not None, type(exported).__name__, max_diff)


def _merged_dhrd_model(model: torch.nn.Module) -> PreTrainedModel:
    if hasattr(model, "merge_and_unload"):  # a peft model: merge LoRA into a copy, keep the caller's model intact
        model = copy.deepcopy(model).merge_and_unload()
    return unwrap_dhrd(model, "export_classifier")


def _native_classifier_class(dhrd: PreTrainedModel) -> type[PreTrainedModel] | None:
    if dhrd.config.pooling != "last" or dhrd.config.head != "linear":
        return None
    return MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING.get(type(dhrd.config.text_config), None)


def _state_dict_without_reasoning_head(dhrd: PreTrainedModel) -> dict[str, torch.Tensor]:
    return {name: tensor for name, tensor in dhrd.state_dict().items() if not name.startswith("lm_head.")}


def _remote_code_classifier(dhrd: PreTrainedModel) -> PreTrainedModel:
    config = copy.deepcopy(dhrd.config)
    config.has_reasoning_head = False
    with init_empty_weights(include_buffers=False):
        exported = type(dhrd)(config)
    exported.load_state_dict(_state_dict_without_reasoning_head(dhrd), strict=True, assign=True)
    return exported.eval()


def _native_classifier(
    dhrd: PreTrainedModel, native_class: type[PreTrainedModel], tokenizer: PreTrainedTokenizerBase
) -> PreTrainedModel:
    config = copy.deepcopy(dhrd.config.text_config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.id2label = dict(dhrd.config.id2label)
    config.label2id = dict(dhrd.config.label2id)
    config.num_labels = dhrd.config.num_labels
    # The native classifier computes the same loss the DHRD head trained with (regression, multi-label, single-label).
    # An option scorer's one output is a real-valued score: "regression" to transformers (what it infers for one
    # output anyway), so `dhrd predict` reports each row's `score`.
    multiple_choice = _scores_options(dhrd)
    config.problem_type = (
        "regression" if multiple_choice else dhrd.config.problem_type or "single_label_classification"
    )
    # what `dhrd predict` reads (ordered classes export as a single-label classifier that keeps its kind's name)
    config.problem_kind = MULTIPLE_CHOICE if multiple_choice else dhrd.config.problem_kind or config.problem_type
    pad_token_id = _pad_token_id_that_cannot_end_an_input(tokenizer)
    with init_empty_weights(include_buffers=False):
        exported = native_class(config)
    prefix = exported.base_model_prefix
    renamed = {
        (prefix + name[len("model") :] if name.startswith("model.") else name): tensor
        for name, tensor in _state_dict_without_reasoning_head(dhrd).items()
    }
    exported.load_state_dict(renamed, strict=True, assign=True)
    if len(tokenizer) > exported.get_input_embeddings().num_embeddings:
        # The dedicated pad token got a new id past the embedding matrix: give it a row (never attended, never pooled).
        exported.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    exported.config.pad_token_id = pad_token_id
    exported.config.architectures = [native_class.__name__]
    return exported.eval()


def _pad_token_id_that_cannot_end_an_input(tokenizer: PreTrainedTokenizerBase) -> int:
    """Native classifiers pool at the rightmost token that is not `pad_token_id`: pad must never end an input.

    Many tokenizers use eos (or bos/unk) as pad, and eos can end an input (chat templates, `add_eos_token`). Keep the
    existing pad token only if it is none of those and the tokenizer does not append it; otherwise add the dedicated
    special token `<|dhrd_pad|>` (saved with the tokenizer).
    """
    special_ids = {
        tokenizer.eos_token_id,
        tokenizer.bos_token_id,
        tokenizer.unk_token_id,
        tokenizer.sep_token_id,
        tokenizer.cls_token_id,
    }
    pad_id = tokenizer.pad_token_id
    probe = tokenizer("probe")["input_ids"]
    if pad_id is not None and pad_id not in special_ids and (not probe or probe[-1] != pad_id):
        return pad_id
    tokenizer.add_special_tokens({"pad_token": DHRD_PAD_TOKEN})
    return tokenizer.pad_token_id


@torch.no_grad()
def _max_logit_difference(
    source: torch.nn.Module,
    exported: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
) -> float:
    was_training = source.training
    source.eval()
    device = next(source.parameters()).device
    exported.to(device)
    max_diff = 0.0
    try:
        for side in ("right", "left"):
            tokenizer.padding_side = side
            batch = tokenizer(texts, padding=True, return_tensors="pt").to(device)
            position_ids = position_ids_from_attention_mask(batch["attention_mask"])
            # The export may have added a pad id the source's embeddings lack; masked positions never matter.
            source_ids = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, 0)
            expected = _scores(
                source, input_ids=source_ids, attention_mask=batch["attention_mask"], full_precision=True
            )
            # Right padding is what the pipeline does; left padding needs positions that skip the pads.
            extra = {"position_ids": position_ids} if side == "left" else {}
            actual = _scores(exported, input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **extra)
            max_diff = max(max_diff, (expected.float() - actual.float()).abs().max().item())
    finally:
        tokenizer.padding_side = "right"
        source.train(was_training)
    return max_diff


def _scores(model: torch.nn.Module, full_precision: bool = False, **batch: torch.Tensor) -> torch.Tensor:
    """`[n, num_labels]` logits; an option scorer (`[batch, num_choices, seq]` inputs) scores the n texts as the n
    options of one example, which gives each its own score: `[n, 1]`. `full_precision`: bypass a mixed-precision
    training wrapper (`full_precision_forward`)."""
    forward = full_precision_forward(model) if full_precision else model
    if _scores_options(model):
        return forward(**{name: tensor[None] for name, tensor in batch.items()}).logits.view(-1, 1)
    return forward(**batch).logits


def _scores_options(model: torch.nn.Module) -> bool:
    """Whether `model` (a DHRD model, or a peft model wrapping one) is a DHRD option scorer (its native export is a
    one-output sequence classifier)."""
    config = getattr(model, "config", None)
    return getattr(config, "model_type", None) == "dhrd" and getattr(config, "problem_kind", None) == MULTIPLE_CHOICE
