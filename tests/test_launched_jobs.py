"""`dhrd predict`, `evaluate` and `explain` under `torchrun --nproc_per_node 2` (gloo, CPU) write what one process
writes: the same rows in the same order, the same labels, probabilities to 1e-6, the same metrics; a job killed
mid-run resumes with one process and ends with every row exactly once."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from cli_helpers import refusal_in_process
from conftest import make_tokenizer, tiny_text_config, write_rows
from serving import free_port
from transformers import AutoModelForCausalLM

from trainer.cli import main
from trainer.cli.predict import parts_folder
from trainer.jobs.shards import complete_records


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A DHRD checkpoint of a tiny Llama (tied embeddings: `explain` decodes with it), and 41 rows to score."""
    folder = tmp_path_factory.mktemp("launched")
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(tiny_text_config("llama")).save_pretrained(folder / "backbone")
    make_tokenizer().save_pretrained(folder / "backbone")
    write_rows(folder / "rows.jsonl", 41, ("wet", "dry", "mild"))  # an odd count: the ranks' shares differ
    assert main(["train", "--model_name_or_path", str(folder / "backbone"), "--train_file", str(folder / "rows.jsonl"),
                 "--output_dir", str(folder / "run"), "--max_steps", "2", "--report_to", "none",
                 "--save_strategy", "no", "--use_cpu"]) == 0  # fmt: skip
    return folder


def _torchrun(*args: str, env_extra: dict | None = None, **popen) -> subprocess.Popen:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(free_port()), "-m", "trainer.cli", *args]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def _two_processes(*args: str) -> str:
    process = _torchrun(*args)
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-4000:]
    return stdout


def _children(pid: int) -> list[int]:
    """The processes `pid` started (torchrun's ranks run in sessions of their own: killing the launcher's process
    group would leave them running)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_predict_evaluate_and_explain_on_two_processes_write_what_one_process_writes(trained, capsys):
    model = ("--model", str(trained / "run"), "--device", "cpu")
    test = ("--test_file", str(trained / "rows.jsonl"), "--batch_size", "3")
    predicted = {}
    for name in ("one", "two"):
        command = ("predict", *model, *test, "--output_file", str(trained / f"{name}.jsonl"))
        if name == "one":
            assert main(list(command)) == 0
        else:
            stdout = _two_processes(*command)
            assert "wrote 41 predictions" in stdout and "rank 1 of 2: its rows are predicted" in stdout, stdout
        predicted[name] = _lines(trained / f"{name}.jsonl")
    assert [(row["idx"], row["label"]) for row in predicted["two"]] == [(i, row["label"]) for i, row in
                                                                         enumerate(predicted["one"])]  # fmt: skip
    for one, two in zip(predicted["one"], predicted["two"]):
        assert one["probs"].keys() == two["probs"].keys()
        assert all(abs(one["probs"][k] - two["probs"][k]) <= 1e-6 for k in one["probs"]), (one, two)
    assert not parts_folder(trained / "two.jsonl").exists()

    scored = {}
    validation = ("--validation_file", str(trained / "rows.jsonl"), "--batch_size", "3")
    for name in ("one", "two"):
        command = ("evaluate", *model, *validation, "--output_file", str(trained / f"metrics-{name}.json"))
        assert main(list(command)) == 0 if name == "one" else "accuracy" in _two_processes(*command)
        scored[name] = json.loads((trained / f"metrics-{name}.json").read_text())
    measured = ("rows", "accuracy", "macro_f1")
    assert [scored["two"][key] for key in measured] == [scored["one"][key] for key in measured], scored
    assert scored["one"]["rows"] == 41

    explained = {}
    asked = ("--least_confident", "7", "--max_new_tokens", "6", "--batch_size", "2")
    for name in ("one", "two"):
        command = ("explain", *model, *test[:2], *asked, "--output_file", str(trained / f"why-{name}.jsonl"))
        assert main(list(command)) == 0 if name == "one" else "explained 7 of 41" in _two_processes(*command)
        explained[name] = _lines(trained / f"why-{name}.jsonl")
    same = ("idx", "label", "rationale", "stated_label", "agrees")
    assert [[row[key] for key in same] for row in explained["two"]] == [
        [row[key] for key in same] for row in explained["one"]
    ]
    assert all(abs(a["confidence"] - b["confidence"]) <= 1e-6 for a, b in zip(explained["one"], explained["two"]))
    capsys.readouterr()


def test_a_killed_two_process_predict_resumes_on_one_process_with_every_row_once(trained, tmp_path, caplog):
    write_rows(tmp_path / "many.jsonl", 3000, ("wet", "dry"), seed=1)  # ~1,500 batches a rank: time to be killed
    output = tmp_path / "p.jsonl"
    command = ("predict", "--model", str(trained / "run"), "--device", "cpu", "--test_file",
               str(tmp_path / "many.jsonl"), "--batch_size", "1", "--output_file", str(output))  # fmt: skip
    job = _torchrun(*command)
    parts, deadline = parts_folder(output), time.monotonic() + 300
    while not any(records for _, _, records in complete_records(parts)) if parts.is_dir() else True:
        assert job.poll() is None, job.communicate()[1][-4000:]
        assert time.monotonic() < deadline, "no rank wrote a prediction"
        time.sleep(0.005)
    for pid in [*_children(job.pid), job.pid]:  # every rank, then the launcher: mid-run
        os.kill(pid, signal.SIGKILL)
    job.communicate()
    done = [record["idx"] for _, _, record in complete_records(parts)]
    assert 0 < len(done) < 3000 and len(done) == len(set(done)) and not output.exists(), len(done)

    caplog.set_level("INFO")
    assert main(list(command)) == 0
    assert f"Resuming: {len(done)} of 3000 rows already predicted" in caplog.text
    assert [row["idx"] for row in _lines(output)] == list(range(3000))  # every row, once, in input order
    assert not parts.exists()


def test_the_local_teacher_on_two_processes_writes_what_one_process_writes(trained, capsys):
    """Each rank generates every other row (batch 1: no padding, so the same tokens); rank 0 writes
    `rationales.jsonl`, `filtered.jsonl` and a summary that counts both ranks' work."""
    data = ("--train_file", str(trained / "rows.jsonl"), "--rationale_column", "teacher_rationale", "--limit", "9")
    teacher = ("--teacher_model", str(trained / "backbone"), "--batch_size", "1", "--max_new_tokens", "8")
    for name in ("one", "two"):
        command = ("rationales", *data, *teacher, "--device", "cpu", "--output_dir", str(trained / f"teacher-{name}"))
        assert main(list(command)) == 0 if name == "one" else "rank 1 of 2" in _two_processes(*command)
    capsys.readouterr()
    one, two = (trained / f"teacher-{name}" for name in ("one", "two"))
    assert (two / "rationales.jsonl").read_text() == (one / "rationales.jsonl").read_text()
    assert (two / "filtered.jsonl").read_text() == (one / "filtered.jsonl").read_text()
    counted = ("rows", "generated", "kept", "filtered", "completion_tokens", "prompt_tokens", "left")
    summaries = [json.loads((folder / "summary.json").read_text()) for folder in (one, two)]
    assert [summaries[0][key] for key in counted] == [summaries[1][key] for key in counted]
    assert summaries[1]["generated"] == 9 and len(list(two.glob("shard-*.jsonl"))) == 2  # a shard a rank


def test_what_runs_in_one_process_is_refused_under_a_launcher(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    write_rows(tmp_path / "rows.jsonl", 3, ("wet", "dry"))
    data = ("rationales", "--train_file", str(tmp_path / "rows.jsonl"), "--output_dir", str(tmp_path / "out"))
    served = ("--server_model", "m", "--server_url", "http://127.0.0.1:9/v1")
    error = refusal_in_process(capsys, *data, *served)
    assert "--server_url runs in one process" in error and "without torchrun" in error, error
    error = refusal_in_process(capsys, *data, "--server_model", "m", "--write_batch", str(tmp_path / "r.jsonl"))
    assert "--write_batch runs in one process" in error, error


def test_two_processes_write_a_multi_label_parquet_as_one_process_does(trained, tmp_path):
    """Launchers × outputs × kinds: a multi-label model with string ids, its parquet output (the kind's schema) from
    two processes equals one process's."""
    rows = [{"id": f"t{i}", "text": " ".join(["rain", "sun", "snow"][: 1 + i % 3]), "label": ["wet", "cold"][: i % 3]}
            for i in range(15)]  # fmt: skip
    (tmp_path / "tags.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    data = ("--train_file", str(tmp_path / "tags.jsonl"), "--test_file", str(tmp_path / "tags.jsonl"),
            "--id_column", "id", "--problem_type", "multi_label_classification")  # fmt: skip
    assert main(["train", "--model_name_or_path", str(trained / "backbone"), *data, "--output_dir",
                 str(tmp_path / "run"), "--max_steps", "2", "--report_to", "none", "--save_strategy", "no",
                 "--lm_weight", "0", "--use_cpu"]) == 0  # fmt: skip
    command = ("predict", "--model", str(tmp_path / "run"), "--device", "cpu", *data, "--batch_size", "2")
    assert main([*command, "--output_file", str(tmp_path / "one.parquet")]) == 0
    _two_processes(*command, "--output_file", str(tmp_path / "two.parquet"))
    one, two = (pq.read_table(tmp_path / f"{name}.parquet") for name in ("one", "two"))
    assert two.schema == one.schema and two.column("id").to_pylist() == [row["id"] for row in rows]
    assert two.column("labels").to_pylist() == one.column("labels").to_pylist()
    for a, b in zip(one.column("probs").to_pylist(), two.column("probs").to_pylist()):
        assert a.keys() == b.keys() and all(abs(a[k] - b[k]) <= 1e-6 for k in a)


def test_a_rank_without_rows_neither_crashes_nor_stalls_the_others(trained, tmp_path):
    """Fewer rows than processes: rank 1 predicts nothing (its empty shard goes before rank 0 reads the parts) and
    decodes nothing (`--least_confident 1`: one rationale, on rank 0). The split's cap holds on every rank as the
    subcommand's `--limit` does (both shorten the split before the ranks share it)."""
    model = ("--model", str(trained / "run"), "--device", "cpu", "--test_file", str(trained / "rows.jsonl"))
    _two_processes("predict", *model, "--limit", "1", "--output_file", str(tmp_path / "one.jsonl"))
    assert [row["idx"] for row in _lines(tmp_path / "one.jsonl")] == [0]
    stdout = _two_processes("explain", *model, "--least_confident", "1", "--max_new_tokens", "4",
                            "--max_predict_samples", "5", "--output_file", str(tmp_path / "why.jsonl"))  # fmt: skip
    (explained,) = _lines(tmp_path / "why.jsonl")
    assert "explained 1 of 5" in stdout and explained["idx"] < 5, stdout


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_the_ranks_split_every_window_into_disjoint_shares_that_cover_it(world_size):
    """Window by window, each rank's rows are the split positions it owns (every N-th), and together they are every
    row once, whatever the windows' boundaries."""
    from trainer.jobs.ranks import Ranks

    ranks = [Ranks(rank, world_size) for rank in range(world_size)]
    start, covered = 0, []
    for count in (5, 1, 0, 8, 3):
        for rank in ranks:
            offsets = rank.in_window(start, count)
            assert all((start + offset) % world_size == rank.rank for offset in offsets)
            covered += [start + offset for offset in offsets]
        start += count
    assert sorted(covered) == list(range(start))
    assert [rank.share(start) for rank in ranks] == [
        len([p for p in covered if p % world_size == r.rank]) for r in ranks
    ]
