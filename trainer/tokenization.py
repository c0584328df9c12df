"""Token ids that training and inference agree on."""

from transformers import PreTrainedTokenizerBase


def padding_id(tokenizer: PreTrainedTokenizerBase | None, model_config=None) -> int:
    """The id to pad with: a classifier's `config.pad_token_id` (native classifiers pool at the rightmost token that
    is not it), else the tokenizer's pad, then eos, then 0. DHRD itself masks padding by position, so any id works."""
    candidates = (
        getattr(model_config, "pad_token_id", None),
        getattr(tokenizer, "pad_token_id", None),
        getattr(tokenizer, "eos_token_id", None),
    )
    return next((int(token_id) for token_id in candidates if token_id is not None), 0)
