"""`--padding_free`: packed training batches (several sequences per row, positions restarting, no padding) give the
padded batches' logits and losses for every problem kind, with rationales and without, under every LM scope; a
packed sequence never sees its neighbours; the Trainer trains the same weights packed or padded, gradient
accumulation included; a backbone whose attention would let packed sequences see each other is refused."""

import pytest
import torch
from conftest import tiny_dhrd
from datasets import Dataset
from test_multiple_choice import ROWS as CHOICE_ROWS
from test_multiple_choice import _batch as choice_batch
from test_multiple_choice import tiny_scorer

from trainer import DHRDTrainer, DHRDTrainingArguments, paper_lora_config
from trainer.training.packing import first_fit_decreasing, pack_batch
from trainer.training.sequences import DHRDDataCollator, SequenceBuilder

NAMES = {0: "red", 1: "green", 2: "blue"}
TEXTS = ["a short one", "a somewhat longer input sentence than the others", "mid length text", "x", "two words"]
RATIONALES = ["because it is", None, "a long rationale that explains the whole thing at length", "why not", None]
KINDS = {
    "single_label": ({"num_labels": 3}, [0, 2, 1, 0, 2]),
    "multi_label": (
        {"num_labels": 3, "problem_type": "multi_label_classification"},
        [["red"], ["red", "blue"], [], ["green"], ["blue"]],
    ),
    "regression": ({"num_labels": 1, "problem_type": "regression"}, [0.5, 1.5, -2.0, 3.0, 0.0]),
}


def _padded_batch(tokenizer, kind: str, scope: str) -> dict[str, torch.Tensor]:
    settings, labels = KINDS[kind]
    id2label = NAMES if settings["num_labels"] == 3 else {0: "score"}
    builder = SequenceBuilder(
        tokenizer=tokenizer,
        id2label=id2label,
        reason_marker="\nReasoning:",
        answer_marker="\nAnswer:",
        include_rationale=scope != "input",
        problem_kind=settings.get("problem_type", "single_label_classification"),
        max_input_length=64,
        max_length=160,
    )
    rows = [{"text": t, "label": y, "rationale": r} for t, y, r in zip(TEXTS, labels, RATIONALES)]
    return DHRDDataCollator(pad_token_id=0, lm_loss_scope=scope)([builder(row, i) for i, row in enumerate(rows)])


def _packed_order(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Where each example lands among the packed sequences: pack the example numbers as labels."""
    return pack_batch({**batch, "labels": torch.arange(batch["labels"].shape[0])}, pad_token_id=0)["labels"]


def _assert_same_outputs(packed, padded, order: torch.Tensor) -> None:
    torch.testing.assert_close(packed.logits, padded.logits[order], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(packed.cls_loss, padded.cls_loss, atol=1e-5, rtol=1e-4)
    if padded.lm_loss is None:
        assert packed.lm_loss is None
    else:
        torch.testing.assert_close(packed.lm_loss, padded.lm_loss, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("scope", ["all", "rationale", "input"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_packed_batches_give_the_padded_logits_and_losses(tokenizer, kind, scope):
    settings, _ = KINDS[kind]
    model = tiny_dhrd("llama", **settings)
    batch = _padded_batch(tokenizer, kind, scope)
    packed_batch = pack_batch(batch, pad_token_id=0)
    assert "attention_mask" not in packed_batch and packed_batch["input_ids"].numel() < batch["input_ids"].numel()
    real = packed_batch["pooling_mask"].sum()
    assert real == batch["pooling_mask"].sum()  # every input token, once
    with torch.no_grad():
        _assert_same_outputs(model(**packed_batch), model(**batch), _packed_order(batch))


def test_mean_pooling_and_gradients_are_the_padded_ones(tokenizer):
    padded_model = tiny_dhrd("qwen2", num_labels=3, pooling="mean").train()
    packed_model = tiny_dhrd("qwen2", num_labels=3, pooling="mean").train()
    for model in (padded_model, packed_model):
        model.dropout.p = 0.0
    batch = _padded_batch(tokenizer, "single_label", "all")
    padded, packed = padded_model(**batch), packed_model(**pack_batch(batch, pad_token_id=0))
    _assert_same_outputs(packed, padded, _packed_order(batch))
    padded.loss.backward()
    packed.loss.backward()
    for (name, a), (_, b) in zip(padded_model.named_parameters(), packed_model.named_parameters()):
        torch.testing.assert_close(b.grad, a.grad, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("scope", ["all", "rationale", "input"])
def test_packed_option_rows_keep_each_examples_options_together(tokenizer, scope):
    rows = [row for row in CHOICE_ROWS if len(row["options"]) == 2]
    batch = choice_batch(tokenizer, rows, scope=scope, include_rationale=scope != "input")
    model = tiny_scorer()
    with torch.no_grad():
        _assert_same_outputs(model(**pack_batch(batch, pad_token_id=0)), model(**batch), _packed_order(batch))


def test_a_packed_sequence_never_sees_its_neighbours():
    model = tiny_dhrd("llama", num_labels=3)
    positions = torch.tensor([[0, 1, 2, 3, 0, 1, 2, 0, 1]])
    pooling = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 0, 0]])  # two sequences and a two-token tail
    base = torch.tensor([[5, 6, 7, 8, 9, 10, 11, 0, 0]])
    changed_first, changed_second = base.clone(), base.clone()
    changed_first[0, :4] = torch.tensor([20, 21, 22, 23])
    changed_second[0, 4:7] = torch.tensor([30, 31, 32])
    with torch.no_grad():
        logits = {
            name: model(input_ids=ids, position_ids=positions, pooling_mask=pooling).logits
            for name, ids in (("base", base), ("first", changed_first), ("second", changed_second))
        }
        alone = model(input_ids=base[:, 4:7]).logits
    assert logits["base"].shape == (2, 3)  # the tail is no sequence
    torch.testing.assert_close(logits["first"][1], logits["base"][1])  # the second never saw the first
    torch.testing.assert_close(logits["second"][0], logits["base"][0])  # the first's pooled end never saw the next
    torch.testing.assert_close(logits["base"][1], alone[0], atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="need `pooling_mask`"):
        model(input_ids=base, position_ids=positions)


def test_first_fit_decreasing_fills_each_bin_before_opening_another():
    bins = first_fit_decreasing([5, 3, 2, 4, 1], capacity=5)
    assert bins == [[0], [3, 4], [1, 2]]
    assert sorted(i for b in bins for i in b) == [0, 1, 2, 3, 4]


def _train(tmp_path, tokenizer, padding_free: bool, peft_config=None, **overrides) -> torch.nn.Module:
    rows = [
        {"text": t * (1 + i % 3), "label": i % 3, "rationale": r}
        for i, (t, r) in enumerate(zip(TEXTS * 3, RATIONALES * 3))
    ]
    args = DHRDTrainingArguments(
        output_dir=str(tmp_path / str(padding_free)), max_steps=2, per_device_train_batch_size=4, learning_rate=1e-3,
        report_to=[], save_strategy="no", use_cpu=True, seed=0, logging_steps=1, padding_free=padding_free,
        max_input_length=64, max_length=160, **overrides,
    )  # fmt: skip
    model = tiny_dhrd("llama", num_labels=3, classifier_dropout=0.0).train()
    trainer = DHRDTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return model, losses


def test_the_trainer_trains_the_same_weights_packed_or_padded_with_accumulation(tmp_path, tokenizer):
    padded, padded_losses = _train(tmp_path, tokenizer, False, gradient_accumulation_steps=2)
    packed, packed_losses = _train(tmp_path, tokenizer, True, gradient_accumulation_steps=2)
    assert packed_losses == pytest.approx(padded_losses, rel=1e-4)
    for (name, a), (_, b) in zip(padded.named_parameters(), packed.named_parameters()):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4, msg=name)


def test_lora_trains_the_same_adapter_packed_or_padded(tmp_path, tokenizer):
    lora = paper_lora_config(r=4, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
    padded, padded_losses = _train(tmp_path, tokenizer, False, peft_config=lora)
    packed, packed_losses = _train(tmp_path, tokenizer, True, peft_config=lora)
    assert packed_losses == pytest.approx(padded_losses, rel=1e-4)
    trained = {name: value for name, value in padded.named_parameters() if "lora_" in name or "score" in name}
    assert trained
    for name, value in packed.named_parameters():
        if name in trained:
            torch.testing.assert_close(value, trained[name], atol=1e-5, rtol=1e-4, msg=name)


def test_a_backbone_whose_attention_ignores_packing_is_refused(tmp_path, tokenizer):
    model = tiny_dhrd("llama", num_labels=3)
    backbone_forward = model.model.forward

    def causal_only(*args, attention_mask=None, position_ids=None, **kwargs):
        # what a remote-code backbone that builds a plain causal mask would do with packed rows
        ones = torch.ones(position_ids.shape, dtype=torch.long) if attention_mask is None else attention_mask
        return backbone_forward(*args, attention_mask=ones, position_ids=position_ids, **kwargs)

    model.model.forward = causal_only
    args = DHRDTrainingArguments(
        output_dir=str(tmp_path), max_steps=1, report_to=[], use_cpu=True, padding_free=True, save_strategy="no"
    )
    rows = Dataset.from_list([{"text": "a b", "label": 0, "rationale": "c"}])
    trainer = DHRDTrainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer)
    with pytest.raises(ValueError, match="--padding_free: this backbone .* drop --padding_free"):
        trainer.train()  # checked at the first step, through the model as it trains


def test_an_option_scorer_passes_the_packing_check_at_its_first_step(tmp_path, tokenizer):
    rows = [row for row in CHOICE_ROWS if len(row["options"]) == 2 and isinstance(row["label"], int)]
    args = DHRDTrainingArguments(
        output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=2, report_to=[], use_cpu=True,
        padding_free=True, save_strategy="no",
    )  # fmt: skip
    trainer = DHRDTrainer(model=tiny_scorer().train(), args=args, train_dataset=Dataset.from_list(rows),
                          processing_class=tokenizer)  # fmt: skip
    trainer.train()
    assert trainer._packing_checked and trainer.state.global_step == 1


TEXTS_TO_CLASSIFY = ["a", "a short text", "a much longer text than any of the others, with commas", "mid text", "xy"]


def _classifiers(tmp_path, tokenizer) -> dict:
    """A DHRD checkpoint, its native export and a DHRD option scorer, each loaded as `dhrd predict` loads them."""
    from modeling_dhrd import export_classifier
    from trainer.inference.classify import load_classifier

    dhrd = tiny_dhrd("llama", num_labels=3, id2label=NAMES, label2id={v: k for k, v in NAMES.items()})
    dhrd.save_pretrained(tmp_path / "dhrd")
    tokenizer.save_pretrained(tmp_path / "dhrd")
    export_classifier(dhrd, tmp_path / "export", tokenizer)
    scorer = tiny_scorer()
    scorer.save_pretrained(tmp_path / "scorer")
    tokenizer.save_pretrained(tmp_path / "scorer")
    return {name: load_classifier(str(tmp_path / name), "cpu") for name in ("dhrd", "export", "scorer")}


@pytest.mark.parametrize("name", ["dhrd", "export", "scorer"])
def test_a_packed_inference_row_scores_as_the_padded_batch(tmp_path, tokenizer, name):
    from trainer.inference.classify import classify_batches

    model, loaded_tokenizer = _classifiers(tmp_path, tokenizer)[name]
    assert (name == "export") == (model.config.model_type != "dhrd")  # a native transformers classifier

    def scores(padding_free: bool) -> dict[int, torch.Tensor]:
        batches = classify_batches(
            model, loaded_tokenizer, TEXTS_TO_CLASSIFY, 64, max_batch_tokens=64, progress=False,
            padding_free=padding_free,
        )  # fmt: skip
        return {p: row for positions, logits in batches for p, row in zip(positions, logits)}

    padded, packed = scores(False), scores(True)
    assert sorted(packed) == list(range(len(TEXTS_TO_CLASSIFY)))
    for position in padded:
        torch.testing.assert_close(packed[position], padded[position], atol=1e-5, rtol=1e-4)


def test_predict_and_evaluate_take_padding_free_and_give_the_same_output(tmp_path, tokenizer, capsys):
    import json

    from cli_helpers import dhrd_in_process
    from conftest import write_rows

    _classifiers(tmp_path, tokenizer)
    rows = write_rows(tmp_path / "rows.jsonl", 6, tuple(NAMES.values()))
    outputs = {}
    for padding_free in (False, True):
        out = tmp_path / f"predictions_{padding_free}.jsonl"
        flag = ["--padding_free", "--attn_implementation", "eager"] if padding_free else []
        dhrd_in_process(capsys, "predict", "--model", str(tmp_path / "export"), "--test_file", str(rows),
                        "--output_file", str(out), "--device", "cpu", *flag)  # fmt: skip
        outputs[padding_free] = [json.loads(line) for line in out.read_text().splitlines()]
        evaluated = dhrd_in_process(
            capsys, "evaluate", "--model", str(tmp_path / "dhrd"), "--eval_file", str(rows), "--device", "cpu", *flag
        )
        assert "accuracy" in evaluated
    assert [row["label"] for row in outputs[True]] == [row["label"] for row in outputs[False]]
    for packed, padded in zip(outputs[True], outputs[False]):
        assert packed["probs"] == pytest.approx(padded["probs"], abs=1e-5)


@pytest.mark.parametrize("name", ["dhrd", "export"])
def test_packed_inference_refuses_a_backbone_whose_attention_ignores_packing(tmp_path, tokenizer, name):
    from trainer.inference.classify import packed_scorer

    model, _ = _classifiers(tmp_path, tokenizer)[name]
    backbone_forward = model.model.forward

    def causal_only(*args, attention_mask=None, position_ids=None, **kwargs):
        ones = torch.ones(position_ids.shape, dtype=torch.long) if attention_mask is None else attention_mask
        return backbone_forward(*args, attention_mask=ones, position_ids=position_ids, **kwargs)

    model.model.forward = causal_only
    with pytest.raises(ValueError, match="lets packed inputs see each other .*: drop --padding_free"):
        packed_scorer(model)
