"""Decoding with the trained reasoning head: the fine-tuned backbone's own chain of thought.

DHRD trains the LM head on `[x, reason marker, rationale, answer marker, label, eos]`, so the trained model can also
be prompted with `[x, reason marker]` and decoded to a rationale and an answer. This is the paper's "CoT decoding
of the same fine-tuned backbone": what the reasoning head learned, at the cost DHRD avoids at inference. The
classifier's backbone and LM head are borrowed (not copied) by a causal-LM shell, so `generate` and its KV cache
run on exactly the trained weights (LoRA layers included). A native export keeps no LM head, but where the backbone
ties it to the input embeddings (SmolLM2, Gemma, Llama-3.2-1B) those embeddings are the trained head: the shell
borrows them (`reasoning_head`), with the markers the export's config keeps.
"""

from collections.abc import Mapping, Sequence

import torch
from transformers import AutoModelForCausalLM

from modeling_dhrd.unwrap import is_dhrd, unwrap_dhrd

from .cot import CoTResult, greedy_decode, parse_answer

NO_REASONING_HEAD = "This model has no reasoning head (an exported classifier); decode with the DHRD checkpoint."


def causal_lm_view(model) -> torch.nn.Module:
    """A causal LM sharing the DHRD `model.model` (backbone) and `model.lm_head` modules, not copies of them."""
    if getattr(model, "lm_head", None) is None:
        raise ValueError(NO_REASONING_HEAD)
    return _shell(model.config.text_config, model.model, model.lm_head)


def _shell(text_config, backbone: torch.nn.Module, lm_head: torch.nn.Module) -> torch.nn.Module:
    with torch.device("meta"):
        shell = AutoModelForCausalLM.from_config(text_config)
    setattr(shell, shell.base_model_prefix, backbone)
    shell.lm_head = lm_head
    return shell.eval()


def reasoning_head(classifier, name: str) -> tuple[torch.nn.Module, str, str]:
    """`(causal LM, reason marker, answer marker)` of a loaded classifier: a DHRD checkpoint's own LM head, or a
    native export's tied input embeddings. Anything else is refused in one line naming `name`."""
    if is_dhrd(classifier):
        config = classifier.config
        return causal_lm_view(classifier), config.reason_marker, config.answer_marker
    config = classifier.config
    markers = (getattr(config, "reason_marker", None), getattr(config, "answer_marker", None))
    if not getattr(config, "tie_word_embeddings", False) or None in markers:
        raise ValueError(
            f"{name} keeps no reasoning head: its backbone's LM head is not tied to the input embeddings (or it was "
            "not exported by DHRD), so the export dropped it; explain with the DHRD checkpoint."
        )
    backbone = getattr(classifier, classifier.base_model_prefix)
    embeddings = classifier.get_input_embeddings()
    lm_head = torch.nn.Linear(embeddings.embedding_dim, embeddings.num_embeddings, bias=False)
    lm_head.weight = embeddings.weight  # shared, not copied: the trained reasoning head
    return _shell(config, backbone, lm_head.to(embeddings.weight.device)), markers[0], markers[1]


def decode_with_reasoning_head(
    shell: torch.nn.Module,
    tokenizer,
    texts: Sequence[str],
    label_names: Sequence[str],
    reason_marker: str,
    answer_marker: str,
    batch_size: int = 16,
    max_new_tokens: int = 128,
    max_input_length: int | None = None,
) -> CoTResult:
    """Greedy decoding from `[x, reason marker]` to eos; the prediction is the label after the answer marker."""
    if not texts:  # a tokenizer refuses an empty batch; a launched rank may have no rows
        return CoTResult([], [], [])
    marker = tokenizer(reason_marker, add_special_tokens=False)["input_ids"]
    # As in training; None: the tokenizer's own limit (a tokenizer from `load_classifier` carries the trained one)
    inputs = tokenizer(list(texts), truncation=True, max_length=max_input_length)["input_ids"]

    def parse(text: str) -> int:
        if answer_marker not in text:
            return -1  # the head never reached an answer
        return parse_answer(text.rsplit(answer_marker, 1)[1], label_names)

    prompts = [ids + marker for ids in inputs]
    return greedy_decode(shell, tokenizer, prompts, parse, batch_size, max_new_tokens)


def reasoning_head_decode(
    classifier,
    tokenizer,
    texts: Sequence[str],
    id2label: Mapping[int, str],
    batch_size: int = 16,
    max_new_tokens: int = 128,
    max_input_length: int | None = None,
) -> CoTResult:
    """`decode_with_reasoning_head` with a DHRD checkpoint's own LM head and markers."""
    model = unwrap_dhrd(classifier, "Reasoning-head decoding", hint=NO_REASONING_HEAD)
    label_names = [id2label[i] for i in range(len(id2label))]
    config = model.config
    return decode_with_reasoning_head(
        causal_lm_view(model), tokenizer, texts, label_names, config.reason_marker, config.answer_marker,
        batch_size, max_new_tokens, max_input_length,
    )  # fmt: skip
