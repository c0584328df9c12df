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


def packed_segments(position_ids: torch.Tensor) -> torch.Tensor | None:
    """`[packs, seq]` -> the global index of the sequence each token belongs to, when rows are packed (several
    sequences per row, `position_ids` restarting at each: transformers' padding-free format); None when every row
    holds one sequence. A sequence starts wherever the position does not follow the previous one, the rule
    transformers' attention masks use (`masking_utils.find_packed_sequence_indices`), so pooling and attention agree
    on where each sequence ends."""
    previous = torch.cat([position_ids[:, :1] - 1, position_ids[:, :-1]], dim=-1)
    starts = position_ids != previous + 1
    if not bool(starts[:, 1:].any()):
        return None
    starts[:, 0] = True  # a row never continues the row above it
    return starts.reshape(-1).long().cumsum(0).view_as(position_ids) - 1


def pool_packed_hidden_states(
    hidden_states: torch.Tensor, token_mask: torch.Tensor, segments: torch.Tensor, pooling: str
) -> torch.Tensor:
    """`[sequences, hidden]`: `pool_hidden_states` of every packed sequence that has marked tokens, in the order the
    sequences lie in the packs (a padding tail, which marks none, is no sequence)."""
    flat = hidden_states.reshape(-1, hidden_states.shape[-1])
    marked = token_mask.reshape(-1).bool()
    owner = segments.reshape(-1)[marked]
    count = int(segments.max()) + 1
    if pooling == "last":
        positions = torch.arange(flat.shape[0], device=flat.device)[marked]
        last = torch.full((count,), -1, dtype=positions.dtype, device=flat.device)
        last = last.scatter_reduce(0, owner, positions, reduce="amax")
        return flat[last[last >= 0]]
    if pooling == "mean":
        sums = flat.new_zeros(count, flat.shape[-1]).index_add(0, owner, flat[marked])
        tokens = torch.bincount(owner, minlength=count)
        kept = tokens > 0
        return sums[kept] / tokens[kept].unsqueeze(-1).to(flat.dtype)
    raise ValueError(f"Unknown pooling {pooling!r}; expected 'last' or 'mean'.")


def packing_is_respected(score_packed, device: torch.device | str) -> bool:
    """Whether a model keeps packed sequences apart: `score_packed(input_ids, position_ids)` gives one row of scores
    per packed sequence, and the second sequence of a row must score the same whatever sequence lies before it.
    (A backbone whose attention ignores packed positions, as some remote-code models and older architectures build a
    plain causal mask, would let it see the first.)"""
    positions = torch.tensor([[0, 1, 2, 0, 1]], device=device)
    with torch.no_grad():
        first, second = (
            score_packed(torch.tensor([ids], device=device), positions)[1].float()
            for ids in ([5, 6, 7, 8, 9], [10, 11, 12, 8, 9])
        )
    return bool(torch.allclose(first, second, atol=1e-5, rtol=1e-4))
