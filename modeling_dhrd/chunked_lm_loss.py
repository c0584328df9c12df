"""Token-level causal-LM loss of the reasoning head without materialising `[batch, seq, vocab]` logits.

Only positions that have a target are projected onto the vocabulary, `chunk_size` positions at a time, and each
chunk is recomputed in the backward pass (activation checkpointing), so peak memory holds one chunk's logits instead
of the whole sequence's: with a 50k-262k vocabulary these logits dominate training memory.
"""

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

IGNORE_INDEX = -100


def _chunk_loss_sum(hidden: torch.Tensor, targets: torch.Tensor, lm_head: torch.nn.Module) -> torch.Tensor:
    logits = lm_head(hidden).float()
    return F.cross_entropy(logits, targets, reduction="sum")


def causal_lm_loss_sum(
    hidden_states: torch.Tensor,
    lm_labels: torch.Tensor,
    lm_head: torch.nn.Module,
    chunk_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed next-token cross-entropy and the number of target tokens.

    Args:
        hidden_states: `[batch, seq, hidden]` final hidden states of the backbone.
        lm_labels: `[batch, seq]` token ids, `-100` where no loss is wanted. Position `t` predicts `lm_labels[t+1]`.
        lm_head: projection onto the vocabulary.
        chunk_size: positions projected at once.
    """
    shift_labels = lm_labels[:, 1:]
    selected = shift_labels != IGNORE_INDEX
    hidden = hidden_states[:, :-1][selected]
    targets = shift_labels[selected]
    total = hidden_states.new_zeros((), dtype=torch.float32)
    use_checkpoint = torch.is_grad_enabled() and hidden.requires_grad
    for start in range(0, targets.numel(), chunk_size):
        chunk = (hidden[start : start + chunk_size], targets[start : start + chunk_size], lm_head)
        if use_checkpoint:
            total = total + checkpoint(_chunk_loss_sum, *chunk, use_reentrant=False)
        else:
            total = total + _chunk_loss_sum(*chunk)
    return total, selected.sum()
