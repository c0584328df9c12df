"""Multi-label and regression data through the data description, the training sequences, the metrics and the
command line (train -> evaluate -> predict -> export, reloaded in a fresh process without this project)."""

import csv
import json
import random

import numpy as np
import pytest
import torch
from cli_helpers import dhrd_in_process, refusal_in_process
from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value
from test_export import _run_isolated

from trainer.data.description import DatasetArguments
from trainer.data.labelled import LabelledData
from trainer.kinds.labels import LabelError
from trainer.kinds.metrics import multi_label_scores, regression_scores
from trainer.kinds.multi_label import MULTI_LABEL, multi_hot
from trainer.kinds.registry import compute_classification_metrics
from trainer.training.sequences import SequenceBuilder

TOPICS = ["sports", "politics", "weather"]
WORDS = "ball vote rain goal law sun team storm party wind match court".split()


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _rows(kind: str, n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        text = " ".join(rng.choices(WORDS, k=rng.randint(3, 9)))
        if kind == "multi":
            label = sorted(rng.sample(TOPICS, rng.randint(0, 2)))
        else:
            label = round(rng.uniform(1, 5), 2)
        rows.append({"id": f"r{i}", "text": text, "label": label, "rationale": "because " + text})
    return rows


@pytest.mark.parametrize(
    "value, expected",
    [
        (["politics", "sports"], [1.0, 1.0, 0.0]),
        ([], [0.0, 0.0, 0.0]),
        ("weather, sports", [1.0, 0.0, 1.0]),
        ("", [0.0, 0.0, 0.0]),
        ("[]", [0.0, 0.0, 0.0]),  # a CSV cell's JSON list: an empty CSV cell is read as missing, not as none
        ('["sports", "weather"]', [1.0, 0.0, 1.0]),
        ([0, 1, 1], [0.0, 1.0, 1.0]),
        ([True, False, False], [1.0, 0.0, 0.0]),
    ],
)
def test_multi_label_values_become_multi_hot_rows(value, expected):
    assert multi_hot(value, {name: i for i, name in enumerate(TOPICS)}, "row 0") == expected


@pytest.mark.parametrize(
    "value, message",
    [
        ([1, 0], "not a multi-hot vector of 3 0/1 entries"),
        ([0, 2, 1], "not a multi-hot vector of 3 0/1 entries"),
        (["sports", "cooking"], "label 'cooking' is not one of the labels"),
        (None, "no labels"),
        (float("nan"), "[] for none of the labels"),
        ("[sports", "not a JSON list"),
        (3, "is not a list of label names"),
    ],
)
def test_bad_multi_label_values_are_one_line_errors(value, message):
    with pytest.raises(LabelError, match="row 4") as error:
        multi_hot(value, {name: i for i, name in enumerate(TOPICS)}, "train.jsonl row 4")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_multi_label_data_from_name_lists_infers_the_type_and_the_names(tmp_path):
    data = LabelledData(DatasetArguments(train_file=str(_write_jsonl(tmp_path / "t.jsonl", _rows("multi", 8)))))
    assert data.kind.name == "multi_label_classification"
    assert data.label_names == sorted(TOPICS)
    rows = data.rows("train")
    assert all(len(label) == 3 and set(label) <= {0.0, 1.0} for label in rows["label"])
    assert data.task.problem_kind == "multi_label_classification" and "tag" in data.task.description


def test_multi_label_class_indices_in_a_hub_dataset_use_its_classlabel_names(tmp_path):
    features = Features({"text": Value("string"), "label": List(ClassLabel(names=TOPICS))})
    Dataset.from_dict({"text": ["a b", "c d"], "label": [[0, 2], [1]]}, features=features).save_to_disk(
        str(tmp_path / "hub")
    )
    data = LabelledData(DatasetArguments(dataset_name=str(tmp_path / "hub")))
    assert data.kind.name == "multi_label_classification" and data.label_names == TOPICS
    assert data.rows("train")["label"] == [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]


def test_multi_label_from_several_zero_one_columns_of_a_csv(tmp_path):
    path = tmp_path / "tickets.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "billing", "bug", "praise"])
        writer.writerows([["charged twice", 1, 0, 0], ["app crashes, love it otherwise", 0, 1, 1]])
    data = LabelledData(DatasetArguments(train_file=str(path), label_columns="billing,bug,praise"))
    assert data.kind.name == "multi_label_classification" and data.label_names == ["billing", "bug", "praise"]
    assert data.rows("train")["label"] == [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]
    with open(path, "a", newline="") as handle:
        csv.writer(handle).writerow(["maybe", 1, 2, 0])
    with pytest.raises(LabelError, match=r"row 2: column 'bug' holds 2; --label_columns must hold 0 or 1"):
        LabelledData(DatasetArguments(train_file=str(path), label_columns="billing,bug,praise")).rows("train")


def test_regression_is_never_guessed_and_names_its_one_output(tmp_path):
    path = _write_jsonl(tmp_path / "scores.jsonl", _rows("regression", 6))
    with pytest.raises(LabelError, match="neither a class index nor a label name"):
        LabelledData(DatasetArguments(train_file=str(path))).label_names  # noqa: B018 - fractions are not classes
    data = LabelledData(DatasetArguments(train_file=str(path), problem_type="regression"))
    assert data.label_names == ["label"] and data.rows("train")["label"][0] == _rows("regression", 1)[0]["label"]
    _write_jsonl(path, [{"text": "fine", "label": "high"}])
    with pytest.raises(LabelError, match=r"row 0: regression target 'high' is not a number"):
        LabelledData(DatasetArguments(train_file=str(path), problem_type="regression")).rows("train")


def test_training_sequences_verbalise_the_label_set_and_the_score(tokenizer):
    def answer(problem_type, num_labels, label):
        builder = SequenceBuilder(
            tokenizer=tokenizer,
            id2label=dict(enumerate(TOPICS[:num_labels])),
            reason_marker="\nReasoning:",
            answer_marker="\nAnswer:",
            problem_kind=problem_type,
        )
        row = builder({"text": "rain and a goal", "label": label, "rationale": "both"}, 0)
        return tokenizer.decode(row["input_ids"]).split("\nAnswer:")[-1].strip()

    assert answer("multi_label_classification", 3, ["sports", "weather"]).startswith("sports, weather")
    assert answer("multi_label_classification", 3, []).startswith("none")
    assert answer("regression", 1, 3.5).startswith("3.5")
    assert MULTI_LABEL.answer_text([0.0, 1.0, 0.0], dict(enumerate(TOPICS))) == "politics"


def test_metrics_of_each_problem_type_match_hand_computed_values():
    predicted = np.array([[1, 0, 1], [0, 0, 0], [1, 1, 0]])
    labels = np.array([[1, 0, 0], [0, 0, 0], [1, 1, 0]])
    # decisions: tp 3, fp 1, fn 0 -> micro-F1 6/7; per class F1: 1, 1, 0 (class 2: one false positive) -> macro 2/3
    scores = multi_label_scores(predicted, labels)
    assert scores == pytest.approx({"micro_f1": 6 / 7, "macro_f1": 2 / 3, "exact_match": 2 / 3})
    values, targets = np.array([1.0, 2.0, 3.0, 5.0]), np.array([1.0, 3.0, 2.0, 4.0])
    scores = regression_scores(values, targets)
    assert scores["mse"] == pytest.approx((0 + 1 + 1 + 1) / 4)
    assert scores["pearson"] == pytest.approx(np.corrcoef(values, targets)[0, 1])
    assert scores["spearman"] == pytest.approx(0.8)  # ranks 1,2,3,4 vs 1,3,2,4: 1 - 6*2/(4*15)

    class Prediction:  # what the Trainer hands compute_metrics: logits and label ids
        def __init__(self, predictions, label_ids):
            self.predictions, self.label_ids = predictions, label_ids

    multi = compute_classification_metrics(
        Prediction(np.array([[2.0, -1.0], [-3.0, 0.5]]), np.array([[1.0, 0], [0, 1]])), "multi_label_classification"
    )
    assert multi["exact_match"] == 1.0
    regression = compute_classification_metrics(
        Prediction(np.array([[1.0], [2.0]]), np.array([1.0, 2.5])), "regression"
    )
    assert regression["mse"] == pytest.approx(0.125)


def test_trainer_tracks_exact_match_for_multi_label_batches(tokenizer):
    from trainer.kinds.registry import REGRESSION, SINGLE_LABEL

    logits = torch.tensor([[1.0, -1.0, 2.0], [0.5, 0.5, -2.0]])
    assert int(MULTI_LABEL.correct(logits, torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]]))) == 1
    assert REGRESSION.correct(logits[:, :1], torch.tensor([0.3, 0.2])) is None  # regression: no accuracy
    assert int(SINGLE_LABEL.correct(logits, torch.tensor([2, 0]))) == 2  # class indices: argmax


TRAIN = ("--max_steps", "3", "--per_device_train_batch_size", "4", "--report_to", "none", "--save_strategy", "no")
TRAIN += ("--max_length", "128", "--max_input_length", "32", "--learning_rate", "1e-3")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["multi", "regression"])
def test_command_line_end_to_end_with_a_native_export_in_a_fresh_process(kind, tiny_backbone_dir, tmp_path, capsys):
    """The subcommands in process (as the shell runs them, without an interpreter's start each); the export reloaded
    in a fresh process with plain transformers."""
    rows = _rows(kind, 24)
    train = _write_jsonl(tmp_path / "train.jsonl", rows[:16])
    valid = _write_jsonl(tmp_path / "valid.jsonl", rows[16:])
    data = ["--train_file", str(train), "--validation_file", str(valid), "--id_column", "id"]
    if kind == "regression":
        data += ["--problem_type", "regression"]
    out = tmp_path / "run"
    dhrd_in_process(capsys, "train", "--model", str(tiny_backbone_dir), "--output_dir", str(out), *data, *TRAIN)
    expected_type = {"multi": "multi_label_classification", "regression": "regression"}[kind]
    config = json.loads((out / "config.json").read_text())
    assert config["problem_type"] == expected_type

    report = tmp_path / "eval.json"
    dhrd_in_process(capsys, "evaluate", "--model", str(out), "--validation_file", str(valid), "--output_file",
                    str(report))  # fmt: skip
    metrics = json.loads(report.read_text())
    wanted = {"multi": {"micro_f1", "macro_f1", "exact_match"}, "regression": {"mse", "pearson", "spearman"}}[kind]
    assert wanted <= set(metrics) and metrics["rows"] == 8

    predictions = tmp_path / "pred.jsonl"
    dhrd_in_process(capsys, "predict", "--model", str(out), "--test_file", str(valid), "--id_column", "id",
                    "--output_file", str(predictions))  # fmt: skip
    records = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert [r["id"] for r in records] == [row["id"] for row in rows[16:]]
    if kind == "multi":
        assert all(set(r["probs"]) == set(TOPICS) for r in records)
        assert all(r["labels"] == [n for n, p in r["probs"].items() if p > 0.5] for r in records)
    else:
        assert all(isinstance(r["score"], float) for r in records)

    export = tmp_path / "export"
    dhrd_in_process(capsys, "export", "--model", str(out), "--output_dir", str(export))
    text = rows[16]["text"]
    script = f"""
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        model = AutoModelForSequenceClassification.from_pretrained({str(export)!r})
        tokenizer = AutoTokenizer.from_pretrained({str(export)!r})
        with torch.no_grad():
            print(model.config.problem_type, model(**tokenizer({text!r}, return_tensors="pt")).logits[0].tolist())
    """
    problem_type, logits = _run_isolated(script, tmp_path).strip().splitlines()[-1].split(" ", 1)
    assert problem_type == expected_type
    logits = torch.tensor(json.loads(logits))
    first = records[0]
    from_predict = (
        torch.tensor([first["score"]]) if kind == "regression" else torch.tensor(list(first["probs"].values()))
    )
    activated = logits if kind == "regression" else torch.sigmoid(logits)
    torch.testing.assert_close(activated, from_predict, atol=1e-4, rtol=0)


def test_bad_problem_type_input_is_one_line(tmp_path, capsys):
    path = _write_jsonl(tmp_path / "t.jsonl", [{"text": "a", "label": [1, 0]}, {"text": "b", "label": [0, 1]}])
    train = ["train", "--model", "smollm2", "--train_file", str(path), "--output_dir", str(tmp_path / "out")]
    line = refusal_in_process(capsys, *train, "--label_names", "x,y,z", "--lm_weight", "0")
    assert line.startswith("dhrd train: error: ") and "row 0" in line, line
    assert "not a multi-hot vector of 3 0/1 entries" in line
    line = refusal_in_process(capsys, *train, "--label_columns", "a,b", "--problem_type", "regression")
    assert line.startswith("dhrd train: error: ") and "contradicts --problem_type regression" in line, line


def test_a_saved_dataset_dict_keeps_working_single_label(tmp_path):
    """Nothing changes for single-label data: integer ClassLabel labels stay class indices."""
    split = Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]}).cast_column("label", ClassLabel(names=["n", "y"]))
    DatasetDict(train=split).save_to_disk(str(tmp_path / "d"))
    data = LabelledData(DatasetArguments(dataset_name=str(tmp_path / "d")))
    assert data.kind.name == "single_label_classification" and data.rows("train")["label"] == [0, 1]


def test_teacher_prompts_ask_why_these_labels_or_this_score(tmp_path):
    from trainer.teachers import build_messages, template_for

    rows = _rows("multi", 4)
    rows[0]["label"] = ["sports", "weather"]
    data = LabelledData(DatasetArguments(train_file=str(_write_jsonl(tmp_path / "t.jsonl", rows))))
    task = data.task
    prompt = build_messages(template_for(task.name, None, task.problem_kind), task, data.rows("train")[0])[1]
    assert "The labels that apply are: sports, weather." in prompt["content"]
    assert "tag with any of the labels: politics, sports, weather" in prompt["content"]

    scores = LabelledData(
        DatasetArguments(
            train_file=str(_write_jsonl(tmp_path / "s.jsonl", _rows("regression", 2))), problem_type="regression"
        )
    )
    task = scores.task
    prompt = build_messages(template_for(task.name, None, task.problem_kind), task, scores.rows("train")[0])[1]
    assert f"The score is: {_rows('regression', 1)[0]['label']:g}." in prompt["content"]


def test_synthetic_multi_label_and_regression_rows_agree_with_their_own_arithmetic():
    import re

    from trainer.tasks.synthetic import MULTI_LABELS, synthetic_multi_label_rows, synthetic_regression_rows

    for row in synthetic_regression_rows(50, seed=3):
        formula, total = re.search(r"has ([\d +-]+) = (\d+) apples", row["rationale"]).groups()
        assert eval(formula) == int(total) == row["label"]  # noqa: S307 - digits and + - only
    seen = set()
    for row in synthetic_multi_label_rows(50, seed=3):
        totals = [int(t) for t in re.findall(r"= (\d+) apples", row["rationale"])]
        holds = {
            "first_over_10": totals[0] > 10,
            "second_over_10": totals[1] > 10,
            "first_has_more": totals[0] > totals[1],
        }
        assert row["label"] == [name for name in MULTI_LABELS if holds[name]]
        seen.add(len(row["label"]))
    assert seen == {0, 1, 2, 3}  # every size of label set occurs, the empty one included
