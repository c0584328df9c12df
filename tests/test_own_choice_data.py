"""A user's own multiple-choice data through the command line (`--options_column`): a CSV whose options are a JSON
list per cell and whose gold option is its text, from teacher rationales to training an option scorer, evaluation,
prediction and the native export; and the bad input met on the way."""

import csv
import json
import random

import pytest
import torch
from cli_helpers import dhrd, dhrd_in_process, refusal_in_process
from test_own_data import TRAIN_FLAGS, _read_jsonl
from transformers import AutoModelForMultipleChoice, AutoModelForSequenceClassification, AutoTokenizer

from trainer.data.options import option_input

THINGS = "apple river stone cloud lamp chair violin garden candle ladder".split()
HEADER = ["qid", "question", "choices", "answer", "why"]


def _questions(rows: int, seed: int, options: int = 3) -> list[list]:
    rng = random.Random(seed)
    table = [HEADER]
    for i in range(rows):
        choices = rng.sample(THINGS, options)
        gold = rng.choice(choices)
        question = f"Which one is {gold[::-1]} backwards? " + " ".join(rng.choices(THINGS, k=rng.randint(2, 12)))
        table.append([f"q{seed}-{i}", question, json.dumps(choices), gold, f"Reversing {gold[::-1]} gives {gold}."])
    return table


def _write_csv(path, rows: list[list]) -> str:
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return str(path)


@pytest.fixture
def choice_files(tmp_path):
    return {
        split: _write_csv(tmp_path / f"{split}.csv", _questions(rows, seed))
        for split, rows, seed in (("train", 12, 0), ("valid", 6, 1), ("test", 5, 2))
    }


COLUMNS = ("--text_column", "question", "--options_column", "choices", "--label_column", "answer")


def _direct_scores(model_dir, question: str, choices: list[str], max_length: int) -> torch.Tensor:
    """The option scorer's scores for one row through `AutoModelForMultipleChoice` (`[1, num_choices, seq]`, one
    option per row, padded on the right): the reference for evaluate, predict and the export."""
    import modeling_dhrd  # noqa: F401 - registers DHRD with the Auto classes

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.truncation_side = "left"
    model = AutoModelForMultipleChoice.from_pretrained(model_dir).eval()
    encoded = tokenizer(
        [option_input(question, choice) for choice in choices],
        truncation=True,
        max_length=max_length,
        padding=True,
        return_tensors="pt",
    )
    with torch.no_grad():
        return model(**{key: value[None] for key, value in encoded.items()}).logits[0]


@pytest.mark.slow
def test_multiple_choice_csv_from_training_to_the_native_export(choice_files, tmp_path, tiny_backbone_dir, capsys):
    run = tmp_path / "run"
    dhrd_in_process(
        capsys, "train", "--model_name_or_path", str(tiny_backbone_dir), "--train_file", choice_files["train"],
        "--validation_file", choice_files["valid"], *COLUMNS, "--rationale_column", "why", "--id_column", "qid",
        "--output_dir", str(run), *TRAIN_FLAGS,
    )  # fmt: skip
    config = json.loads((run / "config.json").read_text())
    assert config["architectures"] == ["DHRDForMultipleChoice"] and config["id2label"] == {"0": "option_score"}
    contract = config["input_contract"]  # read back by evaluate and predict below (no format flags given there)
    assert contract["input_format"] == {"text_column": "question", "options_column": "choices"}
    assert contract["truncation_side"] == "left"  # an option row loses its context's start, never the option
    record = json.loads((run / "dhrd_training.json").read_text())
    assert set(record["eval_metrics"]) >= {"accuracy"}
    assert record["preparation"]["train"]["with_rationale"] == 12  # every row's rationale reached the gold option

    test_rows = list(csv.DictReader(open(choice_files["test"])))
    expected = [_direct_scores(run, row["question"], json.loads(row["choices"]), 48) for row in test_rows]

    # evaluate: the input format, options included, comes from the input contract
    evaluated = dhrd_in_process(capsys, "evaluate", "--model", str(run), "--test_file", choice_files["test"],
                                "--split", "test", "--label_column", "answer")  # fmt: skip
    gold = [json.loads(row["choices"]).index(row["answer"]) for row in test_rows]
    accuracy = sum(int(s.argmax()) == g for s, g in zip(expected, gold)) / len(gold)
    assert json.loads(evaluated.strip().splitlines()[-1])["accuracy"] == pytest.approx(accuracy)

    for model in (run, tmp_path / "export"):
        if model != run:
            dhrd_in_process(capsys, "export", "--model", str(run), "--output_dir", str(model))
            export_config = json.loads((model / "config.json").read_text())
            assert export_config["architectures"] == ["Qwen2ForSequenceClassification"]
            assert len(export_config["id2label"]) == 1  # one score per option
            assert export_config["input_contract"] == contract
            assert AutoTokenizer.from_pretrained(model).truncation_side == "left"
            card = (model / "README.md").read_text()
            assert "pipeline_tag: multiple-choice" in card and "scores the options" in card
        output = tmp_path / f"{model.name}.jsonl"
        predicted = dhrd_in_process(capsys, "predict", "--model", str(model), "--test_file", choice_files["test"],
                                    "--id_column", "qid", "--output_file", str(output), "--max_batch_tokens",
                                    "64")  # fmt: skip
        assert "wrote 5 predictions" in predicted and "Option " in predicted
        rows = _read_jsonl(output)
        assert [row["qid"] for row in rows] == [row["qid"] for row in test_rows]
        for row, source, scores in zip(rows, test_rows, expected):
            choices = json.loads(source["choices"])
            assert row["option"] == choices[row["option_index"]] and row["option_index"] == int(scores.argmax())
            torch.testing.assert_close(torch.tensor(row["probs"]), torch.softmax(scores, -1), atol=1e-4, rtol=0)

    # the export is a plain one-output classifier: the README recipe scores options without this project
    scorer = AutoModelForSequenceClassification.from_pretrained(tmp_path / "export").eval()
    assert type(scorer).__name__ == "Qwen2ForSequenceClassification"


def test_teacher_sees_the_options_and_the_gold_options_text(tmp_path, tiny_backbone_dir, capsys):
    """`dhrd rationales` on multiple-choice rows: the prompt lists the options and names the right one by its text;
    the output keeps every column (the options as given) and adds the rationale."""
    from trainer.data.description import DatasetArguments
    from trainer.data.labelled import LabelledData
    from trainer.data.options import teacher_listing
    from trainer.teachers.prompts import build_messages, template_for

    rows = [{"question": "What do bees make?", "choices": ["honey", "milk", "silk"], "answer": 0},
            {"question": "What melts in the sun?", "choices": ["rock", "ice", "glass"], "answer": "ice"}]  # fmt: skip
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    data = LabelledData(DatasetArguments(train_file=str(path), text_column="question", options_column="choices",
                                         label_column="answer"))  # fmt: skip
    normalised = data.rows("train")
    assert normalised["options"] == [row["choices"] for row in rows] and normalised["label"] == [0, 1]
    task = data.choice_task(normalised["options"])
    options = normalised["options"][1]
    row = {"text": teacher_listing(normalised["text"][1], options), "label": 1, "options": options}
    prompt = build_messages(template_for(task.name, None, task.problem_kind), task, row)[1]["content"]
    assert "What melts in the sun?\nOption 1: rock\nOption 2: ice\nOption 3: glass" in prompt
    assert 'The right option is: "ice"' in prompt

    dhrd_in_process(
        capsys, "rationales", "--train_file", str(path), "--text_column", "question", "--options_column", "choices",
        "--label_column", "answer", "--teacher_model", str(tiny_backbone_dir), "--max_new_tokens", "4",
        "--output_dir", str(tmp_path / "r"),
    )  # fmt: skip
    written = _read_jsonl(tmp_path / "r" / "rationales.jsonl")
    assert [row["choices"] for row in written] == [row["choices"] for row in rows]
    assert all("rationale" in row and row["rationale_status"] for row in written)


def _tiny_classifier(tmp_path, tiny_backbone_dir):
    from conftest import tiny_dhrd

    model_dir = tmp_path / "classifier"
    tiny_dhrd("qwen2", num_labels=2, id2label={0: "no", 1: "yes"}).save_pretrained(model_dir)
    AutoTokenizer.from_pretrained(tiny_backbone_dir).save_pretrained(model_dir)
    return model_dir


def test_bad_multiple_choice_input_is_one_line(tmp_path, tiny_backbone_dir, capsys):
    """In process (`trainer.cli.main`): each refusal comes before a model loads."""
    good = _questions(4, 0)
    cases = {
        "not a list": ([HEADER, ["q", "Which?", "apple, river", "apple", "r"]], "not a list of options"),
        "one option": ([HEADER, ["q", "Which?", '["apple"]', "apple", "r"]], "must list at least two options"),
        "gold not an option": (
            [HEADER, ["q", "Which?", '["apple", "river"]', "stone", "r"]],
            "row 0: gold option 'stone' is not one of the options ['apple', 'river']",
        ),
        "gold index": ([HEADER, ["q", "Which?", '["apple", "river"]', "2", "r"]], "gold option 2 is out of range"),
        "option counts": (
            [*good, ["q9", "Which?", '["apple", "river"]', "apple", "r"]],
            "row 4: 2 options where row 0 has 3",
        ),
    }
    for case, (rows, message) in cases.items():
        path = _write_csv(tmp_path / f"{case.replace(' ', '_')}.csv", rows)
        line = refusal_in_process(capsys, "train", "--model_name_or_path", str(tiny_backbone_dir), "--train_file",
                                  path, *COLUMNS, "--lm_weight", "0", "--output_dir", str(tmp_path / "run"),
                                  "--report_to", "none")  # fmt: skip
        assert message in line, (case, line)
        assert not (tmp_path / "run").exists()

    path = _write_csv(tmp_path / "good.csv", good)
    refused = refusal_in_process(capsys, "train", "--model_name_or_path", str(tiny_backbone_dir), "--train_file",
                                 path, *COLUMNS, "--label_names", "a,b",
                                 "--output_dir", str(tmp_path / "run"))  # fmt: skip
    assert "--options_column (multiple choice: the label is the gold option) does not go with --label_names" in refused
    missing = refusal_in_process(capsys, "train", "--model_name_or_path", str(tiny_backbone_dir), "--train_file",
                                 path, "--text_column", "question", "--options_column", "options", "--output_dir",
                                 str(tmp_path / "run"))  # fmt: skip
    assert "no column 'options' (--options_column, the options); the columns are" in missing

    classifier = _tiny_classifier(tmp_path, tiny_backbone_dir)
    wrong_model = refusal_in_process(capsys, "predict", "--model", str(classifier), "--test_file", path, *COLUMNS,
                                     "--output_file", str(tmp_path / "p.jsonl"))  # fmt: skip
    assert "--options_column is for option scorers (multiple choice)" in wrong_model


@pytest.mark.slow
def test_a_built_in_task_per_option_from_its_joined_rationales(tmp_path, tiny_backbone_dir):
    """`dhrd rationales --join` keeps the task's `context` and `options` columns, so a built-in task trains and
    evaluates per option with `--options_column` (COPA with COPA-SSE explanations)."""
    from conftest import DATA_DIR, requires_data

    requires_data("rationales", "copa_sse")
    task = ("--task", "copa", "--data_dir", str(DATA_DIR))
    joined = dhrd("rationales", *task, "--join", "copa_sse", "--limit", "12", "--output_dir", str(tmp_path / "r"))
    assert joined.returncode == 0, joined.stderr[-3000:]
    rows = _read_jsonl(tmp_path / "r" / "rationales.jsonl")
    assert len(rows) == 12 and all(row["rationale"] and len(row["options"]) == 2 for row in rows)
    assert all(row["text"].startswith(row["context"]) for row in rows)

    trained = dhrd("train", *task, "--train_file", str(tmp_path / "r" / "rationales.jsonl"), "--text_column",
                   "context", "--options_column", "options", "--max_eval_samples", "6", "--model_name_or_path",
                   str(tiny_backbone_dir), "--output_dir", str(tmp_path / "run"), *TRAIN_FLAGS)  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    evaluated = dhrd("evaluate", "--model", str(tmp_path / "run"), *task, "--limit", "6")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    report = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert report["task"] == "copa" and report["rows"] == 6 and 0 <= report["accuracy"] <= 1
