"""Pooling of the classifier input's hidden states.

Positions come from an explicit mask of the input tokens, never from `pad_token_id`: many models use their eos token
as pad, and a training sequence `[x, marker, rationale, ...]` must be pooled at the end of `x`, not of the sequence.
"""

import torch


def last_token_index(token_mask: torch.Tensor) -> torch.Tensor:
    """Index of the rightmost non-zero entry of each row of `token_mask` (works for left and right padding)."""
    positions = torch.arange(token_mask.shape[-1], device=token_mask.device)
    return (positions * token_mask.to(positions.dtype)).argmax(-1)


def pool_hidden_states(hidden_states: torch.Tensor, token_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pool `hidden_states` `[batch, seq, hidden]` over the tokens marked in `token_mask` `[batch, seq]`."""
    if pooling == "last":
        batch_index = torch.arange(hidden_states.shape[0], device=hidden_states.device)
        return hidden_states[batch_index, last_token_index(token_mask)]
    if pooling == "mean":
        weights = token_mask.to(hidden_states.dtype).unsqueeze(-1)
        return (hidden_states * weights).sum(1) / weights.sum(1).clamp(min=1)
    raise ValueError(f"Unknown pooling {pooling!r}; expected 'last' or 'mean'.")


def position_ids_from_attention_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that count only attended tokens, so left- and right-padded rows get the same positions."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
