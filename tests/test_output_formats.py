"""`dhrd predict`'s output formats x the problem kinds: every kind's records read back from jsonl and parquet as they
were predicted, in input order, and the two formats agree.

The matrix runs in process: the kinds' real records go through a real `ShardIndex` (stored out of order, as batches
finish) into `_write_predictions`, with row groups small enough that a few rows span several. One `dhrd predict` run
checks multi-label parquet end to end at the real row-group size, where a first row group without a single label
once typed `labels` as nulls and the write failed at the very end, on every rerun."""

import gc
import json
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from cli_helpers import dhrd
from conftest import make_tokenizer, tiny_dhrd

from trainer.cli.predict import PARQUET_ROW_GROUP, _write_predictions, parts_folder
from trainer.jobs.shards import ShardedResults
from trainer.kinds.base import PredictionCounts, ProblemKind
from trainer.kinds.registry import MULTI_LABEL, MULTIPLE_CHOICE, ORDINAL, REGRESSION, SINGLE_LABEL

ROWS = 11
ROW_GROUP = 4  # 11 rows: row groups of 4, 4 and 3
FORMATS = (".jsonl", ".parquet")


def uniform(row: int, count: int) -> list[float]:
    """`count` numbers in [0, 1), the same for the same row (a stand-in for what a model would say)."""
    rng = random.Random(row)
    return [rng.random() for _ in range(count)]


def class_probabilities(row: int) -> list[float]:
    values = uniform(row, 3)
    return [value / sum(values) for value in values]


def label_probabilities(row: int) -> list[float]:
    """Below 0.5 everywhere in the first two row groups (no labels at all), then a first label above it."""
    values = uniform(row, 3)
    if row < 2 * ROW_GROUP:
        return [0.49 * value for value in values]
    return [max(values[0], 0.75), *values[1:]]


def option_count(row: int) -> int:
    return 2 + row % 3


@dataclass(frozen=True)
class Case:
    """One problem kind's predictions of `ROWS` rows: the row ids (with the data's id type) and what the kind's
    `activations` give for row `i`, with its options where the kind scores options."""

    name: str
    kind: ProblemKind
    names: tuple[str, ...]
    id_column: str
    id_type: pa.DataType
    row_id: Callable[[int], object]
    activations: Callable[[int], Sequence[float]]
    options: Callable[[int], list[str] | None] = lambda row: None

    def ids(self) -> list:
        return [self.row_id(row) for row in range(ROWS)]

    def record(self, row: int) -> dict:
        """What `dhrd predict` stores for a row: its id, then the kind's record."""
        predicted = self.kind.record(self.activations(row), self.names, None, self.options(row))
        return {self.id_column: self.row_id(row), **predicted}

    def records(self) -> list[dict]:
        return [self.record(row) for row in range(ROWS)]

    def schema(self) -> pa.Schema:
        return self.kind.prediction_schema(self.id_column, self.id_type, self.names)


CASES = [
    Case("single-label", SINGLE_LABEL, ("wet", "dry", "windy"), "id", pa.string(), "s{}".format, class_probabilities),
    Case(
        "multi-label-first-groups-empty",
        MULTI_LABEL,
        ("rain", "snow", "wind"),
        "uid",
        pa.int64(),
        lambda row: 100 - row,
        label_probabilities,
    ),
    Case("ordinal", ORDINAL, ("low", "mid", "high"), "id", pa.int32(), int, class_probabilities),
    Case("regression", REGRESSION, ("score",), "idx", pa.int64(), int, lambda row: [10 * uniform(row, 1)[0] - 5]),
    Case(
        "multiple-choice",
        MULTIPLE_CHOICE,
        MULTIPLE_CHOICE.fixed_label_names,
        "question",
        pa.string(),
        "q{}".format,
        lambda row: [4 * value - 2 for value in uniform(row, option_count(row))],
        lambda row: [f"option {k} of question {row}" for k in range(option_count(row))],
    ),
]
by_name = pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)


def write(case: Case, path: Path, records: list[dict] | None = None) -> PredictionCounts:
    """The records stored as `dhrd predict` stores them (batches finish out of order: odd rows, then even ones in
    reverse), then the output written from them in input order."""
    records = case.records() if records is None else records
    store = ShardedResults(parts_folder(path), key=case.id_column)
    with store.open() as (done, shard):
        shard.write(records[1::2])
        shard.write(reversed(records[0::2]))
        return _write_predictions(done, case.ids(), path, case.kind, case.schema(), row_group=ROW_GROUP)


def read(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    return pq.read_table(path).to_pylist()


@pytest.mark.parametrize("suffix", FORMATS)
@by_name
def test_predictions_read_back_as_predicted_in_input_order(tmp_path, case, suffix):
    path = tmp_path / f"predictions{suffix}"
    counts = write(case, path)
    assert read(path) == case.records()
    assert counts.rows == ROWS


@by_name
def test_jsonl_and_parquet_hold_the_same_records_and_summary(tmp_path, case):
    jsonl, parquet = tmp_path / "predictions.jsonl", tmp_path / "predictions.parquet"
    summaries = [case.kind.summary(write(case, path), case.names) for path in (jsonl, parquet)]
    assert read(jsonl) == read(parquet)
    assert summaries[0] == summaries[1]


@by_name
def test_parquet_columns_are_the_kinds_schema_in_every_row_group(tmp_path, case):
    """The schema comes from the kind, not from the first row group's values: all-empty label lists there (the
    multi-label case) type `labels` as strings all the same."""
    path = tmp_path / "predictions.parquet"
    write(case, path)
    parquet = pq.ParquetFile(path)
    assert parquet.schema_arrow.remove_metadata() == case.schema()
    assert parquet.metadata.num_row_groups == 3


def test_a_record_that_does_not_fit_fails_once_and_closes_the_writer(tmp_path, monkeypatch):
    """A stored record the schema cannot hold (an older job's parts, say) is one error: no output file, and no
    second complaint from a writer left open on a closed file (`ParquetWriter.__del__`'s stray traceback)."""
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    case = next(case for case in CASES if case.kind is SINGLE_LABEL)
    records = case.records()
    records[ROW_GROUP + 1]["label"] = 7  # in the second row group: the writer is open, a group written
    path = tmp_path / "predictions.parquet"
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
        write(case, path, records)
    gc.collect()
    assert unraisable == [] and not path.exists()


@pytest.fixture
def labels_only_after_the_first_row_group(tmp_path) -> tuple[Path, Path, list[float]]:
    """A multi-label DHRD checkpoint whose thresholds sit just above what it says of 'calm', and a file of
    `PARQUET_ROW_GROUP` 'calm' rows (no labels: the whole first row group empty) then three 'storm' rows (labelled)."""
    model = tiny_dhrd(
        "qwen2",
        num_labels=2,
        id2label={0: "wet", 1: "dry"},
        label2id={"wet": 0, "dry": 1},
        problem_type="multi_label_classification",
    )
    tokenizer = make_tokenizer()
    with torch.no_grad():
        calm, storm = (
            torch.sigmoid(model(**tokenizer([text], return_tensors="pt")).logits)[0] for text in ("calm", "storm")
        )
    thresholds = (calm + 1e-3).tolist()
    assert (storm > torch.tensor(thresholds)).any()  # the model labels 'storm' at these thresholds
    model.config.label_thresholds = thresholds
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    rows = ["calm"] * PARQUET_ROW_GROUP + ["storm"] * 3
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps({"text": text}) + "\n" for text in rows))
    return tmp_path / "model", tmp_path / "rows.jsonl", thresholds


def test_multi_label_parquet_whose_first_row_group_has_no_labels_end_to_end(
    tmp_path, labels_only_after_the_first_row_group
):
    model, rows, thresholds = labels_only_after_the_first_row_group
    output = tmp_path / "predictions.parquet"
    completed = dhrd("predict", "--model", str(model), "--test_file", str(rows), "--output_file", str(output))
    assert completed.returncode == 0 and "Traceback" not in completed.stderr, completed.stderr[-3000:]
    parquet = pq.ParquetFile(output)
    assert parquet.metadata.num_row_groups == 2
    assert parquet.schema_arrow.field("labels").type == pa.list_(pa.string())
    predicted = parquet.read().to_pylist()
    assert [row["idx"] for row in predicted] == list(range(PARQUET_ROW_GROUP + 3))
    for row in predicted:  # each label decided at its threshold
        assert row["labels"] == [name for name, limit in zip(("wet", "dry"), thresholds) if row["probs"][name] > limit]
    assert all(row["labels"] == [] for row in predicted[:PARQUET_ROW_GROUP])
    assert all(row["labels"] for row in predicted[PARQUET_ROW_GROUP:])


def test_a_native_one_output_classifier_without_a_problem_type_predicts_scores(tmp_path, capsys):
    """A Hub classifier with one output and no `problem_type` is a regressor to transformers (its loss is MSE):
    `predict` writes its score, never a label `LABEL_0` at probability 1.0 for every row."""
    from cli_helpers import dhrd_in_process
    from transformers import LlamaConfig, LlamaForSequenceClassification

    tokenizer = make_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_labels=1, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    model = LlamaForSequenceClassification(config)
    assert model.config.problem_type is None
    model.save_pretrained(tmp_path / "native")
    tokenizer.save_pretrained(tmp_path / "native")
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"text": text}) + "\n" for text in ("a b", "c d e", "f")))
    for suffix in FORMATS:
        output = tmp_path / f"predictions{suffix}"
        dhrd_in_process(
            capsys, "predict", "--model", str(tmp_path / "native"), "--test_file", str(rows),
            "--output_file", str(output),
        )  # fmt: skip
        records = read(output)
        assert [sorted(record) for record in records] == [["idx", "score"]] * 3
        assert len({record["score"] for record in records}) == 3
