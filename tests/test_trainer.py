"""DHRDTrainer: data preparation, exact gradient accumulation, pooled-baseline equivalence, resume, LoRA, bf16."""

import random

import pytest
import torch
from conftest import tiny_dhrd
from datasets import Dataset
from peft import PeftModel
from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding, Trainer, TrainingArguments

from trainer import (
    DHRDDataCollator,
    DHRDTrainer,
    DHRDTrainingArguments,
    SequenceBuilder,
    inference_view,
    paper_lora_config,
    prepare_dhrd_dataset,
)

WORDS = "the cat sat on a warm mat while two dogs ran past it and barked at birds in trees".split()


def _rows(n: int, seed: int = 0, with_rationale: bool = True) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        text = " ".join(rng.choices(WORDS, k=rng.randint(3, 9)))
        rationale = " ".join(rng.choices(WORDS, k=rng.randint(2, 12))) if with_rationale else None
        rows.append({"text": text, "label": rng.randrange(3), "rationale": rationale})
    return rows


def _args(tmp_path, **overrides) -> DHRDTrainingArguments:
    defaults = dict(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=4,
        learning_rate=0.1,
        optim="sgd",
        max_steps=2,
        lr_scheduler_type="constant",
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=0,
        data_seed=0,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    defaults.update(overrides)
    return DHRDTrainingArguments(**defaults)


def _builder(tokenizer, **overrides) -> SequenceBuilder:
    kwargs = dict(
        tokenizer=tokenizer,
        id2label={0: "red", 1: "green", 2: "blue"},
        reason_marker="\nWhy:",
        answer_marker="\nSo:",
        max_input_length=64,
        max_length=128,
    )
    kwargs.update(overrides)
    return SequenceBuilder(**kwargs)


def _params(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


# -- data preparation --------------------------------------------------------------------------------------------


def test_training_sequence_is_input_then_marker_rationale_answer_eos(tokenizer):
    builder = _builder(tokenizer)
    row = builder({"text": "the cat", "label": "blue", "rationale": " it is blue "}, 0)
    x = tokenizer("the cat")["input_ids"]
    rest = tokenizer("\nWhy: it is blue", add_special_tokens=False)["input_ids"]
    answer = tokenizer("\nSo: blue", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert row["input_ids"] == x + rest + answer
    assert (row["num_input_tokens"], row["num_reasoning_tokens"], row["labels"]) == (len(x), len(rest), 2)


def test_rationale_is_cut_before_the_input(tokenizer):
    long_rationale = "because " * 40
    row = _builder(tokenizer, max_length=60, max_input_length=20)(
        {"text": "short input", "label": 0, "rationale": long_rationale}, 0
    )
    assert len(row["input_ids"]) == 60 and row["rationale_truncated"]
    assert row["input_ids"][: row["num_input_tokens"]] == tokenizer("short input")["input_ids"]
    long_input = "word " * 30
    row = _builder(tokenizer, max_length=200, max_input_length=20)(
        {"text": long_input, "label": 0, "rationale": "ok"}, 0
    )
    assert row["num_input_tokens"] == 20 and row["input_truncated"]
    assert row["input_ids"][:20] == tokenizer(long_input, truncation=True, max_length=20)["input_ids"]


def test_rows_without_rationale_are_counted_and_get_no_lm_targets(tokenizer):
    rows = _rows(6) + _rows(2, seed=9, with_rationale=False)
    prepared, report = prepare_dhrd_dataset(Dataset.from_list(rows), _builder(tokenizer))
    assert (report.rows, report.with_rationale, report.without_rationale) == (8, 6, 2)
    batch = DHRDDataCollator(tokenizer.pad_token_id)([prepared[i] for i in range(8)])
    assert (batch["lm_labels"][6:] == -100).all() and (batch["lm_labels"][:6] != -100).any()
    with pytest.raises(ValueError, match="Row 6: no rationale"):
        prepare_dhrd_dataset(Dataset.from_list(rows), _builder(tokenizer, require_rationales=True))


@pytest.mark.parametrize(
    "rows, message",
    [
        ([{"text": "ok", "label": 7, "rationale": "r"}], "Row 0: label 7 is out of range"),
        ([{"text": "ok", "label": 0, "rationale": "r"}, {"text": " ", "label": 0, "rationale": "r"}], "Row 1: empty"),
        ([{"text": "ok", "label": "purple", "rationale": "r"}], "Row 0: label 'purple'"),
        ([{"sentence": "ok", "label": 0, "rationale": "r"}], r"\['text'\] not found"),
    ],
)
def test_bad_rows_and_columns_are_named(tokenizer, rows, message):
    with pytest.raises((ValueError, KeyError), match=message):
        prepare_dhrd_dataset(Dataset.from_list(rows), _builder(tokenizer))


@pytest.mark.parametrize(
    "scope, expected",
    [("all", range(0, 12)), ("rationale", range(4, 9)), ("rationale_answer", range(4, 12))],
)
def test_collator_masks_come_from_segment_lengths_not_pad_id(scope, expected):
    pad = 5  # pad id equal to a real token id inside the row: masks must not depend on it
    features = [
        {"input_ids": [5] * 12, "num_input_tokens": 4, "num_reasoning_tokens": 5, "labels": 1, "has_rationale": True},
        {"input_ids": [7, 8], "num_input_tokens": 2, "num_reasoning_tokens": 0, "labels": 0, "has_rationale": False},
    ]
    batch = DHRDDataCollator(pad, lm_loss_scope=scope)(features)
    assert batch["input_ids"].shape == (2, 12)
    assert batch["attention_mask"].sum(1).tolist() == [12, 2]
    assert batch["pooling_mask"].sum(1).tolist() == [4, 2]
    targets = (batch["lm_labels"][0] != -100).nonzero().flatten()
    assert targets.tolist() == list(expected)  # position 0 has no predecessor: the loss shifts it away
    assert (batch["lm_labels"][1] == -100).all()
    view = inference_view(batch)
    assert view["input_ids"].shape == (2, 4) and view["attention_mask"].sum(1).tolist() == [4, 2]


# -- the trainer -----------------------------------------------------------------------------------------------


def _train(tmp_path, tokenizer, rows, model=None, **arg_overrides):
    model = model if model is not None else tiny_dhrd("qwen2", num_labels=3).train()
    trainer = DHRDTrainer(
        model=model,
        args=_args(tmp_path, **arg_overrides),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    trainer.train()
    return trainer


@pytest.mark.parametrize("class_weights", [None, "1,3,5", "balanced"])
def test_gradient_accumulation_matches_the_full_batch(tmp_path, tokenizer, class_weights):
    """Exact with class weights too: the window's examples count as their summed class weights."""
    rows = [{**row, "label": label} for row, label in zip(_rows(4, seed=3), [0, 1, 2, 2])]
    full = _train(
        tmp_path / "a", tokenizer, rows, per_device_train_batch_size=4, max_steps=1, class_weights=class_weights
    )
    accumulated = _train(
        tmp_path / "b", tokenizer, rows, per_device_train_batch_size=1, gradient_accumulation_steps=4, max_steps=1,
        class_weights=class_weights,
    )  # fmt: skip
    if class_weights == "balanced":
        assert full.model.config.class_weights == pytest.approx([4 / 3, 4 / 3, 2 / 3])
    initial = _params(tiny_dhrd("qwen2", num_labels=3))
    full_params, accumulated_params = _params(full.model), _params(accumulated.model)
    moved = max((full_params[name] - initial[name]).abs().max().item() for name in initial)
    assert moved > 1e-3
    for name in initial:
        torch.testing.assert_close(accumulated_params[name], full_params[name], atol=2e-6, rtol=1e-5, msg=name)


def test_lm_weight_zero_trains_exactly_like_the_native_pooled_classifier(tmp_path, tokenizer):
    rows = _rows(8, seed=4)
    dhrd = tiny_dhrd("llama", num_labels=3).train()
    native_config = dhrd.config.text_config.__class__.from_dict({**dhrd.config.text_config.to_dict(), "num_labels": 3})
    native = AutoModelForSequenceClassification.from_config(native_config)
    native.load_state_dict({k: v for k, v in dhrd.state_dict().items() if not k.startswith("lm_head")})
    native.config.pad_token_id = tokenizer.pad_token_id  # id 0 never occurs inside the byte-level inputs
    trained = _train(tmp_path / "dhrd", tokenizer, rows, model=dhrd, lm_weight=0.0)

    dataset = Dataset.from_list([{"text": r["text"], "labels": r["label"]} for r in rows])
    dataset = dataset.map(lambda r: tokenizer(r["text"]), remove_columns=["text"])
    ours = _args(tmp_path / "native").to_dict()
    shared = {k: v for k, v in ours.items() if k in TrainingArguments.__dataclass_fields__ and not k.startswith("_")}
    baseline_args = TrainingArguments(**shared)
    baseline = Trainer(
        model=native, args=baseline_args, train_dataset=dataset, data_collator=DataCollatorWithPadding(tokenizer)
    )
    baseline.train()
    ours = _params(trained.model)
    for name, value in _params(native).items():
        torch.testing.assert_close(ours[name], value, atol=1e-6, rtol=1e-5, msg=name)


def test_logs_report_cls_loss_lm_loss_and_train_accuracy(tmp_path, tokenizer):
    trainer = _train(tmp_path, tokenizer, _rows(8, seed=5), cls_weight=0.5, lm_weight=2.0)
    step_logs = [log for log in trainer.state.log_history if "loss" in log]
    assert len(step_logs) == 2
    for log in step_logs:
        assert {"cls_loss", "lm_loss", "train_accuracy"} <= log.keys()
        assert log["loss"] == pytest.approx(0.5 * log["cls_loss"] + 2.0 * log["lm_loss"], rel=1e-3)
    assert trainer.preparation_reports["train"].with_rationale == 8


def test_evaluation_and_prediction_use_the_input_alone(tmp_path, tokenizer):
    rows = _rows(6, seed=6)
    model = tiny_dhrd("gpt2", num_labels=3)
    trainer = DHRDTrainer(
        model=model,
        args=_args(tmp_path, per_device_eval_batch_size=4),
        eval_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    prediction = trainer.predict(trainer.eval_dataset)
    tokenizer.padding_side = "right"
    with torch.no_grad():
        expected = model(**tokenizer([r["text"] for r in rows], padding=True, return_tensors="pt")).logits
    torch.testing.assert_close(torch.as_tensor(prediction.predictions), expected, atol=1e-5, rtol=0)
    raw = trainer.predict(Dataset.from_list(rows))  # raw rows are prepared on the way in
    torch.testing.assert_close(torch.as_tensor(raw.predictions), expected, atol=1e-5, rtol=0)
    assert {"test_accuracy", "test_macro_f1", "test_loss"} <= prediction.metrics.keys()
    assert prediction.metrics["test_accuracy"] == pytest.approx(
        (expected.argmax(-1) == torch.tensor([r["label"] for r in rows])).float().mean().item()
    )


def test_resume_from_checkpoint_reaches_the_same_weights(tmp_path, tokenizer):
    rows = _rows(16, seed=7)
    straight = _train(tmp_path / "straight", tokenizer, rows, max_steps=4, optim="adamw_torch", learning_rate=1e-2)
    _train(
        tmp_path / "resumed",
        tokenizer,
        rows,
        max_steps=2,
        save_strategy="steps",
        save_steps=2,
        optim="adamw_torch",
        learning_rate=1e-2,
    )
    model = tiny_dhrd("qwen2", num_labels=3).train()
    args = _args(tmp_path / "resumed", max_steps=4, optim="adamw_torch", learning_rate=1e-2)
    resumed = DHRDTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    resumed.train(resume_from_checkpoint=str(tmp_path / "resumed" / "out" / "checkpoint-2"))
    expected = _params(straight.model)
    for name, value in _params(resumed.model).items():
        torch.testing.assert_close(value, expected[name], atol=1e-6, rtol=1e-5, msg=name)


def test_lora_trains_adapters_and_score_only_and_saves_score(tmp_path, tokenizer):
    model = tiny_dhrd("qwen2", num_labels=3).train()  # untied: the reasoning head is its own matrix
    before = _params(model)
    trainer = DHRDTrainer(
        model=model,
        args=_args(tmp_path, activation_checkpointing=True),
        train_dataset=Dataset.from_list(_rows(8)),
        processing_class=tokenizer,
        peft_config=paper_lora_config(r=4, lora_alpha=8),
    )
    trainer.train()
    peft_model = trainer.model
    assert isinstance(peft_model, PeftModel)
    trainable = {name for name, p in peft_model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name or "score" in name for name in trainable)
    base = peft_model.get_base_model()
    assert torch.equal(base.model.embed_tokens.weight, before["model.embed_tokens.weight"])
    assert torch.equal(base.lm_head.weight, before["lm_head.weight"])
    assert torch.equal(
        base.model.layers[0].self_attn.q_proj.base_layer.weight, before["model.layers.0.self_attn.q_proj.weight"]
    )
    score_now = base.score.modules_to_save["default"].weight.detach().clone()
    assert not torch.equal(score_now, before["score.weight"])
    trainer.save_model(str(tmp_path / "adapter"))
    reloaded = PeftModel.from_pretrained(tiny_dhrd("qwen2", num_labels=3), str(tmp_path / "adapter"))
    torch.testing.assert_close(reloaded.get_base_model().score.modules_to_save["default"].weight, score_now)


def test_bf16_training_runs_on_cpu(tmp_path, tokenizer):
    trainer = _train(tmp_path, tokenizer, _rows(8), bf16=True, learning_rate=1e-3, optim="adamw_torch")
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))


def test_model_settings_have_one_owner_and_the_arguments_override_them(tmp_path, tokenizer, tiny_backbone_dir):
    """`from_backbone(..., lm_weight=0.5)` trains with 0.5 unless the arguments say otherwise (then with theirs)."""
    from modeling_dhrd import DHRDForSequenceClassification

    def losses(trainer) -> list[dict]:
        return [log for log in trainer.state.log_history if "loss" in log]

    model = DHRDForSequenceClassification.from_backbone(str(tiny_backbone_dir), num_labels=3, lm_weight=0.5)
    kept = _train(tmp_path / "kept", tokenizer, _rows(8, seed=7), model=model)
    assert kept.model.config.lm_weight == 0.5 and kept.model.config.cls_weight == 1.0
    for log in losses(kept):
        assert log["loss"] == pytest.approx(log["cls_loss"] + 0.5 * log["lm_loss"], rel=1e-3)
    model = DHRDForSequenceClassification.from_backbone(str(tiny_backbone_dir), num_labels=3, lm_weight=0.5)
    overridden = _train(tmp_path / "over", tokenizer, _rows(8, seed=7), model=model, lm_weight=2.0)
    assert overridden.model.config.lm_weight == 2.0
    for log in losses(overridden):
        assert log["loss"] == pytest.approx(log["cls_loss"] + 2.0 * log["lm_loss"], rel=1e-3)


def test_arguments_are_validated(tmp_path):
    with pytest.raises(ValueError, match="lm_loss_scope"):
        DHRDTrainer(model=tiny_dhrd(), args=_args(tmp_path, lm_loss_scope="everything"))
    with pytest.raises(ValueError, match="both be 0"):  # the model's config validates the weights it is given
        DHRDTrainer(model=tiny_dhrd(), args=_args(tmp_path, cls_weight=0, lm_weight=0))
    with pytest.raises(ValueError, match="max_steps=0"):
        DHRDTrainingArguments(output_dir="x", max_steps=0, report_to=[])
    with pytest.raises(ValueError, match="max_input_length"):
        DHRDTrainingArguments(output_dir="x", max_input_length=2048, max_length=1024, report_to=[])


def test_a_streamed_dataset_is_prepared_as_it_is_read(tmp_path, tokenizer):
    """An `IterableDataset` (e.g. `load_dataset(..., streaming=True)`) trains like a map-style one: the same batch
    gives the same weights; it has no preparation report (counting would read the whole stream)."""
    rows = _rows(8, seed=9)
    one_batch = {"max_steps": 1, "per_device_train_batch_size": 8}  # the same batch however the rows are ordered
    mapped = _train(tmp_path / "m", tokenizer, rows, **one_batch)
    model = tiny_dhrd("qwen2", num_labels=3).train()
    stream = Dataset.from_list(rows).to_iterable_dataset()
    trainer = DHRDTrainer(
        model=model, args=_args(tmp_path / "s", **one_batch), train_dataset=stream, processing_class=tokenizer
    )
    trainer.train()
    assert trainer.state.global_step == 1 and "train" not in trainer.preparation_reports
    assert mapped.preparation_reports["train"].rows == 8
    for name, value in _params(mapped.model).items():
        torch.testing.assert_close(_params(trainer.model)[name], value, atol=1e-6, rtol=1e-5, msg=name)


def test_several_gpus_in_one_process_are_refused_with_the_launcher_to_use(tmp_path):
    """`n_gpu > 1` (one process seeing several GPUs, no launcher) would make the Trainer wrap the model in
    `DataParallel`, which averages replica losses that DHRD already normalised globally: refused, naming torchrun."""
    args = _args(tmp_path)
    args._n_gpu = 2  # what `TrainingArguments` computes on a machine with two visible GPUs and no launcher
    with pytest.raises(ValueError, match=r"2 GPUs in one process .* `torchrun --nproc_per_node 2 \.\.\.`"):
        DHRDTrainer(model=tiny_dhrd(), args=args)
    args._n_gpu = 1
    assert DHRDTrainer(model=tiny_dhrd(), args=args).args.n_gpu == 1
