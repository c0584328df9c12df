"""Chain-of-thought decoding with the same backbone: the baseline DHRD is compared against (accuracy and speed).

The model is asked to think step by step and finish with `Answer: <label>`; greedy decoding with the KV cache, in
batches with left padding, up to the paper's cap of 500 new tokens, stopping at eos.
"""

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..tokenization import padding_id

COT_INSTRUCTION = (
    "{input}\n\nThink step by step, then give the final answer on its own line as 'Answer: <label>', where <label> "
    "is one of: {labels}."
)


@dataclass
class CoTResult:
    predictions: list[int]  # -1 where no label could be read from the output
    generated_tokens: list[int]
    texts: list[str]

    def stats(self) -> dict[str, float]:
        """How the decoding went: rows without a readable label, and the mean completion length in tokens."""
        return {
            "unparsed": self.predictions.count(-1),
            "mean_generated_tokens": sum(self.generated_tokens) / max(1, len(self.generated_tokens)),
        }


def cot_prompts(tokenizer, texts: Sequence[str], label_names: Sequence[str]) -> list[str]:
    labels = ", ".join(label_names)
    prompts = []
    for text in texts:
        content = COT_INSTRUCTION.format(input=text, labels=labels)
        if tokenizer.chat_template:
            messages = [{"role": "user", "content": content}]
            prompts.append(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
        else:
            prompts.append(content + "\n")
    return prompts


def parse_answer(text: str, label_names: Sequence[str]) -> int:
    """The first label right after the last `Answer:`; without one, the last label mentioned; -1 if none."""
    lowered = text.lower()
    has_answer = "answer:" in lowered
    tail = lowered.rsplit("answer:", 1)[1] if has_answer else lowered
    mentions = [
        (match.start(), -len(name), index)
        for index, name in enumerate(label_names)
        for match in re.finditer(rf"\b{re.escape(name.lower())}\b", tail)
    ]
    if not mentions:
        return -1
    if has_answer:
        return min(mentions)[2]  # earliest after "Answer:", the longer name on a tie ("not_entailment")
    return max(mentions, key=lambda m: (m[0], -m[1]))[2]


@torch.no_grad()
def greedy_decode(
    model,
    tokenizer,
    prompts: Sequence[list[int]],
    parse: Callable[[str], int],
    batch_size: int = 8,
    max_new_tokens: int = 500,
    min_new_tokens: int | None = None,
) -> CoTResult:
    """Greedy generation from token-id prompts, batched with left padding and the KV cache; each completion is cut
    at its first eos (or pad), decoded, and read into a label id by `parse` (-1: none)."""
    pad_id = padding_id(tokenizer)
    stop_ids = {tokenizer.eos_token_id, pad_id}
    predictions, lengths, outputs = [], [], []
    for start in range(0, len(prompts), batch_size):
        chunk = [{"input_ids": ids} for ids in prompts[start : start + batch_size]]
        batch = tokenizer.pad(chunk, padding=True, padding_side="left", return_tensors="pt").to(model.device)
        generated = model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            min_new_tokens=min_new_tokens,
            do_sample=False,
            pad_token_id=pad_id,
            eos_token_id=tokenizer.eos_token_id,
            use_cache=True,
        )
        for row in generated[:, batch["input_ids"].shape[1] :].tolist():
            ids = row[: next((i for i, token in enumerate(row) if token in stop_ids), len(row))]
            text = tokenizer.decode(ids, skip_special_tokens=True)
            outputs.append(text)
            lengths.append(len(ids))
            predictions.append(parse(text))
    return CoTResult(predictions, lengths, outputs)


def cot_decode(
    model,
    tokenizer,
    texts: Sequence[str],
    label_names: Sequence[str],
    batch_size: int = 8,
    max_new_tokens: int = 500,
    min_new_tokens: int | None = None,
) -> CoTResult:
    """Greedy CoT generation; `min_new_tokens=max_new_tokens` forces a fixed length (reproducible timing)."""
    if not texts:  # a tokenizer refuses an empty batch; a launched rank may have no rows
        return CoTResult([], [], [])
    prompts = tokenizer(cot_prompts(tokenizer, texts, label_names), add_special_tokens=False)["input_ids"]
    parse = lambda text: parse_answer(text, label_names)  # noqa: E731
    return greedy_decode(model, tokenizer, prompts, parse, batch_size, max_new_tokens, min_new_tokens)
