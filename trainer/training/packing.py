"""Padding-free training batches: several sequences per row, as TRL's `padding_free` and transformers'
`DataCollatorWithFlattening` do.

A DHRD batch mixes inputs of every length with rationales of every length; padded to its longest sequence, a third
to a half of what the backbone computes is padding. Packed, each row holds several sequences one after another with
`position_ids` restarting at each and no `attention_mask`: the backbone derives a block-causal mask from the
positions (`masking_utils.find_packed_sequence_indices`; flash-attention's variable-length path on a GPU), so every
sequence attends only to itself, and the DHRD model pools each sequence at its own input's end
(`modeling_dhrd.pooling.pool_packed_hidden_states`).

With flash-attention the whole batch is one row: its variable-length kernels attend within each sequence, so a long
row costs nothing more. With SDPA or eager attention a row's attention costs its width squared, masked or not (and
SDPA with a mask leaves its fastest CPU kernel), so rows are packed (first-fit decreasing) only as wide as the
batch's longest sequence: shorter sequences share a row, attention never costs more than in the padded batch. Wider
rows were measured no faster on a CPU (rows of 512 tokens: 0.79-0.91x the padded step on e-SNLI batches of 8,
one row 1.0-1.06x; packed to the longest 1.17-1.35x at batch 32: docs/RESULTS.md, "Packed training steps"). A
row's unused tail is its own short sequence that marks no input, so it is neither pooled nor trained on. The
option rows of a multiple-choice example stay together, in order, so their scores fold back into
`[batch, num_choices]`.

Why at the loss and not in the collator: evaluation and prediction keep the padded batches they read in dataset
order (packing reorders sequences), and the exact gradient-accumulation counts are taken from the padded batches,
which hold the same targets.
"""

from collections.abc import Mapping

import torch

from modeling_dhrd.chunked_lm_loss import IGNORE_INDEX
from modeling_dhrd.pooling import packing_is_respected
from modeling_dhrd.unwrap import unwrap_dhrd

PACKED_KEYS = ("input_ids", "attention_mask", "pooling_mask", "lm_labels", "labels")


def first_fit_decreasing(sizes: list[int], capacity: int) -> list[list[int]]:
    """Item indices grouped into bins of `capacity`, largest items first, each into the first bin it fits."""
    bins: list[list[int]] = []
    room: list[int] = []
    for item in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        target = next((b for b, free in enumerate(room) if sizes[item] <= free), None)
        if target is None:
            bins.append([])
            room.append(capacity)
            target = len(bins) - 1
        bins[target].append(item)
        room[target] -= sizes[item]
    return bins


def pack_batch(
    batch: Mapping[str, torch.Tensor], pad_token_id: int, width: int | None = None
) -> dict[str, torch.Tensor]:
    """A right-padded DHRD batch (`DHRDDataCollator`'s: `[batch, seq]`, or `[batch, num_choices, seq]` option rows)
    as packed rows `[packs, width]` with `position_ids` and no `attention_mask`; `labels` follow the packed order of
    their examples. Other entries (the accumulation window's counts) pass through. `width`: the packed rows' width
    (None: the longest example; never less), 0 for one row holding every example."""
    attention_mask = batch["attention_mask"]
    per_example = attention_mask.shape[1] if attention_mask.dim() == 3 else 1
    flat = {key: batch[key].reshape(-1, attention_mask.shape[-1]) for key in PACKED_KEYS[:4] if key in batch}
    lengths = flat["attention_mask"].sum(-1).tolist()
    examples = len(lengths) // per_example
    sizes = [sum(lengths[e * per_example : (e + 1) * per_example]) for e in range(examples)]
    width = sum(sizes) if width == 0 else max(max(sizes), width or 0)
    packs = first_fit_decreasing(sizes, width)
    device = attention_mask.device
    packed = {
        "input_ids": torch.full((len(packs), width), pad_token_id, dtype=torch.long, device=device),
        "position_ids": torch.zeros((len(packs), width), dtype=torch.long, device=device),
        "pooling_mask": torch.zeros((len(packs), width), dtype=flat["pooling_mask"].dtype, device=device),
    }
    if "lm_labels" in flat:
        packed["lm_labels"] = torch.full((len(packs), width), IGNORE_INDEX, dtype=torch.long, device=device)
    for pack, members in enumerate(packs):
        start = 0
        for example in members:
            for row in range(example * per_example, (example + 1) * per_example):
                length = lengths[row]
                span = slice(start, start + length)
                packed["input_ids"][pack, span] = flat["input_ids"][row, :length]
                packed["position_ids"][pack, span] = torch.arange(length, device=device)
                packed["pooling_mask"][pack, span] = flat["pooling_mask"][row, :length]
                if "lm_labels" in flat:
                    packed["lm_labels"][pack, span] = flat["lm_labels"][row, :length]
                    packed["lm_labels"][pack, start] = IGNORE_INDEX  # never predicted from the previous sequence
                start += length
        packed["position_ids"][pack, start:] = torch.arange(width - start, device=device)  # the tail: its own
    order = [example for members in packs for example in members]
    if "labels" in batch:
        packed["labels"] = batch["labels"][torch.tensor(order, device=batch["labels"].device)]
    rest = {key: value for key, value in batch.items() if key not in PACKED_KEYS}
    return {**rest, **packed}


def packed_width(model: torch.nn.Module) -> int | None:
    """`pack_batch`'s width for `model`'s attention: 0 (one row) with flash-attention's variable-length kernels,
    else None (the batch's longest sequence)."""
    attention = str(unwrap_dhrd(model, "--padding_free").config.text_config._attn_implementation or "")
    return 0 if "flash" in attention else None


def check_packed_attention(model: torch.nn.Module, device: torch.device) -> None:
    """Refuse `--padding_free` for a backbone whose attention ignores packed positions (a remote-code model built
    before transformers' packed masks would let each sequence attend to the one before it, silently). Run at the
    first training step, through the model as it trains (wrapped, placed, under the run's autocast), in eval mode so
    dropout does not tell the two probes apart."""
    dhrd = unwrap_dhrd(getattr(model, "module", model), "--padding_free")  # under DDP, the module inside
    options = hasattr(dhrd, "score_rows")  # an option scorer: the probe's two sequences are two options of one example

    def score_packed(input_ids: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        extra = {"labels": torch.zeros(1, dtype=torch.long, device=device)} if options else {}
        inputs = {"input_ids": input_ids, "position_ids": position_ids, "pooling_mask": torch.ones_like(input_ids)}
        return model(**inputs, **extra).logits.reshape(2, -1)

    was_training = model.training
    model.eval()
    try:
        respected = packing_is_respected(score_packed, device)
    finally:
        model.train(was_training)
    if not respected:
        raise ValueError(
            f"--padding_free: this backbone ({dhrd.config.text_config.model_type}) lets packed sequences attend to "
            "each other (its attention does not derive a mask from packed position_ids): drop --padding_free."
        )
