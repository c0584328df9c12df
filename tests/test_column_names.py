"""Column names × subcommands: a user's columns named like the normalised rows' (`text`, `label`, `rationale`,
`options`, `idx`, `id`) and unlike them, labels as names and as integers, CSV and JSONL, through `rationales
--dry_run`, `train`, `evaluate`, `predict` and `explain`, run in-process as the shell runs them (`trainer.cli.main`).

Every layout must read every row with its own label: the training rows' targets are checked against the file, and
`evaluate`'s accuracy must equal the accuracy of `predict`'s labels against the file's gold names (a label read
through the wrong column, or cast to another type, breaks one of them). A CSV whose `label` column held names once
failed at row 0 ("label '0' is not one of the labels"): `datasets` kept the user's string type for the normalised
`label` column that took its name.
"""

import csv
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from cli_helpers import dhrd_in_process
from fake_openai import batch_output

from trainer.data.description import DatasetArguments
from trainer.data.labelled import LabelledData

WORDS = "sun rain wind snow cloud storm fog hail frost heat".split()
TRAIN = ("--max_steps", "2", "--per_device_train_batch_size", "4", "--report_to", "none", "--save_strategy", "no")
TRAIN += ("--max_length", "96", "--max_input_length", "24", "--logging_steps", "1", "--disable_tqdm", "true")


@dataclass
class Layout:
    """One data layout: its columns (`text`, `label`, `rationale`, `id` stand for the roles; the values are the
    file's column names), the label values as written, and the flags that describe it."""

    name: str
    columns: dict[str, str]
    labels: tuple  # the label values as they stand in the file
    names: tuple[str, ...]  # the label names the model ends with, in label order
    flags: tuple[str, ...] = ()
    suffix: str = ".csv"
    extra: dict[str, str] = field(default_factory=dict)  # more columns (e.g. options), value per row

    def gold(self, value) -> str:
        return self.names[value] if isinstance(value, int) else str(value)


LAYOUTS = [
    # the normalised names, label names: the user's most common file (the defect)
    Layout(
        "csv-id-text-label-rationale",
        {"id": "id", "text": "text", "label": "label", "rationale": "rationale"},
        ("yes", "no"),
        ("no", "yes"),
    ),
    Layout(
        "jsonl-id-text-label-rationale",
        {"id": "id", "text": "text", "label": "label", "rationale": "rationale"},
        ("yes", "no"),
        ("no", "yes"),
        suffix=".jsonl",
    ),
    # `idx` ids, integer labels
    Layout(
        "csv-idx-integer-labels",
        {"id": "idx", "text": "text", "label": "label", "rationale": "rationale"},
        (0, 1, 2),
        ("0", "1", "2"),
    ),
    # the normalised names swapped: the text in `label`, the label names in `text`, ids in `rationale`... and the
    # rationale in `options`
    Layout(
        "csv-names-swapped",
        {"id": "idx", "text": "label", "label": "text", "rationale": "options"},
        ("billing", "shipping"),
        ("billing", "shipping"),
        ("--text_column", "label", "--label_column", "text", "--rationale_column", "options"),
    ),
    # names unlike the normalised ones
    Layout(
        "csv-own-names",
        {"id": "ticket_id", "text": "body", "label": "team", "rationale": "why"},
        ("billing", "shipping", "returns"),
        ("billing", "returns", "shipping"),
        ("--id_column", "ticket_id", "--text_column", "body", "--label_column", "team", "--rationale_column", "why"),
    ),
]


def _write(layout: Layout, path: Path, rows: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    records = []
    for index in range(rows):
        record = {
            layout.columns["id"]: 100 + index,
            layout.columns["text"]: " ".join(rng.choices(WORDS, k=rng.randint(2, 6))),
            layout.columns["label"]: layout.labels[index % len(layout.labels)],
            layout.columns["rationale"]: " ".join(rng.choices(WORDS, k=3)),
        }
        records.append(record)
    if layout.suffix == ".csv":
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
    else:
        path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return records


@pytest.fixture(scope="module")
def backbone(tmp_path_factory) -> Path:
    from conftest import make_tokenizer, tiny_text_config
    from transformers import AutoModelForCausalLM

    folder = tmp_path_factory.mktemp("column-names") / "backbone"
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(tiny_text_config("llama")).save_pretrained(folder)
    make_tokenizer().save_pretrained(folder)
    return folder


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda layout: layout.name)
def test_every_subcommand_reads_every_layout(layout, backbone, tmp_path, capsys):
    train_records = _write(layout, tmp_path / f"train{layout.suffix}", 12, seed=0)
    test_records = _write(layout, tmp_path / f"test{layout.suffix}", 7, seed=1)
    data = (
        "--train_file",
        str(tmp_path / f"train{layout.suffix}"),
        "--test_file",
        str(tmp_path / f"test{layout.suffix}"),
    )
    data += layout.flags

    # the data layer: every row's target is its own label
    args = DatasetArguments(
        train_file=data[1], **{flag[2:]: value for flag, value in zip(layout.flags[::2], layout.flags[1::2])}
    )
    rows = LabelledData(args).rows("train")
    assert rows["label"] == [layout.names.index(layout.gold(r[layout.columns["label"]])) for r in train_records]
    assert rows["idx"] == [r[layout.columns["id"]] for r in train_records]

    # the bill for the rationales the file would get in a new column (its own are refused as a target)
    bill = dhrd_in_process(
        capsys,
        "rationales",
        *data,
        "--rationale_column",
        "teacher",
        "--output_dir",
        str(tmp_path / "bill"),
        "--teacher_model",
        str(backbone),
        "--dry_run",
    )
    assert "12 rows" in bill

    # the teacher through batch files: requests keyed by the data's own ids, the answers joined to the rows as given
    batch = ("rationales", *data, "--rationale_column", "teacher", "--output_dir", str(tmp_path / "batch"),
             "--server_model", "m")  # fmt: skip
    dhrd_in_process(capsys, *batch, "--write_batch", str(tmp_path / "requests.jsonl"))
    requested = [json.loads(line)["custom_id"].rsplit("@", 1)[0]
                 for line in (tmp_path / "requests.jsonl").read_text().splitlines()]  # fmt: skip
    assert requested == [str(r[layout.columns["id"]]) for r in train_records]
    results = batch_output(tmp_path / "requests.jsonl", tmp_path / "results.jsonl")
    dhrd_in_process(capsys, *batch, "--read_batch", str(results))
    explained = [json.loads(line) for line in (tmp_path / "batch" / "rationales.jsonl").read_text().splitlines()]
    own = [layout.columns[role] for role in ("id", "text", "label")]
    assert [[row[column] for column in own] for row in explained] == [[r[c] for c in own] for r in train_records]
    assert all(row["teacher"] and row["rationale_status"] == "kept" for row in explained)

    model = tmp_path / "model"
    dhrd_in_process(capsys, "train", *data, "--model_name_or_path", str(backbone), "--output_dir", str(model), *TRAIN)
    config = json.loads((model / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(len(layout.names))] == list(layout.names)

    predictions = tmp_path / "predictions.jsonl"
    dhrd_in_process(capsys, "predict", "--model", str(model), *data, "--output_file", str(predictions))
    predicted = [json.loads(line) for line in predictions.read_text().splitlines()]
    id_key = layout.columns["id"]  # the output names the id as the data does
    assert [p[id_key] for p in predicted] == [r[id_key] for r in test_records]
    assert all(p["label"] in layout.names for p in predicted)

    report = tmp_path / "metrics.json"
    dhrd_in_process(capsys, "evaluate", "--model", str(model), *data, "--split", "test", "--output_file", str(report))
    accuracy = json.loads(report.read_text())["accuracy"]
    gold = [layout.gold(r[layout.columns["label"]]) for r in test_records]
    assert accuracy == pytest.approx(sum(p["label"] == g for p, g in zip(predicted, gold)) / len(gold))

    explained = tmp_path / "why.jsonl"
    dhrd_in_process(
        capsys,
        "explain",
        "--model",
        str(model),
        *data,
        "--output_file",
        str(explained),
        "--limit",
        "2",
        "--max_new_tokens",
        "4",
    )
    lines = [json.loads(line) for line in explained.read_text().splitlines()]
    assert [line[id_key] for line in lines] == [r[id_key] for r in test_records[:2]]
    assert [line["label"] for line in lines] == [p["label"] for p in predicted[:2]]


OTHER_KINDS = {
    # multi-label: names joined by commas in a CSV `label` cell (a JSON `[]` is the empty set)
    "multi-label": (
        ["a,b", "[]", "b", '["a"]'],
        ("--problem_type", "multi_label_classification", "--label_names", "a,b"),
        [[1.0, 1.0], [0.0, 0.0], [0.0, 1.0], [1.0, 0.0]],
    ),
    "regression": (["1.5", "-2", "0.25", "3"], ("--problem_type", "regression"), [1.5, -2.0, 0.25, 3.0]),
    # an option scorer whose options column is named `options` (a JSON list in a CSV cell) and gold one `label`
    "multiple-choice": (["up", "down", "down", "up"], ("--options_column", "options"), [0, 1, 1, 0]),
}


@pytest.mark.parametrize("kind", OTHER_KINDS)
def test_the_other_kinds_read_columns_named_like_the_normalised_ones(kind, backbone, tmp_path, capsys):
    labels, flags, targets = OTHER_KINDS[kind]
    rows = 8
    with open(tmp_path / "rows.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["idx", "text", "label", "rationale", "options"])
        for index in range(rows):
            writer.writerow([index, f"{WORDS[index]} {WORDS[-index]}", labels[index % 4], "because", '["up", "down"]'])
    data = ("--train_file", str(tmp_path / "rows.csv"), "--test_file", str(tmp_path / "rows.csv"), *flags)
    args = DatasetArguments(train_file=data[1], **{flag[2:]: value for flag, value in zip(flags[::2], flags[1::2])})
    assert LabelledData(args).rows("train")["label"] == [targets[index % 4] for index in range(rows)]

    model = tmp_path / "model"
    dhrd_in_process(capsys, "train", *data, "--model_name_or_path", str(backbone), "--output_dir", str(model), *TRAIN)
    predictions = tmp_path / "predictions.parquet"
    dhrd_in_process(capsys, "predict", "--model", str(model), *data[2:4], "--output_file", str(predictions))
    import pyarrow.parquet as pq

    assert pq.read_table(predictions).column("idx").to_pylist() == list(range(rows))
    report = json.loads(dhrd_in_process(capsys, "evaluate", "--model", str(model), *data[2:4], "--split", "test"))
    assert report["rows"] == rows

    # the teacher through batch files, for this kind: its prompt (the options listed, a label set, a score) in the
    # requests, the answers back on the rows as given
    batch = ("rationales", *data[:2], *flags, "--rationale_column", "teacher", "--output_dir", str(tmp_path / "batch"),
             "--server_model", "m")  # fmt: skip
    dhrd_in_process(capsys, *batch, "--write_batch", str(tmp_path / "requests.jsonl"))
    requests = [json.loads(line) for line in (tmp_path / "requests.jsonl").read_text().splitlines()]
    prompts = [request["body"]["messages"][-1]["content"] for request in requests]
    assert len(prompts) == rows and all(f"{WORDS[index]} {WORDS[-index]}" in prompts[index] for index in range(rows))
    if kind == "multiple-choice":
        assert all("up" in prompt and "down" in prompt for prompt in prompts)
    dhrd_in_process(
        capsys, *batch, "--read_batch", str(batch_output(tmp_path / "requests.jsonl", tmp_path / "o.jsonl"))
    )
    explained = [json.loads(line) for line in (tmp_path / "batch" / "rationales.jsonl").read_text().splitlines()]
    assert [row["idx"] for row in explained] == list(range(rows))
    assert [row["rationale_status"] for row in explained] == ["kept"] * rows and all(r["teacher"] for r in explained)
