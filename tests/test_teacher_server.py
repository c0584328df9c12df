"""The server teacher against a real OpenAI-compatible server on loopback: vLLM serving the embedded SmolLM2.

A client killed mid-run and rerun, and a server killed mid-run and restarted, both end with every id exactly once.
"""

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import dhrd
from conftest import DATA_DIR, requires_data
from serving import RequestGate, VllmServer, serving_env, serving_python

from trainer.teachers.generate import FILTER_REASONS

pytestmark = pytest.mark.serving

ROWS = 20
STATUSES = ("kept", *FILTER_REASONS)


@pytest.fixture(scope="module")
def teacher_server(smollm2_path, tmp_path_factory):
    server = VllmServer(smollm2_path, tmp_path_factory.mktemp("vllm-teacher"), "smollm2", ("--dtype", "bfloat16"))
    server.start()
    yield server
    server.kill()


def _client(base_url: str, output_dir: Path, concurrency: int = 1, task: str = "copa") -> subprocess.Popen:
    """`dhrd rationales` as a separate process, offline as an air-gapped cluster is (the server is not the Hub)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [
        sys.executable,
        "-m",
        "trainer.cli",
        "rationales",
        "--task",
        task,
        "--split",
        "train",
        "--data_dir",
        str(DATA_DIR),
        "--limit",
        str(ROWS),
        "--server_url",
        f"{base_url}/v1",
        "--server_model",
        "smollm2",
        "--output_dir",
        str(output_dir),
        "--concurrency",
        str(concurrency),
        "--max_new_tokens",
        "96",
        "--timeout",
        "30",
        "--retries",
        "10",
    ]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _complete_lines(output_dir: Path) -> list[dict]:
    lines = []
    for shard in sorted(output_dir.glob("shard-*.jsonl")):
        lines += [json.loads(line) for line in shard.read_text().splitlines(keepends=True) if line.endswith("\n")]
    return lines


def _wait_for_lines(output_dir: Path, count: int, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(_complete_lines(output_dir)) < count:
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the client produced too few rows"
        time.sleep(0.05)


def _assert_every_id_once(output_dir: Path) -> None:
    ids = [record["id"] for record in _complete_lines(output_dir)]
    assert sorted(ids, key=int) == [str(i) for i in range(ROWS)], ids  # exactly once each, none missing
    final = [json.loads(line) for line in (output_dir / "rationales.jsonl").read_text().splitlines()]
    assert [row["idx"] for row in final] == list(range(ROWS))
    summary = json.loads((output_dir / "summary.json").read_text())
    assert summary["rows"] == ROWS and summary["kept"] + sum(summary["filtered"].values()) == ROWS


@pytest.fixture
def gate(teacher_server):
    """Lets the client's first requests through to the server, then holds it: 'mid-run' is exact, not a race."""
    gates = []

    def make(allow: int) -> RequestGate:
        gates.append(RequestGate(teacher_server.base_url, allow))
        return gates[-1]

    yield make
    for each in gates:
        each.close()


def test_client_killed_mid_run_resumes_with_every_id_exactly_once(teacher_server, gate, tmp_path):
    requires_data("superglue", "COPA")
    first_gate = gate(allow=5)
    first = _client(first_gate.base_url, tmp_path)
    first_gate.wait_until_holding()
    _wait_for_lines(tmp_path, 5, first)
    first.kill()
    first.wait()
    assert len(_complete_lines(tmp_path)) == 5
    second = _client(teacher_server.base_url, tmp_path)
    stdout, stderr = second.communicate(timeout=300)
    assert second.returncode == 0, stderr[-3000:]
    assert f"{ROWS - 5} generated now, 5 already done" in stdout
    _assert_every_id_once(tmp_path)
    assert len(list(tmp_path.glob("shard-*.jsonl"))) == 2  # the rerun appended to a shard of its own


def test_server_killed_mid_run_is_retried_until_the_job_completes(teacher_server, gate, tmp_path):
    requires_data("superglue", "COPA")
    proxy = gate(allow=3)
    client = _client(proxy.base_url, tmp_path)
    proxy.wait_until_holding()
    _wait_for_lines(tmp_path, 3, client)
    teacher_server.kill()
    proxy.open()  # the held request now meets a dead server
    time.sleep(2)
    assert client.poll() is None  # the client waits and retries instead of failing
    teacher_server.start()
    _, stderr = client.communicate(timeout=400)
    assert client.returncode == 0, stderr[-3000:]
    assert "retry" in stderr  # it did have to retry
    _assert_every_id_once(tmp_path)


def test_rte_rationales_from_the_server(teacher_server, tmp_path):
    requires_data("superglue", "RTE")
    client = _client(teacher_server.base_url, tmp_path, concurrency=4, task="rte")
    stdout, stderr = client.communicate(timeout=300)
    assert client.returncode == 0, stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "rationales.jsonl").read_text().splitlines()]
    assert len(rows) == ROWS and all(row["rationale_status"] in STATUSES for row in rows)
    assert sum(row["rationale"] is not None for row in rows) >= ROWS // 2  # most rows get a usable rationale


def _claims(folder: Path) -> tuple[str, ...]:
    """A user's CSV of claims, with two text columns and string labels; the data flags that describe it.

    Eight different rows: what a 135M teacher writes for one prompt differs between CPUs (bf16 kernels), and on some
    a row is filtered (restated, contradicted, cut at the token cap); 2 prompts repeated left 0 rows kept on one CI
    machine. The tests ask for the pipeline to work, and for the teacher to explain at least one row."""
    facts = [
        ("Ice is cold.", "Ice is frozen water.", "supported"),
        ("Fish climb trees.", "Fish have fins.", "refuted"),
        ("The sun is hot.", "The sun is a burning star.", "supported"),
        ("Cats can fly.", "Cats have no wings.", "refuted"),
        ("Rain is wet.", "Rain is falling water.", "supported"),
        ("Stones float.", "Stones are heavier than water.", "refuted"),
        ("Birds lay eggs.", "Hens are birds that lay eggs.", "supported"),
        ("Snow is warm.", "Snow is frozen water.", "refuted"),
    ]
    rows = [["id", "claim", "evidence", "verdict"], *([f"c{i}", *fact] for i, fact in enumerate(facts))]
    with open(folder / "claims.csv", "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    description = "a claim and evidence: does the evidence support the claim"
    return ("--train_file", str(folder / "claims.csv"), "--text_columns", "claim,evidence",
            "--label_column", "verdict", "--task_description", description)  # fmt: skip


def test_vllm_run_batch_answers_a_write_batch_file_as_the_server_does(teacher_server, smollm2_path, tmp_path):
    """`--write_batch` → vLLM's `run-batch` (the OpenAI Batch API's file format, the embedded teacher) →
    `--read_batch`: the same `rationales.jsonl` columns and statuses as the online path, and the usage vLLM
    reported."""
    data = _claims(tmp_path)
    teacher = ("--server_model", "smollm2", "--max_new_tokens", "128")
    online = dhrd("rationales", *data, *teacher, "--output_dir", str(tmp_path / "online"),
                  "--server_url", f"{teacher_server.base_url}/v1", "--concurrency", "4")  # fmt: skip
    assert online.returncode == 0, online.stderr[-3000:]
    batch = (*data, *teacher, "--output_dir", str(tmp_path / "batch"))
    written = dhrd("rationales", *batch, "--write_batch", str(tmp_path / "requests.jsonl"))
    assert written.returncode == 0 and "wrote 8 requests" in written.stdout, written.stderr[-3000:]
    run_batch = subprocess.run(
        [serving_python(), "-m", "vllm.entrypoints.openai.run_batch", "-i", str(tmp_path / "requests.jsonl"),
         "-o", str(tmp_path / "results.jsonl"), "--model", str(smollm2_path), "--served-model-name", "smollm2",
         "--dtype", "bfloat16", "--max-model-len", "2048", "--enforce-eager"],
        env=serving_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run_batch.returncode == 0, run_batch.stdout[-3000:] + run_batch.stderr[-3000:]
    read = dhrd("rationales", *batch, "--read_batch", str(tmp_path / "results.jsonl"))
    assert read.returncode == 0 and "8 generated now" in read.stdout, read.stderr[-3000:]
    rows = {name: _lines(tmp_path / name / "rationales.jsonl") for name in ("online", "batch")}
    assert [list(row) for row in rows["batch"]] == [list(row) for row in rows["online"]]  # same columns, same order
    assert [row["id"] for row in rows["batch"]] == [f"c{i}" for i in range(8)]
    statuses = [row["rationale_status"] for row in rows["batch"]]
    assert set(statuses) <= set(STATUSES) and statuses.count("kept") >= 1, statuses
    assert [row["rationale"] is not None for row in rows["batch"]] == [status == "kept" for status in statuses]
    summary = json.loads((tmp_path / "batch" / "summary.json").read_text())
    assert summary["completion_tokens"] > 0 and summary["prompt_tokens"] > 0 and not summary["tokens_estimated"]


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_own_csv_through_the_server_teacher_to_predictions(teacher_server, tmp_path, tiny_backbone_dir):
    """A user's CSV with two text columns and string labels: rationales from the served teacher, training, and
    predictions, all through the command line."""
    data = _claims(tmp_path)
    generated = dhrd(
        "rationales", *data, "--output_dir", str(tmp_path / "r"), "--server_url", f"{teacher_server.base_url}/v1",
        "--server_model", "smollm2", "--max_new_tokens", "128", "--concurrency", "4",
    )  # fmt: skip
    assert generated.returncode == 0, generated.stderr[-3000:]
    explained = [json.loads(line) for line in (tmp_path / "r" / "rationales.jsonl").read_text().splitlines()]
    assert [row["id"] for row in explained] == [f"c{i}" for i in range(8)]
    statuses = [row["rationale_status"] for row in explained]
    assert set(statuses) <= set(STATUSES), statuses
    assert [row["rationale"] is not None for row in explained] == [status == "kept" for status in statuses], explained
    assert statuses.count("kept") >= 1, statuses
    train_data = ("--train_file", str(tmp_path / "r" / "rationales.jsonl"), *data[2:])
    trained = dhrd(
        "train", "--model_name_or_path", str(tiny_backbone_dir), *train_data, "--output_dir", str(tmp_path / "run"),
        "--max_steps", "2", "--per_device_train_batch_size", "4", "--report_to", "none", "--save_strategy", "no",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    predicted = dhrd(
        "predict", "--model", str(tmp_path / "run"), "--test_file", str(tmp_path / "claims.csv"),
        "--output_file", str(tmp_path / "p.jsonl"),
    )  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    predictions = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [p["id"] for p in predictions] == [f"c{i}" for i in range(8)]
    assert [sorted(p["probs"]) for p in predictions] == [["refuted", "supported"]] * 8, predictions
