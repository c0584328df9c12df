"""A user's own data through the whole command line: a Hub-format dataset (`save_to_disk`, `ClassLabel` names) and a
CSV with two text columns, from teacher rationales (the embedded teacher) to training, evaluation, prediction,
export and the Hub upload (Hub stand-in on loopback); and the bad input a new user meets on the way."""

import csv
import json
import random

import pyarrow.parquet as pq
import pytest
import torch
from cli_helpers import dhrd, dhrd_in_process, error_line, fake_hub, refusal_in_process
from datasets import ClassLabel, Dataset, DatasetDict
from transformers import AutoModelForSequenceClassification, AutoTokenizer

LABELS = ["entailment", "neutral", "contradiction"]
TEMPLATE = "Premise: {premise}\\nHypothesis: {hypothesis}"  # as typed in a shell: backslash-n means a line break
WORDS = "the a cat dog sun rain sits runs under over near big small red".split()
TRAIN_FLAGS = (
    "--max_steps",
    "2",
    "--per_device_train_batch_size",
    "4",
    "--report_to",
    "none",
    "--save_strategy",
    "no",
)
TRAIN_FLAGS += ("--max_length", "256", "--max_input_length", "48", "--logging_steps", "1")


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choices(WORDS, k=words))


def _nli_split(rows: int, seed: int, labelled: bool = True) -> Dataset:
    rng = random.Random(seed)
    data = {
        "premise": [_sentence(rng, rng.randint(3, 30)) for _ in range(rows)],
        "hypothesis": [_sentence(rng, rng.randint(2, 6)) for _ in range(rows)],
        "label": [rng.randrange(3) if labelled else -1 for _ in range(rows)],
    }
    return Dataset.from_dict(data).cast_column("label", ClassLabel(names=LABELS))


@pytest.fixture(scope="module")
def hub_dataset(tmp_path_factory):
    """A dataset as `load_dataset("user/nli")` gives it: train / validation / test (test unlabelled: -1)."""
    folder = tmp_path_factory.mktemp("own-data") / "nli"
    DatasetDict(
        train=_nli_split(12, 0), validation=_nli_split(6, 1), test=_nli_split(5, 2, labelled=False)
    ).save_to_disk(str(folder))
    return folder


def _direct_probs(model_dir, texts: list[str], max_length: int) -> torch.Tensor:
    """The model's probabilities one input at a time (no batching, no padding): the reference for predict."""
    import modeling_dhrd  # noqa: F401 - a DHRD checkpoint loads through the Auto classes

    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    with torch.no_grad():
        return torch.cat(
            [
                model(**tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")).logits.softmax(
                    -1
                )
                for text in texts
            ]
        )


def _read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_hub_dataset_from_rationales_to_the_hub(hub_dataset, tiny_backbone_dir, tmp_path, capsys):
    """Each subcommand through `dhrd`'s own entry point in this process (the push, which needs the fake Hub's
    environment, in a shell)."""
    data = ("--dataset_name", str(hub_dataset), "--text_columns", "premise,hypothesis", "--input_template", TEMPLATE)
    rationales = tmp_path / "rationales"
    dhrd_in_process(
        capsys, "rationales", *data, "--limit", "4", "--max_new_tokens", "12", "--batch_size", "4",
        "--output_dir", str(rationales),
    )  # fmt: skip
    rows = _read_jsonl(rationales / "rationales.jsonl")
    assert [row["idx"] for row in rows] == [0, 1, 2, 3]  # no id column: the row position, added
    source = _nli_split(12, 0)
    assert [row["premise"] for row in rows] == source["premise"][:4]  # the user's columns, as they were
    assert [row["label"] for row in rows] == source["label"][:4]
    assert all(row["rationale_status"] for row in rows)
    assert json.loads((rationales / "summary.json").read_text())["rows"] == 4

    run = tmp_path / "run"
    dhrd_in_process(
        capsys, "train", "--model_name_or_path", str(tiny_backbone_dir), *data,
        "--train_file", str(rationales / "rationales.jsonl"), "--output_dir", str(run), *TRAIN_FLAGS,
    )  # fmt: skip
    config = json.loads((run / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(3)] == LABELS  # the ClassLabel names, in their order
    record = json.loads((run / "dhrd_training.json").read_text())
    assert record["preparation"]["train"]["rows"] == 4
    assert record["preparation"]["eval"]["rows"] == 6  # the dataset's validation split
    assert record["input_format"]["input_template"] == "Premise: {premise}\nHypothesis: {hypothesis}"

    # evaluate and predict read the input format and truncation from the checkpoint: only the data is named
    evaluated = dhrd_in_process(capsys, "evaluate", "--model", str(run), "--dataset_name", str(hub_dataset))
    report = json.loads(evaluated.strip().splitlines()[-1])
    assert report["rows"] == 6 and 0 <= report["accuracy"] <= 1 and "macro_f1" in report

    predictions = tmp_path / "predictions.jsonl"
    dhrd_in_process(
        capsys, "predict", "--model", str(run), "--dataset_name", str(hub_dataset), "--output_file", str(predictions)
    )
    rows = _read_jsonl(predictions)
    test = _nli_split(5, 2, labelled=False)
    assert [row["idx"] for row in rows] == list(range(5))
    assert all(list(row["probs"]) == LABELS and abs(sum(row["probs"].values()) - 1) < 1e-5 for row in rows)
    texts = [f"Premise: {p}\nHypothesis: {h}" for p, h in zip(test["premise"], test["hypothesis"])]
    expected = _direct_probs(run, texts, 48)
    got = torch.tensor([[row["probs"][name] for name in LABELS] for row in rows])
    assert torch.allclose(got, expected, atol=1e-5)
    assert [row["label"] for row in rows] == [LABELS[i] for i in expected.argmax(-1).tolist()]

    exported = tmp_path / "exported"
    with fake_hub(tmp_path / "hub") as hub_env:
        pushed = dhrd(
            "export", "--model", str(run), "--output_dir", str(exported), "--push_to_hub", "me/nli-dhrd",
            env_extra=hub_env,
        )  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr[-3000:]
    assert (tmp_path / "hub" / "files" / "model.safetensors").is_file()
    uploaded = json.loads((tmp_path / "hub" / "files" / "config.json").read_text())
    assert [uploaded["id2label"][str(i)] for i in range(3)] == LABELS
    assert json.loads((tmp_path / "hub" / "files" / "dhrd_training.json").read_text())[
        "input_format"
    ]  # predict reads it

    # the export predicts the same, into parquet this time, with the same truncation it carries
    parquet = tmp_path / "predictions.parquet"
    again = dhrd(
        "predict", "--model", str(exported), "--dataset_name", str(hub_dataset), "--output_file", str(parquet)
    )
    assert again.returncode == 0, again.stderr[-3000:]
    table = pq.read_table(parquet).to_pylist()
    assert [row["idx"] for row in table] == list(range(5))
    exported_probs = torch.tensor([[row["probs"][name] for name in LABELS] for row in table])
    assert torch.allclose(exported_probs, expected, atol=1e-4)
    assert not list(tmp_path.glob(".*.parts"))  # the resumable parts are gone once the output is written


@pytest.mark.slow
def test_csv_with_two_text_columns_end_to_end(tiny_backbone_dir, tmp_path):
    rng = random.Random(3)
    for name, rows in (("train", 10), ("valid", 6), ("test", 7)):
        with open(tmp_path / f"{name}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["ticket_id", "subject", "body", "team"])
            for i in range(rows):
                team = rng.choice(["billing", "shipping"])
                writer.writerow([f"{name}-{i}", _sentence(rng, 3), _sentence(rng, rng.randint(4, 40)), team])
    data = (
        "--train_file", str(tmp_path / "train.csv"), "--validation_file", str(tmp_path / "valid.csv"),
        "--test_file", str(tmp_path / "test.csv"), "--text_columns", "subject,body", "--label_column", "team",
        "--id_column", "ticket_id", "--task_description", "a customer support ticket",
    )  # fmt: skip
    generated = dhrd(
        "rationales", *data, "--limit", "3", "--max_new_tokens", "10", "--output_dir", str(tmp_path / "r")
    )
    assert generated.returncode == 0, generated.stderr[-3000:]
    rows = _read_jsonl(tmp_path / "r" / "rationales.jsonl")
    assert [row["ticket_id"] for row in rows] == ["train-0", "train-1", "train-2"]  # the user's id column is kept
    assert "Labels (distinct values of 'team'" in generated.stderr  # said once, where they came from

    run = tmp_path / "run"
    train_data = list(data)
    train_data[1] = str(tmp_path / "r" / "rationales.jsonl")
    trained = dhrd(
        "train",
        "--model_name_or_path",
        str(tiny_backbone_dir),
        *train_data,
        "--output_dir",
        str(run),
        *TRAIN_FLAGS,
        "--bf16",
    )  # fmt: skip  (bf16 on a CPU-only machine: it just works)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert json.loads((run / "config.json").read_text())["id2label"] == {"0": "billing", "1": "shipping"}
    predicted = dhrd("predict", "--model", str(run), *data, "--output_file", str(tmp_path / "p.jsonl"))
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    rows = _read_jsonl(tmp_path / "p.jsonl")
    assert [row["ticket_id"] for row in rows] == [f"test-{i}" for i in range(7)]
    assert {row["label"] for row in rows} <= {"billing", "shipping"}


def test_parts_without_a_manifest_are_refused_until_overwrite(tmp_path, tiny_backbone_dir):
    """Parts that say nothing of the job that wrote them (an older version's, or copied in) could be another model's:
    refused in one line, nothing merged; `--overwrite` starts over. Resuming a killed job of the same manifest is
    tested in test_job_manifest.py."""
    from conftest import tiny_dhrd

    from trainer.cli.predict import parts_folder

    model_dir = tmp_path / "model"
    tiny_dhrd("qwen2", num_labels=2, id2label={0: "no", 1: "yes"}).save_pretrained(model_dir)
    AutoTokenizer.from_pretrained(tiny_backbone_dir).save_pretrained(model_dir)
    (tmp_path / "rows.jsonl").write_text(
        "".join(json.dumps({"id": f"r{i}", "text": f"row {i}"}) + "\n" for i in range(9))
    )
    output = tmp_path / "out.jsonl"
    parts = parts_folder(output)
    parts.mkdir()
    finished = {"id": "r4", "label": "yes", "probs": {"no": 0.25, "yes": 0.75}}  # a marker the model never gives
    (parts / "shard-00000.jsonl").write_text(json.dumps(finished) + "\n" + '{"id": "r5", "label": "n')
    predict = ["predict", "--model", str(model_dir), "--test_file", str(tmp_path / "rows.jsonl"),
               "--output_file", str(output), "--max_batch_tokens", "16"]  # fmt: skip
    refused = dhrd(*predict)
    assert "holds results without a manifest" in error_line(refused) and "--overwrite" in error_line(refused)
    assert not output.exists() and (parts / "shard-00000.jsonl").is_file()
    completed = dhrd(*predict, "--overwrite")
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "Resuming" not in completed.stderr
    rows = _read_jsonl(output)
    assert [row["id"] for row in rows] == [f"r{i}" for i in range(9)] and rows[4] != finished
    assert not parts.exists()


@pytest.fixture
def files(tmp_path):
    """A user's CSV with two text columns and string labels, and a tiny trained checkpoint with other labels."""
    with open(tmp_path / "data.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["premise", "hypothesis", "label"])
        for i in range(8):
            writer.writerow([f"premise {i}", f"hypothesis {i}", ["yes", "no"][i % 2]])
    return tmp_path


def _csv(tmp_path, name: str, rows: list[list]) -> str:
    with open(tmp_path / name, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return str(tmp_path / name)


@pytest.mark.parametrize(
    "case, args, message",
    [
        ("unknown column", ["--text_column", "sentence"], "no column 'sentence' (--text_column); the columns are"),
        (
            "template field",
            ["--text_columns", "premise,hypothesis", "--input_template", "{premise} / {nope}"],
            "--input_template field {nope} is not a column; the columns are ['premise', 'hypothesis', 'label']",
        ),
        (
            "label not a name",
            ["--text_column", "premise", "--label_names", "yes,maybe"],
            "data.csv row 1: label 'no' is not one of the labels ['yes', 'maybe']",
        ),
        ("both text flags", ["--text_column", "premise", "--text_columns", "premise,hypothesis"], "not both"),
        ("positional field", ["--text_columns", "premise", "--input_template", "{} {premise}"], "must name a column"),
    ],
)
def test_bad_dataset_descriptions_are_one_line(files, tiny_backbone_dir, case, args, message, capsys):
    output = files / "run"
    line = refusal_in_process(
        capsys, "train", "--model_name_or_path", str(tiny_backbone_dir), "--train_file", str(files / "data.csv"),
        *args, "--output_dir", str(output), "--report_to", "none",
    )  # fmt: skip
    assert message in line, case
    assert not output.exists()


def test_bad_labels_name_the_row(tmp_path, tiny_backbone_dir, capsys):
    header = ["text", "label"]
    cases = {
        "int outside": ([header, ["a", 0], ["b", 1], ["c", 7]], "Integer labels [0, 1, 7]"),
        "float": ([header, *[[f"t{i}", i % 2] for i in range(6)], ["x", 1.5]], "row 6: label 1.5 is neither"),
        "empty cell": ([header, ["a", "yes"], ["b", ""]], "row 1: no label"),
        "no rows": ([header], "empty_split.csv: the file has no rows (only a header)"),
    }
    for case, (rows, message) in cases.items():
        path = _csv(tmp_path, "empty_split.csv" if case == "no rows" else f"{case.replace(' ', '_')}.csv", rows)
        line = refusal_in_process(capsys, "train", "--model_name_or_path", str(tiny_backbone_dir), "--train_file",
                                  path, "--output_dir", str(tmp_path / "run"), "--report_to", "none")  # fmt: skip
        assert message in line, (case, line)
        assert not (tmp_path / "run").exists()


def test_predict_refuses_data_whose_label_names_differ_from_the_model(
    hub_dataset, tmp_path, tiny_backbone_dir, capsys
):
    from conftest import tiny_dhrd

    model_dir = tmp_path / "model"
    tiny_dhrd("qwen2", num_labels=3, id2label={0: "entailment", 1: "contradiction", 2: "neutral"}).save_pretrained(
        model_dir
    )
    AutoTokenizer.from_pretrained(tiny_backbone_dir).save_pretrained(model_dir)
    output = tmp_path / "p.jsonl"
    line = refusal_in_process(capsys, "predict", "--model", str(model_dir), "--dataset_name", str(hub_dataset),
                              "--text_column", "premise", "--output_file", str(output))  # fmt: skip
    assert "The model's labels ['entailment', 'contradiction', 'neutral'] differ from the dataset's ClassLabel" in line
    assert not output.exists() and not list(tmp_path.glob(".*.parts"))
