"""Publishing: `DHRDTrainer.push_to_hub()` and `dhrd export --push_to_hub` (Hub stand-in on loopback) upload the DHRD
model card, read back with `huggingface_hub.ModelCard.load`; no token reaches any written file or log."""

import json
import os
import subprocess
import sys

import pytest
from cli_helpers import dhrd, fake_hub
from conftest import PROJECT_ROOT, write_rows
from huggingface_hub import ModelCard

from modeling_dhrd.atomic import _umask

SECRETS = {"HF_TOKEN": "hf_env_secret_1234", "OPENAI_API_KEY": "sk-openai-secret-5678"}
CLI_TOKEN = "hf_flag_secret_9012"

PUSH_SCRIPT = """
import sys
sys.path.insert(0, "tests")
from conftest import make_tokenizer, tiny_dhrd
from datasets import Dataset
from trainer import DHRDTrainer, DHRDTrainingArguments

rows = [{"text": f"row {i} " * (1 + i % 3), "label": i % 3, "rationale": "because " * (1 + i % 2)} for i in range(8)]
args = DHRDTrainingArguments(
    output_dir=sys.argv[1], max_steps=2, per_device_train_batch_size=4, report_to=[], use_cpu=True, seed=0,
    eval_strategy="steps", eval_steps=2, save_strategy="no", hub_model_id="me/tiny-dhrd", hub_token=sys.argv[2],
)
trainer = DHRDTrainer(
    model=tiny_dhrd("llama", num_labels=3, id2label={0: "low", 1: "mid", 2: "high"}), args=args,
    train_dataset=Dataset.from_list(rows), eval_dataset=Dataset.from_list(rows), processing_class=make_tokenizer(),
)
trainer.train()
trainer.push_to_hub(dataset_name="me/tickets")
print("EVAL", [log["eval_accuracy"] for log in trainer.state.log_history if "eval_accuracy" in log][-1])
print("pushed")
"""


def _assert_no_secret(folders, *logs: str) -> None:
    secrets = [*SECRETS.values(), CLI_TOKEN]
    for text in logs:
        assert not any(secret in text for secret in secrets)
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert not any(secret.encode() in data for secret in secrets), path


def test_trainer_push_to_hub_publishes_the_dhrd_card(tmp_path):
    with fake_hub(tmp_path / "hub") as hub_env:
        env = {key: value for key, value in {**os.environ, **hub_env, **SECRETS}.items() if value}
        completed = subprocess.run(
            [sys.executable, "-c", PUSH_SCRIPT, str(tmp_path / "run"), CLI_TOKEN],
            capture_output=True, text=True, env=env, cwd=PROJECT_ROOT, timeout=300,
        )  # fmt: skip
    assert completed.returncode == 0 and "pushed" in completed.stdout, completed.stderr[-3000:]
    card = ModelCard.load(tmp_path / "hub" / "files" / "README.md")
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "text-classification"
    assert "dhrd" in card.data.tags and card.data.datasets == ["me/tickets"]
    results = {result.metric_type: result for result in card.data.eval_results}
    assert {"accuracy", "macro_f1"} <= set(results)
    evaluated = float(completed.stdout.split("EVAL ")[1].split()[0])
    assert results["accuracy"].metric_value == pytest.approx(evaluated)
    assert results["accuracy"].dataset_name == "me/tickets" and card.data.model_name == "tiny-dhrd"
    assert "`low`, `mid`, `high`" in card.text and "trust_remote_code=True" in card.text
    assert (tmp_path / "hub" / "files" / "training_args.bin").is_file()
    pushed_config = json.loads((tmp_path / "hub" / "files" / "config.json").read_text())
    assert pushed_config["input_contract"]["input_format"] == {"text_column": "text"}  # push_to_hub carries it
    assert "## Input" in card.text
    _assert_no_secret([tmp_path / "run", tmp_path / "hub"], completed.stdout, completed.stderr)


def test_cli_train_export_push_writes_no_secret(tmp_path, tiny_backbone_dir):
    write_rows(tmp_path / "train.jsonl", 12, ("wet", "dry"))
    run = tmp_path / "run"
    trained = dhrd(
        "train", "--model_name_or_path", str(tiny_backbone_dir), "--train_file", str(tmp_path / "train.jsonl"),
        "--validation_file", str(tmp_path / "train.jsonl"), "--output_dir", str(run), "--max_steps", "1",
        "--report_to", "none", "--hub_token", CLI_TOKEN, "--save_strategy", "steps", "--save_steps", "1",
        env_extra=SECRETS,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    with fake_hub(tmp_path / "hub") as hub_env:
        pushed = dhrd(
            "export", "--model", str(run), "--output_dir", str(tmp_path / "exported"), "--push_to_hub", "me/wet-dry",
            env_extra={**hub_env, **SECRETS},
        )  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr[-3000:]
    card = ModelCard.load(tmp_path / "hub" / "files" / "README.md")
    assert card.data.base_model is None  # a local backbone folder is no Hub id
    assert {r.metric_type for r in card.data.eval_results} >= {"accuracy", "macro_f1"}
    assert "dhrd" in card.data.tags and 'pipeline("text-classification", model="me/wet-dry")' in card.text
    log = (tmp_path / "hub" / "requests.log").read_text()
    assert "auth=True" in log  # the token from the environment was used, and still never written
    _assert_no_secret([run, tmp_path / "exported", tmp_path / "hub"], trained.stdout, trained.stderr, pushed.stdout)
    assert oct((run / "model.safetensors").stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    assert oct((tmp_path / "exported" / "model.safetensors").stat().st_mode & 0o777) == oct(0o666 & ~_umask())
