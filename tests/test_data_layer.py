"""The data layer's parts: the label schema as a function of the description and the splits (no log, no state), and
rows normalised through `Dataset.map` in several processes equal to one process's."""

import json
import logging

from trainer.data.description import DatasetArguments
from trainer.data.label_schema import ModelLabels, label_schema
from trainer.data.labelled import LabelledData
from trainer.data.loading import RawSplits
from trainer.kinds.registry import MULTI_LABEL, SINGLE_LABEL


def _write(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def test_the_label_schema_is_a_function_of_the_description_and_the_splits(tmp_path, caplog):
    train = _write(tmp_path / "t.jsonl", [{"text": f"row {i}", "label": ["b", "a"][: 1 + i % 2]} for i in range(6)])
    args = DatasetArguments(train_file=train)
    with caplog.at_level(logging.INFO):
        first = label_schema(args, None, RawSplits(args, None))
        second = label_schema(args, None, RawSplits(args, None))
    assert first == second and not caplog.records  # resolving says nothing; `LabelledData.schema` logs once
    assert first.kind is MULTI_LABEL and first.names == ["a", "b"]
    assert first.kind_origin == "the list feature of column 'label'"
    assert first.names_origin.startswith("distinct values")
    model = ModelLabels(["a", "b"], SINGLE_LABEL)  # a model's kind is the kind, whatever the data looks like
    assert label_schema(args, None, RawSplits(args, None), model).kind is SINGLE_LABEL


def test_rows_normalised_in_two_processes_equal_one_process(tmp_path):
    rows = [
        {"id": f"r{i}", "a": f"first {i}", "b": f"second {i}", "label": "yes" if i % 3 else "no"} for i in range(40)
    ]
    train = _write(tmp_path / "t.jsonl", rows)
    common = {"train_file": train, "text_columns": "a,b", "id_column": "id", "label_names": "no,yes"}
    one = LabelledData(DatasetArguments(**common)).rows("train")
    two = LabelledData(DatasetArguments(**common, preprocessing_num_workers=2)).rows("train")
    assert one.to_list() == two.to_list()
    assert one[1] == {"idx": "r1", "text": "a: first 1\nb: second 1", "label": 1}
