"""The README runs as written: the Python quick start (embedded SmolLM2, LoRA, 4 steps, export), and the own-data
commands on a `text,label` CSV of names."""

import csv
import json
import re
import shlex
import subprocess
import sys

import pytest
from conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow


def test_readme_quick_start_runs(tmp_path, smollm2_path):
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme.split("## Python quick start", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    code += "\nfrom transformers import pipeline\n"
    code += "print(pipeline('text-classification', model='my-classifier')('Is it?'))\n"
    completed = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert (tmp_path / "my-classifier" / "config.json").is_file()
    assert "'label': 'yes'" in completed.stdout or "'label': 'no'" in completed.stdout


def _own_data_commands() -> list[list[str]]:
    """The `dhrd` commands of the README's "Your own data" block, each as its argument list (`"${DATA[@]}"` kept)."""
    section = (PROJECT_ROOT / "README.md").read_text().split("## Your own data", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1).replace("\\\n", " ")
    lines = [line.split("  #")[0] for line in block.splitlines() if line.startswith("dhrd ")]
    return [shlex.split(line)[1:] for line in lines]


def test_readme_own_data_commands_run_on_a_text_label_csv_of_names(tmp_path, tiny_backbone_dir, capsys, monkeypatch):
    """The README's own-data commands, as written, on the plainest user file: `text,label` with label names (a
    `label` column of names once failed at row 0). The teacher is a server on loopback, the backbone a tiny one, the
    epochs two steps; the push is tested in test_hub_card.py."""
    from cli_helpers import dhrd_in_process
    from fake_openai import fake_openai

    monkeypatch.chdir(tmp_path)
    for name, rows in (("tickets", 12), ("valid", 6), ("new_tickets", 5)):
        with open(tmp_path / f"{name}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            for i in range(rows):
                writer.writerow([f"my parcel {i} " + ("was charged twice" if i % 2 else "never came"),
                                 ("billing", "shipping")[i % 2 == 0]])  # fmt: skip
    data = ["--train_file", "tickets.csv", "--validation_file", "valid.csv", "--test_file", "new_tickets.csv"]
    replace = {"--model_name_or_path": str(tiny_backbone_dir), "--num_train_epochs": None, "--push_to_hub": None}
    commands = _own_data_commands()
    assert [command[0] for command in commands] == ["rationales", "train", "evaluate", "export", "predict"]
    with fake_openai(tmp_path / "requests.jsonl") as url:
        replace["--server_url"] = f"{url}/v1"
        for command in commands:
            argv = []
            for arg in command:
                argv += data if arg == "${DATA[@]}" else [arg]
            for flag, value in replace.items():  # the flag's value replaced, or the flag dropped with its value
                if flag in argv:
                    at = argv.index(flag)
                    argv[at : at + 2] = [flag, value] if value else []
            if command[0] == "train":
                argv += ["--max_steps", "2", "--report_to", "none"]
            output = dhrd_in_process(capsys, *argv)
    assert json.loads((tmp_path / "runs" / "tickets" / "config.json").read_text())["id2label"] == {
        "0": "billing", "1": "shipping"
    }  # fmt: skip
    summary = json.loads((tmp_path / "rationales" / "tickets" / "summary.json").read_text())
    assert summary["kept"] == 12
    import pyarrow.parquet as pq

    predictions = pq.read_table(tmp_path / "predictions.parquet").to_pylist()
    assert [row["idx"] for row in predictions] == list(range(5))
    assert {row["label"] for row in predictions} <= {"billing", "shipping"}
    assert "wrote 5 predictions" in output
