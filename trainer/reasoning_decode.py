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

from .cot import CoTResult, parse_answer


def causal_lm_view(classifier) -> torch.nn.Module:
    """A causal LM sharing `classifier.model` and `classifier.lm_head` (a PEFT wrapper is looked through)."""
    model = classifier.get_base_model() if hasattr(classifier, "get_base_model") else classifier
    if getattr(model, "lm_head", None) is None:
        raise ValueError("This model has no reasoning head (an exported classifier); decode with the DHRD model.")
    with torch.device("meta"):
        shell = AutoModelForCausalLM.from_config(model.config.text_config)
    setattr(shell, shell.base_model_prefix, model.model)
    shell.lm_head = model.lm_head
    return shell.eval()


@torch.no_grad()
def reasoning_head_decode(
    classifier,
    tokenizer,
    texts: Sequence[str],
    id2label: Mapping[int, str],
    batch_size: int = 16,
    max_new_tokens: int = 128,
    max_input_length: int = 512,
) -> CoTResult:
    """Greedy decoding from `[x, reason marker]` to eos; the prediction is the label after the answer marker."""
    config = (classifier.get_base_model() if hasattr(classifier, "get_base_model") else classifier).config
    shell = causal_lm_view(classifier)
    label_names = [id2label[i] for i in range(len(id2label))]
    marker = tokenizer(config.reason_marker, add_special_tokens=False)["input_ids"]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(shell.parameters()).device
    predictions, lengths, outputs = [], [], []
    for start in range(0, len(texts), batch_size):
        prompts = [
            tokenizer(text, truncation=True, max_length=max_input_length)["input_ids"] + marker
            for text in texts[start : start + batch_size]
        ]
        width = max(map(len, prompts))
        input_ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in prompts], device=device)
        attention_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
        generated = shell.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=pad_id,
            eos_token_id=tokenizer.eos_token_id,
            use_cache=True,
        )
        for row in generated[:, width:].tolist():
            ids = row[: row.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in row else row
            text = tokenizer.decode(ids, skip_special_tokens=True)
            outputs.append(text)
            lengths.append(len(ids))
            answer = text.rsplit(config.answer_marker, 1)[1] if config.answer_marker in text else ""
            predictions.append(parse_answer(answer, label_names) if answer else -1)
    return CoTResult(predictions, lengths, outputs)
