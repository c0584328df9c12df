"""The second real backbone, Gemma-3-270M from PyPI chunk wheels: DHRD semantics on a real non-Llama architecture.

Gemma differs from SmolLM2 where DHRD could go wrong: scaled embeddings, sliding-window layers, a tied 262k-row
LM head (the chunked LM loss must match the native causal-LM loss on it), and a pad token that is not eos.
"""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from modeling_dhrd import DHRDForSequenceClassification, export_classifier

pytestmark = pytest.mark.slow

QUESTION = "Premise: The man broke his toe. What was the cause? Option 1: He dropped a hammer on his foot."
RATIONALE = " Reasoning: a hammer dropped on a foot can break a toe. Answer: option 1"


@pytest.fixture(scope="module")
def gemma(gemma_path):
    tokenizer = AutoTokenizer.from_pretrained(gemma_path)
    torch.manual_seed(0)
    model = DHRDForSequenceClassification.from_backbone(
        str(gemma_path), num_labels=2, id2label={0: "option 1", 1: "option 2"}
    ).eval()
    return tokenizer, model


def test_gemma_joint_loss_matches_native_causal_lm_and_pooling_ignores_the_rationale(gemma, gemma_path):
    tokenizer, model = gemma
    assert type(model.model).__name__ == "Gemma3TextModel" and model.config.text_config.vocab_size == 262144
    assert model.lm_head.weight is model.model.embed_tokens.weight
    x = tokenizer(QUESTION, return_tensors="pt")["input_ids"]
    rationale = tokenizer(RATIONALE, add_special_tokens=False, return_tensors="pt")["input_ids"]
    full = torch.cat([x, rationale], dim=1)
    pooling_mask = torch.cat([torch.ones_like(x), torch.zeros_like(rationale)], dim=1)
    lm_labels = torch.cat([torch.full_like(x, -100), rationale], dim=1)  # LM loss on the rationale only
    label = torch.tensor([0])
    with torch.no_grad():
        alone = model(input_ids=x).logits
        joint = model(input_ids=full, pooling_mask=pooling_mask, lm_labels=lm_labels, labels=label)
        native = AutoModelForCausalLM.from_pretrained(gemma_path).eval()(input_ids=full, labels=lm_labels).loss
    torch.testing.assert_close(joint.logits, alone, atol=1e-4, rtol=0)
    torch.testing.assert_close(joint.lm_loss, native, atol=1e-4, rtol=1e-4)
    cls_loss = torch.nn.functional.cross_entropy(alone, label)
    expected = model.config.cls_weight * cls_loss + model.config.lm_weight * native
    torch.testing.assert_close(joint.loss, expected, atol=1e-4, rtol=1e-4)
    assert 0 < native.item() < 8  # a real LM: English is far likelier than uniform (ln 262144 = 12.5)


def test_gemma_exports_to_the_native_gemma_classifier_with_equal_logits(gemma, tmp_path):
    tokenizer, model = gemma
    result = export_classifier(model, tmp_path / "out", tokenizer)
    assert result.native and result.architecture == "Gemma3TextForSequenceClassification"
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "out").eval()
    assert type(reloaded).__name__ == "Gemma3TextForSequenceClassification"
    assert reloaded.config.pad_token_id != tokenizer.eos_token_id
    tokenizer.padding_side = "right"
    batch = tokenizer([QUESTION, "Is the sky green?"], padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, model(**batch).logits, atol=1e-4, rtol=0)
