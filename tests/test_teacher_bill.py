"""The teacher's bill up front (`dhrd rationales --dry_run`) and a token budget (`--max_total_tokens`), with a real
local teacher (a tiny random causal LM): the dry run's prompt tokens are what the run then spends, it calls no
teacher and writes nothing; a budget stops cleanly and a rerun finishes exactly once."""

import json

import pytest
from conftest import make_tokenizer, tiny_text_config, write_rows
from transformers import AutoModelForCausalLM

from trainer.cli import main

ROWS = 70  # more than one chunk of 32 rows


@pytest.fixture
def teacher(tmp_path):
    AutoModelForCausalLM.from_config(tiny_text_config("qwen2")).save_pretrained(tmp_path / "teacher")
    make_tokenizer().save_pretrained(tmp_path / "teacher")
    return str(tmp_path / "teacher")


def _dhrd(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _bill(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_the_dry_run_bill_is_what_the_run_spends_and_a_budget_stops_cleanly(tmp_path, teacher, capsys):
    write_rows(tmp_path / "rows.jsonl", ROWS, ("wet", "dry"))
    out = tmp_path / "out"
    job = ["rationales", "--train_file", str(tmp_path / "rows.jsonl"), "--rationale_column", "teacher_rationale",
           "--teacher_model", teacher, "--max_new_tokens", "3", "--output_dir", str(out)]  # fmt: skip

    code, stdout, err = _dhrd(capsys, *job, "--dry_run", "--input_price", "2", "--output_price", "10")
    assert code == 0, err
    bill = _bill(stdout)
    assert (bill["rows"], bill["done"], bill["max_completion_tokens"]) == (ROWS, 0, ROWS * 3)
    assert bill["prompt_tokens_counted"] and bill["expected_completion_tokens"] is None
    cost = (bill["prompt_tokens"] * 2 + ROWS * 3 * 10) / 1e6
    assert f"at most {cost:,.2f}" in stdout
    assert not out.exists()  # no teacher called, nothing written

    code, stdout, err = _dhrd(capsys, *job, "--max_total_tokens", "1")
    assert code == 0, err
    assert "stopped at the token budget" in stdout and f"{ROWS - 32} rows left" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped_at_budget"] and summary["generated"] == 32
    assert not (out / "rationales.jsonl").exists()  # written once every row has its rationale

    code, stdout, err = _dhrd(capsys, *job, "--dry_run")
    assert code == 0, err
    rest = _bill(stdout)
    assert (rest["done"], rest["expected_completion_tokens"] is not None) == (32, True)

    code, stdout, err = _dhrd(capsys, *job, "--dry_run", "--overwrite")  # as the run would: start over
    assert code == 0 and _bill(stdout)["done"] == 0 and _bill(stdout)["prompt_tokens"] == bill["prompt_tokens"], err
    assert len(list(out.glob("shard-*.jsonl"))) == 1  # the dry run removed nothing

    code, stdout, err = _dhrd(capsys, *job)
    assert code == 0, err
    assert f"{ROWS - 32} generated now, 32 already done" in stdout
    summary = json.loads((out / "summary.json").read_text())
    first_prompt_tokens = bill["prompt_tokens"] - rest["prompt_tokens"]
    assert summary["prompt_tokens"] == rest["prompt_tokens"]  # the bill counted what the teacher was sent
    assert first_prompt_tokens > 0
    rows = [json.loads(line) for line in (out / "rationales.jsonl").read_text().splitlines()]
    assert len(rows) == ROWS and len({row["idx"] for row in rows}) == ROWS

    # the job's bill spans both runs: every row's prompt, as the first dry run counted them, and every completion
    records = [json.loads(line) for path in sorted(out.glob("shard-*.jsonl")) for line in path.open()]
    assert summary["job_prompt_tokens"] == bill["prompt_tokens"]
    assert summary["job_completion_tokens"] == sum(record["completion_tokens"] for record in records)
    assert summary["job_completion_tokens"] > summary["completion_tokens"] and not summary["job_tokens_estimated"]
    assert f"the job in all: {bill['prompt_tokens'] + summary['job_completion_tokens']} tokens" in stdout

    # what `dhrd compare` puts beside the gain is that bill, not the last run's share of it
    from trainer.cli.compare import CompareArguments, _teacher_bill
    from trainer.data.description import DatasetArguments

    described = DatasetArguments(train_file=str(out / "rationales.jsonl"))
    read = _teacher_bill(described, CompareArguments(input_price=2, output_price=10))
    assert (read["prompt_tokens"], read["completion_tokens"]) == (
        summary["job_prompt_tokens"],
        summary["job_completion_tokens"],
    )
    assert read["cost"] == round((read["prompt_tokens"] * 2 + read["completion_tokens"] * 10) / 1e6, 4)
    _dhrd(capsys, *job)  # a rerun with nothing left to do spends nothing, and the job's bill stands
    again = json.loads((out / "summary.json").read_text())
    assert again["completion_tokens"] == 0 and again["job_completion_tokens"] == summary["job_completion_tokens"]


def test_rows_an_older_version_finished_make_the_jobs_prompt_total_a_lower_bound(tmp_path, teacher, capsys):
    """Records written before each row kept its prompt count: the job's prompt tokens leave those rows out, and the
    summary says how many (never an estimate it did not make)."""
    write_rows(tmp_path / "rows.jsonl", 40, ("wet", "dry"))
    out = tmp_path / "out"
    job = ["rationales", "--train_file", str(tmp_path / "rows.jsonl"), "--rationale_column", "teacher_rationale",
           "--teacher_model", teacher, "--max_new_tokens", "3", "--output_dir", str(out)]  # fmt: skip
    assert _dhrd(capsys, *job, "--max_total_tokens", "1")[0] == 0  # the first chunk of 32 rows, then a stop
    (shard,) = out.glob("shard-*.jsonl")
    older = [json.loads(line) for line in shard.read_text().splitlines()]
    for record in older:  # as the older version wrote them
        del record["prompt_tokens"], record["tokens_estimated"]
    shard.write_text("".join(json.dumps(record) + "\n" for record in older))
    code, stdout, err = _dhrd(capsys, *job)
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["job_rows_without_prompt_count"] == 32 and not summary["job_tokens_estimated"]
    assert summary["job_prompt_tokens"] == summary["prompt_tokens"]  # the 8 rows counted now, no more
    assert "the job in all: at least" in stdout and "32 rows an older version finished" in stdout, stdout


def test_a_server_bill_is_estimated_without_calling_it(tmp_path, capsys):
    write_rows(tmp_path / "rows.jsonl", 5, ("wet", "dry"))
    code, stdout, err = _dhrd(
        capsys, "rationales", "--train_file", str(tmp_path / "rows.jsonl"), "--rationale_column", "r",
        "--server_url", "http://127.0.0.1:9/v1", "--server_model", "big-teacher", "--output_dir", str(tmp_path / "o"),
        "--dry_run",
    )  # fmt: skip
    assert code == 0, err
    assert "~4 characters a token" in stdout and not _bill(stdout)["prompt_tokens_counted"]
    assert _bill(stdout)["prompt_tokens"] > 0 and not (tmp_path / "o").exists()


def test_prices_come_in_pairs(tmp_path, capsys):
    code, _, err = _dhrd(capsys, "rationales", "--train_file", "x.jsonl", "--output_dir", str(tmp_path), "--dry_run",
                         "--input_price", "1")  # fmt: skip
    assert code != 0 and "Give both --input_price and --output_price" in err
