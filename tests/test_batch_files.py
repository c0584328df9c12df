"""The teacher through batch files: `dhrd rationales --write_batch` writes OpenAI Batch API requests (the bodies the
online path posts), `--read_batch` turns the provider's output file into the `rationales.jsonl` and summary the
online path writes; rows missing or errored in the file stay to do and are the only ones the next requests file
asks for. Results for another job are refused in one line. (vLLM's `run-batch` on the embedded teacher: the serving
suite.)"""

import json
from pathlib import Path

import pytest
from cli_helpers import dhrd_in_process, refusal_in_process
from conftest import write_rows
from fake_openai import batch_output, fake_openai, requests

from trainer.teachers.batch_files import BatchResults, custom_id, job_digest


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def data(tmp_path) -> tuple[str, ...]:
    write_rows(tmp_path / "rows.jsonl", 6, ("wet", "dry"))
    return "rationales", "--train_file", str(tmp_path / "rows.jsonl"), "--rationale_column", "teacher_rationale"


def test_a_batch_round_trip_writes_what_the_online_path_writes(tmp_path, capsys, data):
    with fake_openai(tmp_path / "online.jsonl") as url:
        dhrd_in_process(capsys, *data, "--server_url", f"{url}/v1", "--server_model", "teacher",
                        "--output_dir", str(tmp_path / "online"))  # fmt: skip
    batch = ("--server_model", "teacher", "--output_dir", str(tmp_path / "batch"))
    said = dhrd_in_process(capsys, *data, *batch, "--write_batch", str(tmp_path / "requests.jsonl"),
                           "--input_price", "1", "--output_price", "2")  # fmt: skip
    assert "wrote 6 requests" in said and "cost at 1 in / 2 out" in said, said
    written = _lines(tmp_path / "requests.jsonl")
    row_ids, digests = zip(*(line["custom_id"].rsplit("@", 1) for line in written))
    assert row_ids == tuple(str(i) for i in range(6)) and len(set(digests)) == 1  # the row ids (positions), the job
    assert {(line["method"], line["url"]) for line in written} == {("POST", "/v1/chat/completions")}
    sent = [entry["body"] for entry in requests(tmp_path / "online.jsonl")]
    assert sorted(json.dumps(line["body"], sort_keys=True) for line in written) == sorted(
        json.dumps(body, sort_keys=True) for body in sent
    )  # the online path's requests, to the byte

    results = batch_output(tmp_path / "requests.jsonl", tmp_path / "results.jsonl", errored=("1",), missing=("4",))
    said = dhrd_in_process(capsys, *data, *batch, "--read_batch", str(results))
    assert "4 kept" in said and "2 rows have no rationale yet" in said and "2 rows without an answer" in said, said
    assert not (tmp_path / "batch" / "rationales.jsonl").exists()  # waits for every row, as after a budget stop
    unanswered = {row["id"]: row["reason"] for row in _lines(tmp_path / "batch" / "batch_unanswered.jsonl")}
    assert unanswered == {"1": "error: the model is overloaded", "4": "not in the results file"}

    said = dhrd_in_process(capsys, *data, *batch, "--write_batch", str(tmp_path / "again.jsonl"))
    assert "wrote 2 requests" in said and "4 of 6 already done" in said, said
    assert [line["custom_id"] for line in _lines(tmp_path / "again.jsonl")] == [f"{i}@{digests[0]}" for i in (1, 4)]
    again = batch_output(tmp_path / "again.jsonl", tmp_path / "again-results.jsonl")
    said = dhrd_in_process(capsys, *data, *batch, "--read_batch", str(again))
    assert "6 kept" in said and "2 generated now, 4 already done" in said, said
    assert (tmp_path / "batch" / "rationales.jsonl").read_text() == (
        tmp_path / "online" / "rationales.jsonl"
    ).read_text()
    assert not (tmp_path / "batch" / "batch_unanswered.jsonl").exists()
    online, last = (json.loads((tmp_path / name / "summary.json").read_text()) for name in ("online", "batch"))
    assert (last["kept"], last["filtered"], last["left"]) == (online["kept"], online["filtered"], 0)
    assert last["completion_tokens"] == 2 * online["completion_tokens"] // 6  # the usage the provider reported
    # the job's bill over both result files is the online run's, to the token
    assert (last["job_prompt_tokens"], last["job_completion_tokens"]) == (
        online["prompt_tokens"],
        online["completion_tokens"],
    )


def test_results_for_another_job_or_other_rows_are_refused_in_one_line(tmp_path, capsys, data):
    batch = ("--server_model", "teacher", "--output_dir", str(tmp_path / "batch"))
    dhrd_in_process(capsys, *data, *batch, "--write_batch", str(tmp_path / "requests.jsonl"))
    results = batch_output(tmp_path / "requests.jsonl", tmp_path / "results.jsonl")
    (tmp_path / "prompt.txt").write_text("Explain {input} as {answer}. {sentinel}")
    error = refusal_in_process(capsys, *data, *batch, "--read_batch", str(results),
                               "--prompt_template_file", str(tmp_path / "prompt.txt"))  # fmt: skip
    assert "answers requests written for another job" in error and "prompt_template" in error, error
    error = refusal_in_process(capsys, *data, "--server_model", "other", "--output_dir", str(tmp_path / "batch"),
                               "--read_batch", str(results))  # fmt: skip
    assert "written for another job" in error and "served_model" in error, error
    # the second write (another prompt) does not make the first write's answers readable under the second's settings
    dhrd_in_process(capsys, *data, *batch, "--write_batch", str(tmp_path / "second.jsonl"), "--overwrite",
                    "--prompt_template_file", str(tmp_path / "prompt.txt"))  # fmt: skip
    error = refusal_in_process(capsys, *data, *batch, "--read_batch", str(results),
                               "--prompt_template_file", str(tmp_path / "prompt.txt"))  # fmt: skip
    assert "answers requests written for another job" in error and "prompt_template" in error, error
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text(results.read_text().replace("@", "@0000"))  # answers to requests written elsewhere
    error = refusal_in_process(capsys, *data, *batch, "--read_batch", str(foreign))
    assert "answers none of this job's requests" in error, error
    assert not (tmp_path / "batch" / "rationales.jsonl").exists()
    # the answers to this job's requests read into another folder: the same job, the same rationales
    dhrd_in_process(capsys, *data, "--server_model", "teacher", "--output_dir", str(tmp_path / "moved"),
                    "--read_batch", str(results))  # fmt: skip
    assert len(_lines(tmp_path / "moved" / "rationales.jsonl")) == 6
    broken = tmp_path / "broken.jsonl"
    broken.write_text(results.read_text() + "not json\n")
    error = refusal_in_process(capsys, *data, *batch, "--read_batch", str(broken))
    assert f"{broken}: line 7 is not a batch result" in error, error


@pytest.mark.parametrize(
    "flags, message",
    [
        (("--write_batch", "r.jsonl"), "needs --server_model"),
        (("--write_batch", "r.jsonl", "--read_batch", "o.jsonl", "--server_model", "m"), "two steps"),
        (("--read_batch", "o.jsonl", "--server_model", "m", "--server_url", "http://127.0.0.1:1/v1"), "--server_url"),
        (("--write_batch", "r.jsonl", "--server_model", "m", "--dry_run"), "drop --dry_run"),
        (("--write_batch", "r.jsonl", "--server_model", "m", "--max_total_tokens", "9"), "drop --max_total_tokens"),
    ],
)
def test_batch_flags_that_do_not_go_together_are_refused(tmp_path, capsys, data, flags, message):
    error = refusal_in_process(capsys, *data, "--output_dir", str(tmp_path / "out"), *flags)
    assert message in error, error


def test_an_errored_status_without_an_error_object_stays_to_do(tmp_path):
    """OpenAI writes failed requests with `response.status_code` != 200 (and sometimes no `error`)."""
    (tmp_path / "out").mkdir()
    line = {"custom_id": custom_id("a", job_digest({"job": 1})), "response": {"status_code": 500, "body": {}}}
    (tmp_path / "results.jsonl").write_text(json.dumps({**line, "error": None}) + "\n")
    teacher = BatchResults(tmp_path / "results.jsonl", tmp_path / "out", {"job": 1}, "m", 8)
    assert list(teacher.complete_rows(["a"], [[{"role": "user", "content": "q"}]])) == []
    assert teacher.unanswered == {"a": "error: status 500"}
    teacher.close()
