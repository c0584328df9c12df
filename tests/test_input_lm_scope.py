"""`lm_loss_scope="input"`: the teacher-free control (GPT-1's auxiliary LM objective on the input). Every row's input
tokens are LM targets, with or without a rationale; the rationale is never read; with `lm_weight=0` it is exactly
the pooled baseline; exact under gradient accumulation; `dhrd train` runs it on data without a rationale column."""

import json
import random

import pytest
import torch
from cli_helpers import dhrd_in_process
from conftest import tiny_dhrd
from datasets import Dataset

from trainer import DHRDTrainer, DHRDTrainingArguments
from trainer.training.sequences import DHRDDataCollator

WORDS = "the red green blue sky grass sea apple leaf berry".split()


def _rows(n: int, seed: int = 0) -> list[dict]:
    """Rows with and without a rationale (every third has none)."""
    rng = random.Random(seed)
    return [
        {
            "text": " ".join(rng.choices(WORDS, k=rng.randint(3, 9))),
            "label": rng.randrange(3),
            "rationale": None if i % 3 == 2 else " ".join(rng.choices(WORDS, k=rng.randint(2, 12))),
        }
        for i in range(n)
    ]


def _args(tmp_path, **overrides) -> DHRDTrainingArguments:
    settings = dict(
        output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=4, learning_rate=1e-3, report_to=[],
        save_strategy="no", use_cpu=True, seed=0, logging_steps=1, lm_loss_scope="input", max_input_length=32,
    )  # fmt: skip
    return DHRDTrainingArguments(**{**settings, **overrides})


def _trainer(tmp_path, tokenizer, rows, **overrides) -> DHRDTrainer:
    return DHRDTrainer(
        model=tiny_dhrd("qwen2", num_labels=3).train(),
        args=_args(tmp_path, **overrides),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )


def test_the_lm_targets_are_exactly_every_rows_input_tokens(tmp_path, tokenizer):
    rows = _rows(6)
    trainer = _trainer(tmp_path, tokenizer, rows)
    prepared = trainer.train_dataset
    # the sequences are the inputs alone (a rationale is not read), tokenised as the classifier sees them
    for row, feature in zip(rows, prepared):
        assert feature["input_ids"] == tokenizer(row["text"], truncation=True, max_length=32)["input_ids"]
        assert feature["num_reasoning_tokens"] == 0
    batch = trainer.data_collator([prepared[i] for i in range(len(rows))])
    lengths = [len(feature["input_ids"]) for feature in prepared]
    for row, length in enumerate(lengths):
        targets = (batch["lm_labels"][row] != -100).nonzero().flatten().tolist()
        assert targets == list(range(length))  # rows with and without a rationale alike
        assert batch["lm_labels"][row][:length].tolist() == batch["input_ids"][row][:length].tolist()
    assert batch["pooling_mask"].sum(1).tolist() == lengths


def test_the_collator_gives_input_targets_to_rows_without_a_rationale():
    features = [
        {"input_ids": [5] * 12, "num_input_tokens": 4, "num_reasoning_tokens": 5, "labels": 1, "has_rationale": True},
        {"input_ids": [7, 8], "num_input_tokens": 2, "num_reasoning_tokens": 0, "labels": 0, "has_rationale": False},
    ]
    batch = DHRDDataCollator(5, lm_loss_scope="input")(features)
    assert [(batch["lm_labels"][row] != -100).nonzero().flatten().tolist() for row in (0, 1)] == [[0, 1, 2, 3], [0, 1]]


def test_with_lm_weight_zero_it_trains_exactly_like_the_pooled_baseline(tmp_path, tokenizer):
    rows = _rows(8, seed=1)
    scoped = _trainer(tmp_path / "input", tokenizer, rows, lm_weight=0.0)
    pooled = _trainer(tmp_path / "pooled", tokenizer, rows, lm_weight=0.0, lm_loss_scope="rationale")
    scoped.train()
    pooled.train()
    losses = [[log["loss"] for log in t.state.log_history if "loss" in log] for t in (scoped, pooled)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-6, abs=1e-7)
    ours, theirs = dict(scoped.model.named_parameters()), dict(pooled.model.named_parameters())
    for name, value in theirs.items():
        torch.testing.assert_close(ours[name], value, atol=1e-6, rtol=1e-5, msg=name)


def test_gradient_accumulation_is_exact(tmp_path, tokenizer):
    rows = _rows(8, seed=2)
    full = _trainer(tmp_path / "full", tokenizer, rows, max_steps=1, per_device_train_batch_size=8)
    accumulated = _trainer(
        tmp_path / "ga", tokenizer, rows, max_steps=1, per_device_train_batch_size=2, gradient_accumulation_steps=4
    )
    full.train()
    accumulated.train()
    ours, theirs = dict(accumulated.model.named_parameters()), dict(full.model.named_parameters())
    for name, value in theirs.items():
        torch.testing.assert_close(ours[name], value, atol=2e-6, rtol=1e-5, msg=name)


def test_dhrd_train_runs_it_on_data_without_rationales(tmp_path, tiny_backbone_dir, capsys):
    rows = [{"text": row["text"], "label": ["red", "green", "blue"][row["label"]]} for row in _rows(8, seed=3)]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "run"
    dhrd_in_process(
        capsys, "train", "--model_name_or_path", str(tiny_backbone_dir), "--train_file", str(tmp_path / "rows.jsonl"),
        "--output_dir", str(out), "--max_steps", "2", "--per_device_train_batch_size", "4", "--report_to", "none",
        "--save_strategy", "no", "--lm_loss_scope", "input", "--logging_steps", "1",
    )  # fmt: skip
    record = json.loads((out / "dhrd_training.json").read_text())
    assert record["training"]["lm_loss_scope"] == "input"
    assert record["preparation"]["train"]["with_rationale"] == 0
    exported = tmp_path / "exported"
    dhrd_in_process(capsys, "export", "--model", str(out), "--output_dir", str(exported))
    assert json.loads((exported / "config.json").read_text())["architectures"] == ["Qwen2ForSequenceClassification"]


def test_an_option_row_models_the_gold_options_input():
    """Multiple choice: the gold option's sequence (context + that option) gets the input targets, the others none."""
    from trainer.training.choice_sequences import DHRDMultipleChoiceCollator

    features = [{"input_ids": [[4, 5, 6], [4, 5, 7, 8]], "num_input_tokens": [3, 4], "num_reasoning_tokens": 0,
                 "labels": 1, "has_rationale": False}]  # fmt: skip
    batch = DHRDMultipleChoiceCollator(0, lm_loss_scope="input")(features)
    assert (batch["lm_labels"][0, 0] == -100).all()
    assert batch["lm_labels"][0, 1].tolist() == [4, 5, 7, 8]


@pytest.mark.parametrize("flags", [["--lm_loss_scope", "input"], ["--lm-loss-scope=input"]])
def test_the_demo_refuses_the_input_scope(flags, capsys):
    """The demo's DHRD rows train on rationales; the input scope reads none, so its verdicts would be wrong."""
    from cli_helpers import refusal_in_process

    line = refusal_in_process(capsys, "demo", *flags)
    assert "dhrd compare --arms input_lm,dhrd" in line


def test_option_rows_under_the_input_scope_take_one_backbone_pass(tokenizer):
    """Running the gold row apart saves padding only when it is longer (a rationale); its input alone is not."""
    from test_multiple_choice import ROWS, _batch, tiny_scorer

    model = tiny_scorer()
    rows = [{**row, "options": row["options"][:2]} for row in ROWS]
    passes = []
    model.model.register_forward_hook(lambda *_: passes.append(1))
    model(**_batch(tokenizer, rows, scope="input", include_rationale=False))
    assert len(passes) == 1
    passes.clear()
    model(**_batch(tokenizer, rows, scope="rationale"))
    assert len(passes) == 2  # with rationales the gold rows run apart, as measured worth it
