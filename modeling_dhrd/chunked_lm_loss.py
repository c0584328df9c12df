"""Token-level causal-LM loss of the reasoning head without materialising `[batch, seq, vocab]` logits.

Only positions that have a target are projected onto the vocabulary, `chunk_size` positions at a time. When
gradients are needed, each chunk's gradients with respect to the hidden states and the head's weight are computed
right away in the forward pass (a fused linear + cross-entropy, as in Liger-Kernel) and the chunk's logits are
freed, so peak memory holds one chunk's logits instead of the sequence's, with no recomputation: with a 50k-262k
vocabulary these logits dominate training memory.
"""

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

IGNORE_INDEX = -100


class _FusedLinearCrossEntropy(torch.autograd.Function):
    """Summed cross-entropy of `hidden @ weight.T (+ bias)` against `targets`, computed chunk by chunk."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, chunk_size):
        need_hidden, need_weight, need_bias = ctx.needs_input_grad[:3]
        grad_hidden = torch.empty_like(hidden) if need_hidden else None
        grad_weight = torch.zeros_like(weight, dtype=torch.float32) if need_weight else None
        grad_bias = torch.zeros_like(bias, dtype=torch.float32) if need_bias else None
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        for start in range(0, targets.numel(), chunk_size):
            h = hidden[start : start + chunk_size]
            t = targets[start : start + chunk_size]
            logits = F.linear(h, weight, bias).float()
            log_norm = torch.logsumexp(logits, dim=-1)
            total += (log_norm - logits.gather(1, t[:, None]).squeeze(1)).sum()
            if need_hidden or need_weight or need_bias:
                grad_logits = logits.sub_(log_norm[:, None]).exp_()  # softmax, in place of the logits
                grad_logits[torch.arange(t.numel(), device=t.device), t] -= 1.0
                if need_bias:
                    grad_bias += grad_logits.sum(0)
                grad_logits = grad_logits.to(weight.dtype)
                if need_hidden:
                    grad_hidden[start : start + chunk_size] = grad_logits @ weight
                if need_weight:
                    grad_weight += (grad_logits.t() @ h).float()
        ctx.save_for_backward(*(g for g in (grad_hidden, grad_weight, grad_bias) if g is not None))
        ctx.present = (need_hidden, need_weight, need_bias)
        ctx.dtypes = (hidden.dtype, weight.dtype, None if bias is None else bias.dtype)
        return total

    @staticmethod
    def backward(ctx, grad_output):
        saved = iter(ctx.saved_tensors)
        grads = []
        for present, dtype in zip(ctx.present, ctx.dtypes):
            grads.append((next(saved) * grad_output).to(dtype) if present else None)
        return (*grads, None, None)


def _chunk_loss_sum(hidden: torch.Tensor, targets: torch.Tensor, lm_head: torch.nn.Module) -> torch.Tensor:
    return F.cross_entropy(lm_head(hidden).float(), targets, reduction="sum")


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
        lm_head: projection onto the vocabulary (a `nn.Linear` takes the fused path; any other module is applied
            chunk by chunk with activation checkpointing).
        chunk_size: positions projected at once.
    """
    shift_labels = lm_labels[:, 1:]
    selected = shift_labels != IGNORE_INDEX
    hidden = hidden_states[:, :-1][selected]
    targets = shift_labels[selected]
    count = selected.sum()
    if not torch.is_grad_enabled():
        total = hidden_states.new_zeros((), dtype=torch.float32)
        for start in range(0, targets.numel(), chunk_size):
            total = total + _chunk_loss_sum(
                hidden[start : start + chunk_size], targets[start : start + chunk_size], lm_head
            )
        return total, count
    if isinstance(lm_head, torch.nn.Linear):
        return _FusedLinearCrossEntropy.apply(hidden, lm_head.weight, lm_head.bias, targets, chunk_size), count
    total = hidden_states.new_zeros((), dtype=torch.float32)
    for start in range(0, targets.numel(), chunk_size):
        chunk = (hidden[start : start + chunk_size], targets[start : start + chunk_size], lm_head)
        total = total + checkpoint(_chunk_loss_sum, *chunk, use_reentrant=False)
    return total, count
