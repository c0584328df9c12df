"""Save paths × what the model carries: full fine-tuning, LoRA (the merged model and the adapter folder), every
checkpoint, the early-stopped best checkpoint, `dhrd export` and `DHRDTrainer.push_to_hub` (the Hub stand-in on
loopback) each keep what training decided besides the weights (`configuration_dhrd.TRAINED_STATE`): the input
contract, the tuned thresholds, the class weights and the loss settings; the export keeps what inference reads, and
its tokenizer truncates as trained.

A LoRA run once lost all of it but the loss settings: the merge loads a fresh base model from disk, whose config has
the backbone's defaults, and the export then decided at 0.5 and truncated at the backbone's limit, silently.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import dhrd_in_process, fake_hub
from conftest import PROJECT_ROOT
from transformers import AutoTokenizer

from modeling_dhrd.configuration_dhrd import EXPORTED_STATE, TRAINED_STATE

TOPICS = ("rain", "wind")
WORDS = "sun rain wind snow cloud storm fog hail frost heat calm".split()
MAX_INPUT_LENGTH = 6  # far below the tiny backbone's limit: a tokenizer that forgot it would not truncate
LM_WEIGHT = 0.5  # not the default (1.0)


def _write_multi_label(path: Path, rows: int, offset: int = 0) -> Path:
    """Rows whose labels are the topics their words name; a third name no topic (the empty set)."""
    lines = []
    for index in range(offset, offset + rows):
        words = [WORDS[(index * 3 + k) % len(WORDS)] for k in range(4 + index % 5)]
        labels = [topic for topic in TOPICS if topic in words][: 1 + index % 2] if index % 3 else []
        lines.append(json.dumps({"text": " ".join(words), "label": labels, "rationale": "the words " + words[0]}))
    path.write_text("\n".join(lines) + "\n")
    return path


def _state(folder: Path, names=TRAINED_STATE) -> dict:
    config = json.loads((folder / "config.json").read_text())
    return {name: config.get(name) for name in names}


def _assert_trained_state(state: dict, thresholds: bool = True) -> None:
    assert state["lm_weight"] == LM_WEIGHT and state["cls_weight"] == 1.0
    assert state["input_contract"]["max_input_length"] == MAX_INPUT_LENGTH
    assert state["input_contract"]["truncation_side"] in ("left", "right")
    assert len(state["class_weights"]) == len(TOPICS) and all(w > 0 for w in state["class_weights"])
    if thresholds:
        assert len(state["label_thresholds"]) == len(TOPICS) and all(0 < t < 1 for t in state["label_thresholds"])


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_every_save_path_keeps_what_training_decided(lora, tiny_backbone_dir, tmp_path, capsys):
    train = _write_multi_label(tmp_path / "train.jsonl", 16)
    validation = _write_multi_label(tmp_path / "validation.jsonl", 8, offset=16)
    out = tmp_path / "run"
    dhrd_in_process(
        capsys, "train", "--model_name_or_path", str(tiny_backbone_dir), "--train_file", str(train),
        "--validation_file", str(validation), "--output_dir", str(out), "--max_steps", "4",
        "--per_device_train_batch_size", "4", "--max_length", "64", "--report_to", "none", "--disable_tqdm", "true",
        "--tune_thresholds", "--class_weights", "balanced", "--max_input_length", str(MAX_INPUT_LENGTH),
        "--lm_weight", str(LM_WEIGHT), "--eval_strategy", "steps", "--eval_steps", "1", "--save_strategy", "steps",
        "--save_steps", "1", "--early_stopping_patience", "1", *(("--lora_r", "4") if lora else ()),
    )  # fmt: skip

    trained = _state(out)
    _assert_trained_state(trained)
    if lora:  # the adapter folder carries the run's DHRD config beside adapter_config.json
        assert (out / "adapter" / "adapter_config.json").is_file()
        assert _state(out / "adapter") == trained

    # every checkpoint (thresholds are tuned after training, so no checkpoint has them), the best one included
    checkpoints = sorted(out.glob("checkpoint-*"))
    assert checkpoints
    for checkpoint in checkpoints:
        state = _state(checkpoint)
        _assert_trained_state(state, thresholds=False)
        assert state["label_thresholds"] is None
    trainer_state = json.loads((checkpoints[-1] / "trainer_state.json").read_text())
    assert Path(trainer_state["best_model_checkpoint"]).name in {c.name for c in checkpoints}

    exported = tmp_path / "exported"
    dhrd_in_process(capsys, "export", "--model", str(out), "--output_dir", str(exported))
    assert _state(exported, EXPORTED_STATE) == {name: trained[name] for name in EXPORTED_STATE}
    tokenizer = AutoTokenizer.from_pretrained(exported)
    assert tokenizer.model_max_length == MAX_INPUT_LENGTH
    assert tokenizer.truncation_side == trained["input_contract"]["truncation_side"]
    assert len(tokenizer("sun " * 40, truncation=True)["input_ids"]) == MAX_INPUT_LENGTH


PUSH_SCRIPT = """
import sys
sys.path.insert(0, "tests")
from conftest import make_tokenizer, tiny_dhrd
from datasets import Dataset
from trainer import DHRDTrainer, DHRDTrainingArguments, paper_lora_config

rows = [{"text": f"row {i} " * (1 + i % 3), "label": [["a"], ["b"], ["a", "b"], []][i % 4], "rationale": "because"}
        for i in range(8)]
args = DHRDTrainingArguments(
    output_dir=sys.argv[1], max_steps=2, per_device_train_batch_size=4, report_to=[], use_cpu=True, seed=0,
    save_strategy="no", hub_model_id="me/tiny-lora", tune_thresholds=True, class_weights="balanced",
    max_input_length=6, lm_weight=0.5,
)
model = tiny_dhrd("llama", num_labels=2, id2label={0: "a", 1: "b"}, problem_type="multi_label_classification")
trainer = DHRDTrainer(
    model=model, args=args, train_dataset=Dataset.from_list(rows), eval_dataset=Dataset.from_list(rows),
    processing_class=make_tokenizer(), peft_config=paper_lora_config(r=4, lora_alpha=8),
)
trainer.train()
trainer.push_to_hub()
print("pushed")
"""


def test_a_lora_trainer_pushes_the_trained_state_with_its_adapter(tmp_path):
    with fake_hub(tmp_path / "hub") as hub_env:
        env = {key: value for key, value in {**os.environ, **hub_env}.items() if value}
        completed = subprocess.run(
            [sys.executable, "-c", PUSH_SCRIPT, str(tmp_path / "run")],
            capture_output=True, text=True, env=env, cwd=PROJECT_ROOT, timeout=300,
        )  # fmt: skip
    assert completed.returncode == 0 and "pushed" in completed.stdout, completed.stderr[-3000:]
    pushed = tmp_path / "hub" / "files"
    assert (pushed / "adapter_config.json").is_file()
    state = _state(pushed)
    assert state["lm_weight"] == 0.5 and state["input_contract"]["max_input_length"] == 6
    assert len(state["class_weights"]) == 2 and len(state["label_thresholds"]) == 2
