"""Air-gapped clusters set HF_HUB_OFFLINE=1 and serve their own teacher: a `--server_url` on loopback is not the
Hub, so `dhrd rationales` and `dhrd predict` reach it under offline mode (a real server process, `fake_openai.py`).
A server that reports no token usage still stops at `--max_total_tokens`: its tokens are estimated, and said so."""

import json
import logging

from cli_helpers import dhrd
from conftest import write_rows
from fake_openai import fake_openai, requests
from huggingface_hub import constants

from trainer.cli import main

SECRET = "sk-cluster-secret-0123"


def test_a_teacher_server_on_loopback_answers_under_hub_offline_mode(tmp_path):
    write_rows(tmp_path / "rows.jsonl", 3, ("wet", "dry"))
    out = tmp_path / "out"
    with fake_openai(tmp_path / "requests.jsonl") as url:
        completed = dhrd(
            "rationales", "--train_file", str(tmp_path / "rows.jsonl"), "--rationale_column", "teacher_rationale",
            "--server_url", f"{url}/v1", "--server_model", "cluster-teacher", "--output_dir", str(out),
            env_extra={"HF_HUB_OFFLINE": "1", "OPENAI_API_KEY": SECRET},
        )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    sent = requests(tmp_path / "requests.jsonl")
    assert [(r["path"], r["model"], r["authorization"]) for r in sent] == [
        ("/v1/chat/completions", "cluster-teacher", f"Bearer {SECRET}")
    ] * 3
    assert SECRET not in completed.stdout + completed.stderr  # the token is sent, never logged
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["kept"], summary["completion_tokens"], summary["tokens_estimated"]) == (3, 27, False)
    assert "reports no token usage" not in completed.stderr  # the server reported its usage


def test_a_server_without_usage_stops_at_the_budget_on_estimated_tokens(tmp_path, capsys, caplog):
    caplog.set_level(logging.INFO)
    assert constants.is_offline_mode()  # the suite runs as an air-gapped cluster does
    write_rows(tmp_path / "rows.jsonl", 40, ("wet", "dry"))  # more than one chunk of 32 rows
    out = tmp_path / "out"
    with fake_openai(tmp_path / "requests.jsonl", "--omit_usage") as url:
        code = main(
            ["rationales", "--train_file", str(tmp_path / "rows.jsonl"), "--rationale_column", "teacher_rationale",
             "--server_url", f"{url}/v1", "--server_model", "m", "--output_dir", str(out), "--max_total_tokens", "1"]
        )  # fmt: skip
    stdout = capsys.readouterr().out
    assert code == 0 and "stopped at the token budget" in stdout and "8 rows left" in stdout, stdout
    assert "estimated at ~4 characters a token" in stdout
    assert len(requests(tmp_path / "requests.jsonl")) == 32  # the first chunk, then the budget was spent
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped_at_budget"] and summary["tokens_estimated"] and summary["generated"] == 32
    assert summary["completion_tokens"] > 0 and summary["prompt_tokens"] > 0
    said = [record.getMessage() for record in caplog.records if "reports no token usage" in record.getMessage()]
    assert len(said) == 1 and "estimated" in said[0], said  # said once, not once a row


def test_a_job_started_over_and_stopped_at_its_budget_leaves_no_earlier_output(tmp_path, capsys):
    """`--overwrite` starts over: the earlier job's `rationales.jsonl` goes at once, not when this job finishes (a
    budget stop would otherwise leave it beside this job's summary)."""
    from cli_helpers import dhrd_in_process

    write_rows(tmp_path / "rows.jsonl", 40, ("wet", "dry"))
    out = tmp_path / "out"
    with fake_openai(tmp_path / "requests.jsonl") as url:
        job = ["rationales", "--train_file", str(tmp_path / "rows.jsonl"), "--rationale_column", "teacher_rationale",
               "--server_url", f"{url}/v1", "--server_model", "m", "--output_dir", str(out)]  # fmt: skip
        dhrd_in_process(capsys, *job)
        assert (out / "rationales.jsonl").is_file()
        said = dhrd_in_process(capsys, *job, "--overwrite", "--max_total_tokens", "1")
    assert "stopped at the token budget" in said and not (out / "rationales.jsonl").exists()
