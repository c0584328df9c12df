"""Decoding with the trained reasoning head: the same tokens as the native causal LM, and it reads the answer."""

import pytest
import torch
from conftest import ARCHITECTURES, make_tokenizer, tiny_dhrd
from transformers import AutoModelForCausalLM

from trainer import DHRDDataCollator, SequenceBuilder
from trainer.inference.reasoning_decode import reasoning_head_decode

TEXTS = ["rain and wind", "a much longer input about the sun"]


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_reasoning_head_decode_generates_what_the_native_causal_lm_generates(architecture):
    tokenizer = make_tokenizer()
    model = tiny_dhrd(architecture, num_labels=2)
    native = AutoModelForCausalLM.from_config(model.config.text_config).eval()
    native_prefix = native.base_model_prefix
    state = {key.replace("model.", f"{native_prefix}.", 1): value for key, value in model.state_dict().items()}
    missing, unexpected = native.load_state_dict(state, strict=False)
    assert set(missing) <= {"lm_head.weight"}  # tied to the embeddings, restored by tie_weights
    assert all(key.startswith("score") for key in unexpected)
    native.tie_weights()

    result = reasoning_head_decode(model, tokenizer, TEXTS, {0: "A", 1: "B"}, batch_size=2, max_new_tokens=12)
    assert min(result.generated_tokens) > 0

    marker = tokenizer(model.config.reason_marker, add_special_tokens=False)["input_ids"]
    for text, decoded, length in zip(TEXTS, result.texts, result.generated_tokens):
        prompt = torch.tensor([tokenizer(text)["input_ids"] + marker])
        expected = native.generate(prompt, max_new_tokens=12, do_sample=False, pad_token_id=0, eos_token_id=0)
        ids = expected[0, prompt.shape[1] :].tolist()
        ids = ids[: ids.index(0)] if 0 in ids else ids
        assert decoded == tokenizer.decode(ids) and length == len(ids)


def test_reasoning_head_trained_on_rationales_reads_its_own_answer():
    """Overfit two labelled rows with the LM loss; decoding then writes each row's rationale and label."""
    tokenizer = make_tokenizer()
    model = tiny_dhrd("llama", num_labels=2, seed=1).train()
    id2label = {0: "no", 1: "yes"}
    rows = [
        {"text": "is snow cold", "label": 1, "rationale": "snow is frozen"},
        {"text": "is fire cold", "label": 0, "rationale": "fire burns"},
    ]
    builder = SequenceBuilder(tokenizer, id2label, model.config.reason_marker, model.config.answer_marker)
    batch = DHRDDataCollator(pad_token_id=0)([builder(row, i) for i, row in enumerate(rows)])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        optimizer.zero_grad()
        model(**batch).loss.backward()
        optimizer.step()

    result = reasoning_head_decode(model.eval(), tokenizer, [r["text"] for r in rows], id2label, max_new_tokens=40)

    assert result.predictions == [1, 0]
    assert result.texts[0].strip().startswith("snow is frozen")
    assert result.texts[0].endswith("yes")


def test_reasoning_head_decode_refuses_a_model_without_reasoning_head():
    model = tiny_dhrd("llama", num_labels=2, has_reasoning_head=False)
    with pytest.raises(ValueError, match="no reasoning head"):
        reasoning_head_decode(model, make_tokenizer(), TEXTS, {0: "A", 1: "B"})


def test_cot_decode_batched_with_left_padding_equals_one_prompt_at_a_time():
    """The prompted-CoT baseline shares the decoding loop: batching must not change a single generated token."""
    from conftest import tiny_text_config

    from trainer.inference.cot import cot_decode, cot_prompts

    tokenizer = make_tokenizer()
    torch.manual_seed(0)
    lm = AutoModelForCausalLM.from_config(tiny_text_config("llama")).eval()
    batched = cot_decode(lm, tokenizer, TEXTS, ["A", "B"], batch_size=2, max_new_tokens=10)
    assert min(batched.generated_tokens) > 0  # real completions, not empty ones that would match trivially
    for text, decoded, length in zip(TEXTS, batched.texts, batched.generated_tokens):
        prompt = torch.tensor(
            tokenizer(cot_prompts(tokenizer, [text], ["A", "B"]), add_special_tokens=False)["input_ids"]
        )
        ids = lm.generate(prompt, max_new_tokens=10, do_sample=False, pad_token_id=0)[0, prompt.shape[1] :].tolist()
        ids = ids[: ids.index(0)] if 0 in ids else ids
        assert decoded == tokenizer.decode(ids) and length == len(ids)
