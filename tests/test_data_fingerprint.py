"""A resumable job's manifest records its data's content, not only the file's path: a data file edited between a
kill and a rerun would otherwise attach old results to other rows (ids are row positions when the data has no id
column). A rerun on a changed file is refused in one line naming the file; the same content resumes, even when the
file was touched or rewritten as it was (the fingerprint is the size and a hash of the first and last MiB, not the
modification time). Servers are real processes on loopback (`fake_openai.py`)."""

import json
import logging
import os
from pathlib import Path

from conftest import make_tokenizer, tiny_dhrd, write_rows
from datasets import Dataset, load_from_disk
from fake_openai import fake_openai, requests

from trainer.cli import main
from trainer.cli.predict import parts_folder


def _dhrd(capsys, *argv: str) -> tuple[int, str, str]:
    """`dhrd` in this process: exit code, stdout, last stderr line."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, (captured.err.strip().splitlines() or [""])[-1]


def _touch_later(path: Path) -> None:
    """The same bytes with a later modification time (as an editor's save without changes, or `touch`)."""
    stat = path.stat()
    path.write_bytes(path.read_bytes())
    os.utime(path, (stat.st_atime + 60, stat.st_mtime + 60))


def _assert_refused_naming(line: str, path: Path) -> None:
    assert line.startswith("dhrd ") and ": error: " in line, line
    assert str(path.resolve()) in line and "changed" in line and "--overwrite" in line, line


def test_predict_refuses_parts_of_a_changed_file_and_resumes_the_same_content(tmp_path, capsys, caplog):
    caplog.set_level(logging.INFO)
    model = tmp_path / "model"
    tiny_dhrd("qwen2", num_labels=2, id2label={0: "no", 1: "yes"}).save_pretrained(model)
    make_tokenizer().save_pretrained(model)
    rows = tmp_path / "rows.jsonl"  # no id column: a row's id is its position
    rows.write_text("".join(json.dumps({"text": f"row number {i}"}) + "\n" for i in range(10)))
    original = rows.read_bytes()
    output = tmp_path / "out.jsonl"
    predict = ["predict", "--model", str(model), "--test_file", str(rows), "--output_file", str(output),
               "--server_batch_size", "2", "--concurrency", "1", "--retries", "0"]  # fmt: skip

    with fake_openai(tmp_path / "failing.jsonl", "--classify_fail_after", "2") as url:
        code, _, line = _dhrd(capsys, *predict, "--server_url", url)
    assert code == 1 and "400" in line, line  # stopped mid-way: 2 answered requests (4 rows) stay in the parts
    parts = parts_folder(output)
    snapshot = {shard.name: shard.read_bytes() for shard in parts.glob("shard-*.jsonl")}
    assert sum(data.count(b"\n") for data in snapshot.values()) == 4

    rows.write_text("".join(json.dumps({"text": f"another row {i}"}) + "\n" for i in reversed(range(10))))
    with fake_openai(tmp_path / "refused.jsonl") as url:
        code, _, line = _dhrd(capsys, *predict, "--server_url", url)
    assert code == 1
    _assert_refused_naming(line, rows)
    assert requests(tmp_path / "refused.jsonl") == [] and not output.exists()
    assert {shard.name: shard.read_bytes() for shard in parts.glob("shard-*.jsonl")} == snapshot

    rows.write_bytes(original)
    _touch_later(rows)
    with fake_openai(tmp_path / "resumed.jsonl") as url:
        code, out, line = _dhrd(capsys, *predict, "--server_url", url)
    assert code == 0, line
    assert "Resuming: 4 of 10 rows already predicted" in caplog.text
    assert len(requests(tmp_path / "resumed.jsonl")) == 3  # the 6 rows left, 2 a request
    assert [json.loads(line)["idx"] for line in output.read_text().splitlines()] == list(range(10))


def test_rationales_refuse_a_changed_file_and_resume_a_touched_one(tmp_path, capsys):
    rows = write_rows(tmp_path / "rows.jsonl", 40, ("wet", "dry"))  # no id column: ids are positions
    original = rows.read_bytes()
    job = ["rationales", "--train_file", str(rows), "--rationale_column", "teacher_rationale",
           "--server_model", "m", "--output_dir", str(tmp_path / "out")]  # fmt: skip
    with fake_openai(tmp_path / "requests.jsonl") as url:
        code, out, line = _dhrd(capsys, *job, "--server_url", f"{url}/v1", "--max_total_tokens", "1")
        assert code == 0 and "8 rows left" in out, (out, line)  # the first chunk of 32 rows is done

        write_rows(rows, 40, ("wet", "dry"), seed=1)  # other rows at the same positions
        for extra in ([], ["--dry_run"]):  # the dry run checks as the run would
            code, _, line = _dhrd(capsys, *job, "--server_url", f"{url}/v1", *extra)
            assert code == 1
            _assert_refused_naming(line, rows)
        assert len(requests(tmp_path / "requests.jsonl")) == 32  # nothing sent for the changed file

        rows.write_bytes(original)
        _touch_later(rows)
        code, out, line = _dhrd(capsys, *job, "--server_url", f"{url}/v1")
    assert code == 0 and "8 generated now, 32 already done" in out, (out, line)


def test_the_fingerprint_follows_the_content_not_the_modification_time(tmp_path):
    from trainer.jobs.fingerprint import SAMPLE_BYTES_DATA, data_content

    big = tmp_path / "big.jsonl"
    body = bytearray(b"x" * (3 * SAMPLE_BYTES_DATA))
    big.write_bytes(body)
    first = data_content(str(big), str(big), None)
    assert first["content_of"] == str(big.resolve()) and first["size"] == len(body)
    _touch_later(big)
    assert data_content(str(big), str(big), None) == first
    for offset in (10, len(body) - 10):  # an edit in the first or the last MiB, the size unchanged
        changed = bytearray(body)
        changed[offset] = ord("y")
        big.write_bytes(changed)
        assert data_content(str(big), str(big), None) != first

    saved = tmp_path / "saved"  # a `save_to_disk` folder: the loaded split's `datasets` fingerprint
    Dataset.from_list([{"text": "a", "label": 0}]).save_to_disk(saved)
    content = data_content("saved [train]", None, load_from_disk(saved))
    assert content == data_content("saved [train]", None, load_from_disk(saved))
    Dataset.from_list([{"text": "b", "label": 1}]).save_to_disk(tmp_path / "other")
    assert data_content("saved [train]", None, load_from_disk(tmp_path / "other")) != content
