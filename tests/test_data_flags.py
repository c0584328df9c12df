"""Every subcommand takes the whole data description (write it once, README); each of its flags is honoured where it
can act, or refused in one line where it contradicts the model. The table below runs each subcommand with each cap
on each split it reads and counts the rows it touched; then the flags a model can contradict."""

import json

import pytest
from conftest import make_tokenizer, tiny_dhrd, tiny_text_config, write_rows
from transformers import AutoModelForCausalLM

from trainer.cli import main

ROWS, CAP = 10, 3
CAPS = {"--max_train_samples": "train", "--max_eval_samples": "validation", "--max_predict_samples": "test"}


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    folder = tmp_path_factory.mktemp("flags")
    write_rows(folder / "rows.jsonl", ROWS, ("wet", "dry"))
    tiny_dhrd("qwen2", num_labels=2, id2label={0: "wet", 1: "dry"}).save_pretrained(folder / "classifier")
    make_tokenizer().save_pretrained(folder / "classifier")
    AutoModelForCausalLM.from_config(tiny_text_config("qwen2")).save_pretrained(folder / "teacher")
    make_tokenizer().save_pretrained(folder / "teacher")
    files = ("--train_file", "--validation_file", "--test_file")
    description = [argument for flag in files for argument in (flag, str(folder / "rows.jsonl"))]
    return folder, description


def _dhrd(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, (captured.err.strip().splitlines() or [""])[-1]


def _rows_touched(command: str, split: str, flags: list[str], folder, description, capsys, tmp_path) -> int:
    """Run `command` on `split` and count the rows it read, scored, predicted or sent to the teacher."""
    out = tmp_path / f"{command}-{split}-{'-'.join(flags)}"
    if command == "rationales":
        argv = [
            "rationales",
            "--teacher_model",
            str(folder / "teacher"),
            "--max_new_tokens",
            "2",
            "--output_dir",
            out,
            "--rationale_column",
            "teacher_rationale",
        ]
    elif command == "evaluate":
        argv = ["evaluate", "--model", str(folder / "classifier")]
    elif command == "explain":
        argv = [
            "explain",
            "--model",
            str(folder / "classifier"),
            "--output_file",
            f"{out}.jsonl",
            "--max_new_tokens",
            "2",
        ]
    else:
        argv = ["predict", "--model", str(folder / "classifier"), "--output_file", f"{out}.jsonl"]
    code, stdout, line = _dhrd(capsys, *map(str, argv), "--split", split, *description, *flags)
    assert code == 0, line
    if command == "rationales":
        return len((out / "rationales.jsonl").read_text().splitlines())
    if command == "evaluate":
        return json.loads(stdout.strip().splitlines()[-1])["rows"]
    return len(open(f"{out}.jsonl").read().splitlines())


@pytest.mark.parametrize("command", ["rationales", "evaluate", "predict", "explain"])
def test_a_split_cap_holds_wherever_its_split_is_read(command, setting, capsys, tmp_path):
    folder, description = setting
    for flag, capped in CAPS.items():
        for split in ("train", "validation", "test"):
            expected = CAP if split == capped else ROWS  # a cap concerns its own split only
            touched = _rows_touched(command, split, [flag, str(CAP)], folder, description, capsys, tmp_path)
            assert touched == expected, (command, flag, split)
    assert _rows_touched(command, "train", ["--max_train_samples", "5", "--limit", "2"], folder, description,
                         capsys, tmp_path) == 2  # fmt: skip  # the smaller of --limit and the cap


def test_dhrd_train_trains_and_evaluates_on_the_capped_rows(setting, capsys, tmp_path):
    folder, description = setting
    code, _, line = _dhrd(
        capsys, "train", "--model_name_or_path", str(folder / "teacher"), *description, "--lm_weight", "0",
        "--max_train_samples", "4", "--max_eval_samples", "3", "--max_steps", "1", "--report_to", "none",
        "--output_dir", str(tmp_path / "run"), "--save_strategy", "no",
    )  # fmt: skip
    assert code == 0, line
    record = json.loads((tmp_path / "run" / "dhrd_training.json").read_text())
    assert record["preparation"]["train"]["rows"] == 4 and record["preparation"]["eval"]["rows"] == 3


@pytest.mark.parametrize(
    ("flags", "refusal"),
    [
        (["--options_column", "choices"], "drop --options_column"),
        (["--problem_type", "regression"], "regression"),
        (["--label_names", "cold,hot"], "cold"),
    ],
)
@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_a_flag_that_contradicts_the_model_is_refused_in_one_line(command, flags, refusal, setting, capsys, tmp_path):
    folder, description = setting
    output = ["--output_file", str(tmp_path / "p.jsonl")] if command == "predict" else []
    code, _, line = _dhrd(capsys, command, "--model", str(folder / "classifier"), *description, *output, *flags)
    assert code != 0 and line.startswith(f"dhrd {command}: error: ") and refusal in line, line
    assert not (tmp_path / "p.jsonl").exists()
