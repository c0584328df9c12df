"""`DHRDForMultipleChoice`: per-option scores from the pooled head, CE across options, the rationale on the gold
option's row (never pooled), exact accumulation, the Trainer, and the native one-output export."""

import json
import re
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_text_config
from datasets import Dataset
from test_export import _run_isolated
from transformers import AutoModelForMultipleChoice, AutoModelForSequenceClassification, AutoTokenizer

from modeling_dhrd import DHRDConfig, DHRDForMultipleChoice, export_classifier
from modeling_dhrd.chunked_lm_loss import IGNORE_INDEX
from trainer import DHRDTrainer, DHRDTrainingArguments
from trainer.data.options import option_input
from trainer.training.choice_sequences import ChoiceSequenceBuilder, DHRDMultipleChoiceCollator
from trainer.training.sequences import inference_view

ROWS = [
    {
        "text": "The man broke his toe. What was the cause?",
        "options": ["He dropped a hammer.", "He sang."],
        "label": 0,
        "rationale": "Heavy things falling on feet break toes.",
    },
    {
        "text": "I poured water on the fire.",
        "options": ["It grew.", "It went out.", "It sang"],
        "label": 1,
        "rationale": "Water puts fires out.",
    },
    {
        "text": "She was tired.",
        "options": ["She slept early.", "She ran a marathon."],
        "label": "She slept early.",
        "rationale": "Tired people rest.",
    },
    {"text": "The glass fell.", "options": ["It shattered.", "It flew away."], "label": 0, "rationale": ""},
]


def tiny_scorer(seed: int = 0, **kwargs) -> DHRDForMultipleChoice:
    torch.manual_seed(seed)
    config = DHRDConfig(text_config=tiny_text_config("llama"), problem_kind="multiple_choice", **kwargs)
    return DHRDForMultipleChoice(config).eval()


def _builder(tokenizer, include_rationale=True, **kwargs) -> ChoiceSequenceBuilder:
    return ChoiceSequenceBuilder(
        tokenizer=tokenizer,
        id2label={0: "option_score"},
        reason_marker="\nReasoning:",
        answer_marker="\nAnswer:",
        include_rationale=include_rationale,
        **kwargs,
    )


def _batch(tokenizer, rows, scope="all", include_rationale=True):
    builder = _builder(tokenizer, include_rationale)
    features = [builder(row, i) for i, row in enumerate(rows)]
    return DHRDMultipleChoiceCollator(pad_token_id=0, lm_loss_scope=scope)(features)


def _two_option_rows():
    return [row for row in ROWS if len(row["options"]) == 2]


def test_loss_is_cross_entropy_over_scores_computed_one_option_at_a_time(tokenizer):
    model = tiny_scorer()
    rows = _two_option_rows()
    batch = _batch(tokenizer, rows, include_rationale=False)
    output = model(**batch)
    # Independently: each option text on its own through the backbone, pooled at its last token, scored.
    per_option = []
    for row in rows:
        scores = []
        for option in row["options"]:
            ids = torch.tensor([tokenizer(option_input(row["text"], option))["input_ids"]])
            with torch.no_grad():
                hidden = model.model(input_ids=ids).last_hidden_state[0, -1]
            scores.append(model.score(hidden)[0])
        per_option.append(torch.stack(scores))
    expected_logits = torch.stack(per_option)
    torch.testing.assert_close(output.logits, expected_logits, atol=1e-5, rtol=1e-5)
    gold = torch.tensor([0, 0, 0])
    torch.testing.assert_close(output.cls_loss, F.cross_entropy(expected_logits, gold), atol=1e-5, rtol=1e-5)
    assert batch["labels"].tolist() == [0, 0, 0]  # "She slept early." (a gold option given as its text) is option 0


def test_rationale_rides_on_the_gold_row_only_and_is_never_pooled(tokenizer):
    model = tiny_scorer()
    rows = _two_option_rows()
    rows[0] = {**rows[0], "label": 1}  # the rationale must follow whichever option is gold
    batch = _batch(tokenizer, rows)
    with_rationale = model(**batch)
    alone = model(**inference_view(batch))
    torch.testing.assert_close(with_rationale.logits, alone.logits, atol=1e-5, rtol=0)
    has_targets = (batch["lm_labels"] != IGNORE_INDEX).any(-1)
    assert has_targets.tolist() == [[False, True], [True, False], [False, False]]  # row 3 has no rationale
    # The LM loss equals the reasoning head's full-vocabulary cross-entropy over those targets.
    ids, labels = batch["input_ids"].flatten(0, 1), batch["lm_labels"].flatten(0, 1)
    with torch.no_grad():
        hidden = model.model(input_ids=ids, attention_mask=batch["attention_mask"].flatten(0, 1)).last_hidden_state
        logits = model.lm_head(hidden)
    expected = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1))
    torch.testing.assert_close(with_rationale.lm_loss, expected, atol=1e-5, rtol=1e-5)
    weights = model.config
    torch.testing.assert_close(
        with_rationale.loss, weights.cls_weight * with_rationale.cls_loss + weights.lm_weight * expected
    )


def test_rationale_rows_run_apart_with_the_scores_losses_and_gradients_of_one_pass(tokenizer):
    """Training runs the rows that carry a rationale apart from the other options, which are cut to their own length
    first (they would otherwise run the gold row's padding): logits, both losses and every gradient equal one pass
    over the padded batch."""
    model = tiny_scorer()
    batch = _batch(tokenizer, _two_option_rows(), scope="rationale")
    carries = (batch["lm_labels"] != IGNORE_INDEX).any(-1)
    other_lengths = batch["attention_mask"].sum(-1)[~carries]
    assert carries.any() and (~carries).any() and int(other_lengths.max()) < batch["input_ids"].shape[-1]

    def run(rows_apart: bool):
        model.zero_grad()
        output = model(**batch, output_hidden_states=not rows_apart)  # hidden states need one pass
        output.loss.backward()
        return output, {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}

    apart, apart_grads = run(rows_apart=True)
    one_pass, one_pass_grads = run(rows_apart=False)
    for name in ("logits", "cls_loss", "lm_loss", "loss"):
        torch.testing.assert_close(getattr(apart, name), getattr(one_pass, name), atol=1e-5, rtol=1e-5, msg=name)
    assert apart_grads.keys() == one_pass_grads.keys()
    for name in one_pass_grads:
        torch.testing.assert_close(apart_grads[name], one_pass_grads[name], atol=1e-5, rtol=1e-4, msg=name)


def test_accumulating_four_single_examples_equals_the_batch(tokenizer):
    rows = [{**row, "options": row["options"][:2], "label": 0} for row in ROWS]
    model = tiny_scorer()
    model.train()
    batch = _batch(tokenizer, rows, scope="rationale")
    examples, tokens = 4, int((batch["lm_labels"][..., 1:] != IGNORE_INDEX).sum())

    def gradients(batches):
        model.zero_grad()
        for part in batches:
            model(**part, num_examples=examples, num_lm_tokens=tokens).loss.backward()
        return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}

    full = gradients([batch])
    singles = gradients([_batch(tokenizer, [row], scope="rationale") for row in rows])
    assert full.keys() == singles.keys()
    for name in full:
        torch.testing.assert_close(singles[name], full[name], atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize(
    "row, message",
    [
        ({"text": "q", "options": ["only one"], "label": 0}, "at least two options"),
        ({"text": "q", "options": "a, b", "label": 0}, "not a list of options"),
        ({"text": "q", "options": '["a"]', "label": 0}, "at least two options"),  # a JSON list (a CSV cell)
        ({"text": "q", "options": ["a", ""], "label": 0}, "non-empty text"),
        ({"text": "q", "options": ["a", "b"], "label": 2}, "gold option 2 is out of range [0, 2)"),
        ({"text": "q", "options": ["a", "b"], "label": "c"}, "gold option 'c' is not one of the options ['a', 'b']"),
        ({"text": " ", "options": ["a", "b"], "label": 0}, "empty context"),
        ({"text": "q", "options": ["a", "b"], "label": None}, "no label"),
    ],
)
def test_bad_rows_are_one_line_errors_naming_the_row(tokenizer, row, message):
    with pytest.raises(ValueError, match="Row 7") as error:
        _builder(tokenizer, include_rationale=False)(row, 7)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_bad_model_inputs_are_clear_errors():
    model = tiny_scorer()
    ids = torch.randint(1, 50, (2, 1, 5))
    with pytest.raises(ValueError, match="at least two options"):
        model(input_ids=ids)
    with pytest.raises(ValueError, match=r"Gold option 3 is not an option index in \[0, 2\)"):
        model(input_ids=torch.randint(1, 50, (2, 2, 5)), labels=torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"\[batch, num_choices, seq\]"):
        model(input_ids=torch.randint(1, 50, (2, 5)))
    with pytest.raises(ValueError, match="needs a multiple-choice config"):
        DHRDForMultipleChoice(DHRDConfig(text_config=tiny_text_config("llama"), num_labels=3))
    with pytest.raises(Exception, match="one output named 'option_score'"):  # @strict's validation error
        DHRDConfig(text_config=tiny_text_config("llama"), problem_kind="multiple_choice", num_labels=3)
    with pytest.raises(ValueError, match="different numbers of options"):
        _batch_of_mixed = DHRDMultipleChoiceCollator(pad_token_id=0)
        _batch_of_mixed(
            [
                {"input_ids": [[1, 2], [3]], "num_input_tokens": [2, 1], "num_reasoning_tokens": 0, "labels": 0},
                {"input_ids": [[1], [2], [3]], "num_input_tokens": [1, 1, 1], "num_reasoning_tokens": 0, "labels": 0},
            ]
        )


def test_a_repeated_option_keeps_every_option_and_the_gold_index(tokenizer):
    """CommonsenseQA repeats an option in 122 train questions: the gold index still counts every option."""
    row = {"text": "Eating too much leads to?", "options": ["a", "obesity", "b", "obesity", "c"], "label": 4}
    prepared = _builder(tokenizer, include_rationale=False)(row, 0)
    assert prepared["labels"] == 4 and len(prepared["input_ids"]) == 5
    assert _builder(tokenizer, include_rationale=False)({**row, "label": "obesity"}, 0)["labels"] == 1


def test_long_context_loses_its_start_never_the_option(tokenizer):
    builder = _builder(tokenizer, include_rationale=False, max_input_length=24)
    prepared = builder({"text": "x" * 200, "options": ["first option", "second"], "label": 0}, 0)
    assert prepared["input_truncated"] and max(prepared["num_input_tokens"]) <= 24
    assert tokenizer.decode(prepared["input_ids"][0]).endswith("Answer: first option")


def test_trainer_trains_evaluates_and_exports_a_native_option_scorer(tmp_path, tokenizer):
    model = tiny_scorer()
    rows = [{**row, "options": row["options"][:2], "label": 0} for row in ROWS] * 4
    args = DHRDTrainingArguments(
        output_dir=str(tmp_path / "run"),
        per_device_train_batch_size=4,
        max_steps=3,
        logging_steps=1,
        learning_rate=1e-3,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        lm_loss_scope="rationale",
        disable_tqdm=True,
    )
    trainer = DHRDTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    logged = trainer.train()
    assert logged.global_step == 3
    metrics = trainer.evaluate(Dataset.from_list(rows[:4]))
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0 and metrics["eval_loss"] > 0
    # the reasoning head was trained: its loss is in the log
    assert any("lm_loss" in entry for entry in trainer.state.log_history)

    model.save_pretrained(tmp_path / "ckpt")
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert config["auto_map"]["AutoModelForMultipleChoice"].endswith("DHRDForMultipleChoice")
    assert type(AutoModelForMultipleChoice.from_pretrained(tmp_path / "ckpt")) is DHRDForMultipleChoice
    assert config["problem_kind"] == "multiple_choice"
    with pytest.raises(ValueError, match="multiple-choice option scorer .* load it with AutoModelForMultipleChoice"):
        AutoModelForSequenceClassification.from_pretrained(tmp_path / "ckpt")  # refused, not loaded as a classifier

    result = export_classifier(model, tmp_path / "export", tokenizer)
    assert result.native and result.architecture == "LlamaForSequenceClassification"
    exported = AutoModelForSequenceClassification.from_pretrained(tmp_path / "export")
    assert exported.config.num_labels == 1 and exported.config.id2label == {0: "option_score"}
    assert exported.config.problem_type == "regression"  # one real-valued score per [context, option] row

    # The README recipe, in a fresh process without this project: score each [context, option], argmax.
    row = ROWS[1]
    texts = [option_input(row["text"], option) for option in row["options"]]
    script = f"""
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        path = {str(tmp_path / "export")!r}
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForSequenceClassification.from_pretrained(path)
        batch = tokenizer({texts!r}, padding=True, return_tensors="pt")
        with torch.no_grad():
            print(model(**batch).logits[:, 0].tolist())
    """
    scores = json.loads(_run_isolated(script, tmp_path).strip().splitlines()[-1])
    batch = AutoTokenizer.from_pretrained(tmp_path / "export")(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = model(input_ids=batch["input_ids"][None], attention_mask=batch["attention_mask"][None]).logits[0]
    torch.testing.assert_close(torch.tensor(scores), expected, atol=1e-4, rtol=0)


def test_non_native_settings_export_as_multiple_choice_remote_code(tmp_path, tokenizer):
    model = tiny_scorer(pooling="mean")
    result = export_classifier(model, tmp_path / "export", tokenizer)
    assert not result.native and result.architecture == "DHRDForMultipleChoice"
    reloaded = AutoModelForMultipleChoice.from_pretrained(tmp_path / "export", trust_remote_code=True)
    assert reloaded.lm_head is None
    from trainer.training.model_card import build_model_card, model_card_fields

    export = str(tmp_path / "export")
    card = str(build_model_card(repo_id=export, base_model=None, architecture=result.architecture, native=False,
                                **model_card_fields(model.config)))  # fmt: skip
    assert f'AutoModelForMultipleChoice.from_pretrained("{export}", trust_remote_code=True)' in card
    usage = re.search(r"```python\n(.*?)```", card, re.S).group(1)  # the card's code, run as a user would
    ran = subprocess.run([sys.executable, "-c", usage], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.strip() in ("nightstand", "ocean", "oven")
