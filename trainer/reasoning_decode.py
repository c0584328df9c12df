"""Decoding with the trained reasoning head: the fine-tuned backbone's own chain of thought.

DHRD trains the LM head on `[x, reason marker, rationale, answer marker, label, eos]`, so the trained model can also
be prompted with `[x, reason marker]` and decoded to a rationale and an answer. This is the paper's "CoT decoding
of the same fine-tuned backbone": what the reasoning head learned, at the cost DHRD avoids at inference. The
classifier's backbone and LM head are borrowed (not copied) by a causal-LM shell, so `generate` and its KV cache
run on exactly the trained weights (LoRA layers included).
"""

from collections.abc import Mapping, Sequence

import torch
from transformers import AutoModelForCausalLM

from modeling_dhrd.unwrap import unwrap_dhrd

from .cot import CoTResult, greedy_decode, parse_answer

NO_REASONING_HEAD = "This model has no reasoning head (an exported classifier); decode with the DHRD checkpoint."


def causal_lm_view(model) -> torch.nn.Module:
    """A causal LM sharing the DHRD `model.model` (backbone) and `model.lm_head` modules, not copies of them."""
    if getattr(model, "lm_head", None) is None:
        raise ValueError(NO_REASONING_HEAD)
    with torch.device("meta"):
        shell = AutoModelForCausalLM.from_config(model.config.text_config)
    setattr(shell, shell.base_model_prefix, model.model)
    shell.lm_head = model.lm_head
    return shell.eval()


def reasoning_head_decode(
    classifier,
    tokenizer,
    texts: Sequence[str],
    id2label: Mapping[int, str],
    batch_size: int = 16,
    max_new_tokens: int = 128,
    max_input_length: int | None = None,
) -> CoTResult:
    """Greedy decoding from `[x, reason marker]` to eos; the prediction is the label after the answer marker."""
    model = unwrap_dhrd(classifier, "Reasoning-head decoding", hint=NO_REASONING_HEAD)
    shell = causal_lm_view(model)
    config = model.config
    label_names = [id2label[i] for i in range(len(id2label))]
    marker = tokenizer(config.reason_marker, add_special_tokens=False)["input_ids"]
    # As in training; None: the tokenizer's own limit (evaluate passes what the checkpoint records)
    inputs = tokenizer(list(texts), truncation=True, max_length=max_input_length)["input_ids"]

    def parse(text: str) -> int:
        if config.answer_marker not in text:
            return -1  # the head never reached an answer
        return parse_answer(text.rsplit(config.answer_marker, 1)[1], label_names)

    prompts = [ids + marker for ids in inputs]
    return greedy_decode(shell, tokenizer, prompts, parse, batch_size, max_new_tokens)
