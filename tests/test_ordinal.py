"""Ordinal regression, the kind added as one module plus its registration: its loss (cross-entropy plus the squared
earth mover's distance of the cumulative distributions, exact under accumulation), its decision (the median class)
and metrics (MAE, quadratic-weighted kappa) against hand-computed values, the class order it needs, and the command
line end to end: train -> evaluate -> predict -> export -> a transformers `pipeline` in a fresh process, whose class
probabilities are the ones `dhrd predict` decided on."""

import json
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from cli_helpers import dhrd_in_process, refusal_in_process
from conftest import tiny_dhrd
from test_export import _run_isolated

from configuration_dhrd import DHRDConfig
from modeling_dhrd.classification_loss import ordinal_loss_sum
from trainer.data.description import DatasetArguments
from trainer.data.labelled import LabelledData
from trainer.kinds.registry import ORDINAL, get_kind, kind_of

IDS = torch.tensor([[5, 9, 13, 2, 7], [4, 4, 8, 0, 0], [11, 3, 6, 9, 0], [7, 7, 7, 7, 7]])
MASK = (IDS != 0).long()
MASK[3] = 1
SCALE = ["awful", "poor", "fine", "great"]  # alphabetical order is not the scale's
WORDS = {"awful": "broken refund angry", "poor": "slow late meh", "fine": "okay works", "great": "love perfect fast"}


def test_the_loss_is_cross_entropy_plus_the_squared_distance_of_the_cumulative_distributions():
    logits = torch.tensor([[2.0, 0.5, -1.0, 0.0], [0.1, 0.2, 0.3, 0.4]])
    labels = torch.tensor([2, 0])
    by_hand = 0.0
    for row, label in zip(logits, labels.tolist()):
        probs = torch.softmax(row, -1).tolist()
        emd = sum((sum(probs[: k + 1]) - (1.0 if k >= label else 0.0)) ** 2 for k in range(3))
        by_hand += -np.log(probs[label]) + emd
    assert ordinal_loss_sum(logits, labels).item() == pytest.approx(by_hand, rel=1e-5)
    # same cross-entropy, mass one class off costs less than mass three classes off: the order counts
    near, far = torch.tensor([[0.0, 3.0, 2.0, 0.0]]), torch.tensor([[0.0, 3.0, 0.0, 2.0]])
    gold = torch.tensor([1])
    assert F.cross_entropy(near, gold).item() == pytest.approx(F.cross_entropy(far, gold).item())
    assert ordinal_loss_sum(near, gold) < ordinal_loss_sum(far, gold)


def test_the_model_trains_ordered_classes_with_the_ordinal_loss_and_accumulates_exactly():
    model = tiny_dhrd("llama", num_labels=4, problem_kind="ordinal_regression")
    assert model.config.problem_type == "single_label_classification" and kind_of(model.config) is ORDINAL
    labels = torch.tensor([0, 3, 1, 2])
    full = model(input_ids=IDS, attention_mask=MASK, labels=labels)
    assert full.cls_loss.item() == pytest.approx(ordinal_loss_sum(full.logits, labels).item() / 4, rel=1e-5)
    parts = sum(
        model(IDS[i : i + 1], MASK[i : i + 1], labels=labels[i : i + 1], num_examples=4).cls_loss for i in range(4)
    )
    torch.testing.assert_close(parts, full.cls_loss, atol=1e-6, rtol=1e-5)
    with pytest.raises(Exception, match="class_weights"):
        DHRDConfig(num_labels=3, problem_kind="ordinal_regression", class_weights=[1.0, 2.0, 1.0])


def test_decisions_and_metrics_match_hand_computed_values():
    # the median class: the first whose cumulative probability reaches 1/2 (argmax would say class 0 in row 0)
    probs = np.array([[0.4, 0.05, 0.3, 0.25], [0.1, 0.1, 0.1, 0.7], [0.6, 0.2, 0.1, 0.1]])
    assert ORDINAL.decide(np.log(probs)).tolist() == [2, 3, 0]
    record = ORDINAL.record(probs[0], SCALE)
    assert record["label"] == "fine" and record["probs"]["awful"] == pytest.approx(0.4)
    assert ORDINAL.correct(torch.log(torch.tensor(probs)), torch.tensor([2, 0, 0])).item() == 2

    predictions, labels = np.array([0, 1, 2, 3, 3, 1]), np.array([0, 2, 2, 1, 3, 1])
    scores = ORDINAL.scores(predictions, labels, 4)
    assert scores["mae"] == pytest.approx(3 / 6) and scores["accuracy"] == pytest.approx(4 / 6)
    # kappa by its definition, in loops: 1 - sum w*O / sum w*E, w = (i - j)^2
    observed = np.zeros((4, 4))
    for p, t in zip(predictions, labels):
        observed[t, p] += 1
    expected = np.outer(observed.sum(1), observed.sum(0)) / len(labels)
    w = np.array([[(i - j) ** 2 for j in range(4)] for i in range(4)])
    assert scores["qwk"] == pytest.approx(1 - (w * observed).sum() / (w * expected).sum())
    assert ORDINAL.best_metric == ("mae", False) and ORDINAL.metric_directions["qwk"]


def _rows(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = rng.choice(SCALE)
        text = f"{WORDS[label]} {rng.choice(['item', 'order', 'thing'])}"
        rows.append({"id": f"r{i}", "text": text, "label": label, "rationale": f"it says {WORDS[label].split()[0]}"})
    return rows


def _write(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_the_order_comes_from_the_label_names_or_from_numbers_never_from_the_alphabet(tmp_path):
    named = _write(tmp_path / "named.jsonl", _rows(12, 0))
    with pytest.raises(ValueError, match="ordered classes need their order.*pass --label_names"):
        _ = LabelledData(DatasetArguments(train_file=str(named), problem_type="ordinal_regression")).label_names
    given = DatasetArguments(train_file=str(named), problem_type="ordinal_regression", label_names=",".join(SCALE))
    data = LabelledData(given)
    assert data.label_names == SCALE and data.kind is get_kind("ordinal_regression")
    assert sorted(set(data.rows("train")["label"])) == [0, 1, 2, 3]
    stars = _write(tmp_path / "stars.jsonl", [{"text": "t", "label": str(s)} for s in (10, 2, 1, 5, 2)])
    assert LabelledData(DatasetArguments(train_file=str(stars), problem_type="ordinal_regression")).label_names == [
        "1", "2", "5", "10",
    ]  # fmt: skip


def test_the_teacher_is_told_the_rating_and_the_scale(tmp_path):
    from trainer.teachers import build_messages, template_for

    rows = _rows(4, 2)
    path = _write(tmp_path / "t.jsonl", rows)
    args = DatasetArguments(train_file=str(path), problem_type="ordinal_regression", label_names=",".join(SCALE))
    data = LabelledData(args)
    task = data.task
    prompt = build_messages(template_for(task.name, None, task.problem_kind), task, data.rows("train")[0])[1]
    assert f"The rating is: {rows[0]['label']}." in prompt["content"]
    assert "on the ordered scale: awful < poor < fine < great" in prompt["content"]


@pytest.mark.slow
def test_command_line_end_to_end_and_the_exported_pipeline_gives_the_same_probabilities(
    tiny_backbone_dir, tmp_path, capsys
):
    """The subcommands in process (as the shell runs them, without an interpreter's start each); the pipeline in a
    fresh process with plain transformers."""
    rows = _rows(24, 1)
    train, valid = _write(tmp_path / "train.jsonl", rows[:16]), _write(tmp_path / "valid.jsonl", rows[16:])
    data = ["--train_file", str(train), "--validation_file", str(valid), "--id_column", "id"]
    refused = refusal_in_process(capsys, "train", "--model", str(tiny_backbone_dir), "--output_dir",
                                 str(tmp_path / "no"), *data, "--problem_type", "ordinal_regression")  # fmt: skip
    assert "pass --label_names with the names from lowest" in refused

    out = tmp_path / "run"
    dhrd_in_process(
        capsys, "train", "--model", str(tiny_backbone_dir), "--output_dir", str(out), *data,
        "--problem_type", "ordinal_regression", "--label_names", ",".join(SCALE), "--max_steps", "3",
        "--per_device_train_batch_size", "4", "--report_to", "none", "--save_strategy", "no", "--max_length", "128",
        "--max_input_length", "48", "--learning_rate", "1e-3",  # no input is cut: the pipeline does not cut
    )  # fmt: skip
    config = json.loads((out / "config.json").read_text())
    assert (config["problem_kind"], config["problem_type"]) == ("ordinal_regression", "single_label_classification")
    assert [config["id2label"][str(i)] for i in range(4)] == SCALE

    report = tmp_path / "eval.json"
    dhrd_in_process(capsys, "evaluate", "--model", str(out), "--validation_file", str(valid), "--output_file",
                    str(report), "--dtype", "float32")  # fmt: skip
    metrics = json.loads(report.read_text())
    assert {"mae", "qwk", "accuracy"} <= set(metrics) and metrics["rows"] == 8

    export = tmp_path / "export"
    dhrd_in_process(capsys, "export", "--model", str(out), "--output_dir", str(export))
    predictions = tmp_path / "pred.jsonl"
    for model, output in ((out, predictions), (export, tmp_path / "pred_export.jsonl")):
        dhrd_in_process(capsys, "predict", "--model", str(model), "--test_file", str(valid), "--id_column", "id",
                        "--output_file", str(output), "--dtype", "float32")  # fmt: skip
    records = [json.loads(line) for line in predictions.read_text().splitlines()]
    from_export = [json.loads(line) for line in (tmp_path / "pred_export.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == [row["id"] for row in rows[16:]]
    for record, again in zip(records, from_export):
        probs = np.array([record["probs"][name] for name in SCALE])
        assert record["label"] == SCALE[int(np.searchsorted(np.cumsum(probs), 0.5))]  # the median class
        assert again["label"] == record["label"]  # the export is decided as the ordered classes it was trained on

    texts = [row["text"] for row in rows[16:]]
    script = f"""
        import json
        from transformers import pipeline
        classify = pipeline("text-classification", model={str(export)!r}, top_k=None)
        print(json.dumps([{{s["label"]: s["score"] for s in scores}} for scores in classify({texts!r})]))
    """
    piped = json.loads(_run_isolated(script, tmp_path).strip().splitlines()[-1])
    for record, scores in zip(records, piped):
        assert set(scores) == set(SCALE)
        for name in SCALE:
            assert scores[name] == pytest.approx(record["probs"][name], abs=1e-4)


def test_an_unreadable_decoded_answer_scores_as_the_worst_answer_not_a_near_miss():
    """CoT and reasoning-head decoding give -1 where an answer names no class: scored as the farthest class from the
    gold one (MAE 3 on a 4-class scale), never as the highest class (which would be a near miss for gold 3)."""
    scores = ORDINAL.scores(np.array([-1, -1, 2]), np.array([3, 0, 2]), 4)
    assert scores["mae"] == pytest.approx((3 + 3 + 0) / 3) and scores["accuracy"] == pytest.approx(1 / 3)
    worst = ORDINAL.scores(np.array([0, 3, 2]), np.array([3, 0, 2]), 4)
    assert scores["qwk"] == pytest.approx(worst["qwk"])


def test_explain_picks_the_decided_label_the_median_not_the_argmax():
    """`dhrd explain` joins `dhrd predict`'s output on row id: its label is the kind's decision too."""
    from conftest import make_tokenizer

    from trainer.cli.explain import _least_confident
    from trainer.inference.classify import classify_batches

    model, tokenizer = (
        tiny_dhrd("llama", num_labels=4, problem_kind="ordinal_regression", seed=3).eval(),
        make_tokenizer(),
    )
    with torch.no_grad():  # a flat distribution: argmax says the first class, the median the second
        model.score.weight.zero_()
    texts = [f"row {i} says {'x' * i}" for i in range(12)]
    logits = torch.cat([chunk for _, chunk in classify_batches(model, tokenizer, texts, None, desc="t")])
    decided, argmax = ORDINAL.decide(logits.numpy()), logits.argmax(-1).numpy()
    assert (decided != argmax).any()
    chosen = _least_confident(model, tokenizer, texts, None, len(texts), ORDINAL)
    assert [chosen[i][0] for i in range(len(texts))] == decided.tolist()
    probs = torch.softmax(logits.float(), -1)
    assert [chosen[i][1] for i in range(len(texts))] == pytest.approx(probs[range(len(texts)), decided].tolist())


def test_the_model_card_says_the_order_and_the_decision():
    from trainer.training.model_card import build_model_card, model_card_fields

    config = DHRDConfig(id2label=dict(enumerate(SCALE)), problem_kind="ordinal_regression")
    card = str(build_model_card(repo_id="me/x", base_model=None, architecture="LlamaForSequenceClassification",
                                native=True, **model_card_fields(config)))  # fmt: skip
    assert "Ordered labels: `awful` < `poor` < `fine` < `great`" in card and "median class" in card


def test_a_preset_read_as_ordered_classes_scores_as_ordered_classes(tmp_path):
    (tmp_path / "superglue" / "RTE").mkdir(parents=True)
    rows = [{"premise": "p", "hypothesis": "h", "label": name, "idx": i} for i, name in enumerate(["entailment"] * 3)]
    (tmp_path / "superglue" / "RTE" / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = LabelledData(DatasetArguments(task="rte", data_dir=str(tmp_path), problem_type="ordinal_regression"))
    assert data.task.kind is ORDINAL and data.task.name == "rte"
    assert set(data.task.score([1, 0, 0], [0, 0, 0])) == {"mae", "qwk", "accuracy"}


def test_numbers_written_two_ways_are_refused():
    from trainer.kinds.labels import LabelError

    with pytest.raises(LabelError, match="'1' and '1.0' are one number|'1.0' and '1' are one number"):
        ORDINAL.order_names({"1", "1.0", "2"}, "t.jsonl")
    with pytest.raises(LabelError, match="pass --label_names"):
        ORDINAL.order_names({"1", "nan"}, "t.jsonl")


def test_integer_ratings_are_named_by_their_numbers_never_read_as_class_indices(tmp_path):
    """Ratings 1..5: the scale from the lowest to the highest found (a rating no row has keeps its place), read as
    names, never as indices; the training sequences keep the normalised targets (they are indices by then) and
    verbalise the rating."""
    from conftest import make_tokenizer

    from trainer.training.sequences import SequenceBuilder

    ratings = [5, 1, 4, 2, 5, 4]
    path = _write(tmp_path / "stars.jsonl", [{"text": f"review {i}", "label": r} for i, r in enumerate(ratings)])
    found = LabelledData(DatasetArguments(train_file=str(path), problem_type="ordinal_regression"))
    assert found.label_names == ["1", "2", "3", "4", "5"]
    rows = found.rows("train")
    assert rows["label"] == [4, 0, 3, 1, 4, 3]
    builder = SequenceBuilder(make_tokenizer(), dict(enumerate(found.label_names)), "\nReasoning:", "\nAnswer:",
                              problem_kind="ordinal_regression")  # fmt: skip
    assert [builder({**row, "rationale": "r"}, i)["labels"] for i, row in enumerate(rows)] == rows["label"]
    given = DatasetArguments(train_file=str(path), problem_type="ordinal_regression", label_names="1,2,3,4,5")
    assert LabelledData(given).rows("train")["label"] == [4, 0, 3, 1, 4, 3]
    # class indices with rating names: the column is read one way (as ratings), so the 0 is refused by name
    indices = _write(tmp_path / "idx.jsonl", [{"text": "a", "label": 0}, {"text": "b", "label": 1}])
    with pytest.raises(ValueError, match="label '0' is not one of the labels"):
        LabelledData(DatasetArguments(train_file=str(indices), problem_type="ordinal_regression",
                                      label_names="1,2,3")).rows("train")  # fmt: skip
    one = _write(tmp_path / "one.jsonl", [{"text": "a", "label": 3}, {"text": "b", "label": 3}])
    with pytest.raises(ValueError, match="one rating only"):
        _ = LabelledData(DatasetArguments(train_file=str(one), problem_type="ordinal_regression")).label_names


def test_a_lora_run_keeps_the_ordered_classes_through_the_merge_and_the_export(tiny_backbone_dir, tmp_path, capsys):
    """The save paths × this kind: a LoRA run's merged checkpoint (a fresh base model, `load_base`) and its export
    are still ordered classes, decided at the median."""
    rows = _rows(16, 4)
    train = _write(tmp_path / "train.jsonl", rows)
    out, export = tmp_path / "run", tmp_path / "export"
    dhrd_in_process(
        capsys, "train", "--model", str(tiny_backbone_dir), "--output_dir", str(out), "--train_file", str(train),
        "--problem_type", "ordinal_regression", "--label_names", ",".join(SCALE), "--lora_r", "2", "--max_steps", "2",
        "--per_device_train_batch_size", "4", "--report_to", "none", "--save_strategy", "no", "--max_length", "96",
        "--max_input_length", "32", "--learning_rate", "1e-3",
    )  # fmt: skip
    assert (out / "adapter").is_dir()
    dhrd_in_process(capsys, "export", "--model", str(out), "--output_dir", str(export))
    for folder in (out, export):
        config = json.loads((folder / "config.json").read_text())
        assert config["problem_kind"] == "ordinal_regression", folder
        assert [config["id2label"][str(i)] for i in range(4)] == SCALE
    predictions = tmp_path / "pred.jsonl"
    dhrd_in_process(capsys, "predict", "--model", str(export), "--test_file", str(train), "--output_file",
                    str(predictions), "--dtype", "float32")  # fmt: skip
    for line in predictions.read_text().splitlines():
        record = json.loads(line)
        probs = np.array([record["probs"][name] for name in SCALE])
        assert record["label"] == SCALE[int(np.searchsorted(np.cumsum(probs), 0.5))]
