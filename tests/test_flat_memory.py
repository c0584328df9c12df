"""What keeps `dhrd predict` (and the teacher's server client) flat in memory on millions of rows: the on-disk index
of finished records, rows read in windows, the output assembled from the parts in input order, and a bounded
window of requests in flight. Peak memory itself is measured by `examples/benchmark_predict_memory.py`."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pyarrow.parquet as pq
import pytest
from conftest import make_tokenizer, tiny_dhrd

import trainer.cli.predict as predict_module
import trainer.data.labelled as labelled_module
from trainer.cli import main
from trainer.jobs.bounded import bounded_completions
from trainer.jobs.shards import ShardedResults, require_unique_ids


def test_the_index_finds_every_finished_record_and_ignores_a_cut_line(tmp_path):
    store = ShardedResults(tmp_path / "parts", key="id")
    with store.open() as (done, shard):
        shard.write({"id": f"r{i}", "value": i} for i in range(3))
    first = store.folder / "shard-00000.jsonl"
    first.write_bytes(first.read_bytes() + b'{"id": "r3", "val')  # a kill in the middle of a write
    with store.open() as (done, shard):
        assert len(done) == 3 and "r2" in done and "r3" not in done
        assert done.missing(["r0", "r3", "r1", "r9"]) == [1, 3]
        shard.write([{"id": "r3", "value": 3}, {"id": "r0", "value": "again"}])  # r0 again: the first one wins
        assert done["r3"] == {"id": "r3", "value": 3} and done["r0"] == {"id": "r0", "value": 0}
        assert done.raw("r1") == b'{"id": "r1", "value": 1}\n'
        with pytest.raises(KeyError):
            done["r9"]
    assert store.load() == {f"r{i}": {"id": f"r{i}", "value": i} for i in range(4)}


def test_repeated_ids_are_named_from_a_second_pass():
    require_unique_ids(lambda: iter(range(1000)), "idx", "data")
    with pytest.raises(ValueError, match=r"data: column 'uid' must identify rows uniquely; repeated ids \['7'\]"):
        require_unique_ids(lambda: iter([1, 7, 3, 7]), "uid", "data")


def test_bounded_completions_keep_at_most_the_window_in_flight_and_read_items_lazily():
    lock, state = threading.Lock(), {"running": 0, "most": 0, "read": 0}

    def items():
        for item in range(40):
            state["read"] += 1
            yield item

    def call(item: int) -> int:
        with lock:
            state["running"] += 1
            state["most"] = max(state["most"], state["running"])
        time.sleep(0.002 * (item % 3))
        with lock:
            state["running"] -= 1
        return item * item

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = bounded_completions(pool, call, items(), 3)
        first = next(results)
        assert state["read"] <= 4  # only the window (and one refill) was read, not all 40 items
        rest = list(results)
    assert sorted([first, *rest]) == [(i, i * i) for i in range(40)]
    assert state["most"] <= 3


@pytest.fixture
def export_and_rows(tmp_path):
    model = tiny_dhrd("qwen2", num_labels=2, id2label={0: "wet", 1: "dry"}, label2id={"wet": 0, "dry": 1})
    model.save_pretrained(tmp_path / "model")
    make_tokenizer().save_pretrained(tmp_path / "model")
    rows = [{"id": f"u{i}", "text": "rain " * (1 + (i * 7) % 11)} for i in range(23)]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return tmp_path


def test_windows_smaller_than_the_data_give_the_same_output_in_input_order(export_and_rows, monkeypatch):
    folder = export_and_rows
    base = ["predict", "--model", str(folder / "model"), "--test_file", str(folder / "rows.jsonl")]
    assert main([*base, "--output_file", str(folder / "whole.jsonl")]) == 0
    monkeypatch.setattr(predict_module, "ROW_WINDOW", 5)  # 23 rows: windows of 5, 5, 5, 5, 3
    monkeypatch.setattr(labelled_module, "WINDOW_ROWS", 5)
    monkeypatch.setattr(predict_module, "PARQUET_ROW_GROUP", 5)
    assert main([*base, "--output_file", str(folder / "windowed.jsonl")]) == 0
    assert main([*base, "--output_file", str(folder / "windowed.parquet")]) == 0
    whole = [json.loads(line) for line in (folder / "whole.jsonl").read_text().splitlines()]
    assert [row["id"] for row in whole] == [f"u{i}" for i in range(23)]
    parquet = pq.ParquetFile(folder / "windowed.parquet")
    assert parquet.metadata.num_row_groups == 5  # written a row group at a time
    windowed = [json.loads(line) for line in (folder / "windowed.jsonl").read_text().splitlines()]
    for other in (windowed, parquet.read().to_pylist()):  # batches differ, so logits agree to float rounding
        assert [(row["id"], row["label"]) for row in other] == [(row["id"], row["label"]) for row in whole]
        for row, reference in zip(other, whole):
            assert row["probs"] == pytest.approx(reference["probs"], abs=1e-5)
