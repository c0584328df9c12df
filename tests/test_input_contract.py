"""The input contract travels with the model: every save (Trainer checkpoints, `save_model`), the export (config and
tokenizer, so a plain `pipeline(..., truncation=True)` cuts long inputs as `dhrd predict` does) and the card; a model
without one is said once, and a Hub id that cannot be read is an error, never skipped."""

import json
import shutil

import pytest
from cli_helpers import dhrd, dhrd_in_process, error_line
from conftest import make_tokenizer, tiny_dhrd
from datasets import Dataset
from transformers import AutoTokenizer, pipeline

from modeling_dhrd import export_classifier
from modeling_dhrd.input_contract import InputContract
from trainer import DHRDTrainer, DHRDTrainingArguments
from trainer.cli import main
from trainer.data.description import DataError, DatasetArguments

WORDS = "sun rain wind snow cloud storm fog hail frost heat".split()


def _long_rows(n: int, words_per_row: int = 40) -> list[dict]:
    """Rows whose text runs far past a 24-token limit, their ends differing from their starts."""
    return [
        {
            "id": f"r{i}",
            "text": " ".join(WORDS[(i + k * (1 + i % 3)) % len(WORDS)] for k in range(words_per_row)),
            "label": ["wet", "dry"][i % 2],
            "rationale": "because",
        }
        for i in range(n)
    ]


def test_every_save_of_the_trainer_carries_the_input_contract(tmp_path):
    rows = Dataset.from_list([{**row, "label": i % 3} for i, row in enumerate(_long_rows(8))])
    args = DHRDTrainingArguments(
        output_dir=str(tmp_path / "run"), max_steps=2, per_device_train_batch_size=4, report_to=[], use_cpu=True,
        save_strategy="steps", save_steps=1, max_input_length=24, max_length=64,
    )  # fmt: skip
    trainer = DHRDTrainer(
        model=tiny_dhrd("llama", num_labels=3), args=args, train_dataset=rows, processing_class=make_tokenizer()
    )
    trainer.train()
    trainer.save_model()
    expected = {"input_format": {"text_column": "text"}, "max_input_length": 24, "truncation_side": "right"}
    for folder in (tmp_path / "run" / "checkpoint-1", tmp_path / "run"):
        assert json.loads((folder / "config.json").read_text())["input_contract"] == expected, folder


def test_the_exported_tokenizer_cuts_as_trained_so_a_pipeline_matches_dhrd_predict(
    tmp_path, tiny_backbone_dir, capsys
):
    rows = _long_rows(40)
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    dhrd_in_process(
        capsys, "train", "--model_name_or_path", str(tiny_backbone_dir), "--train_file", str(tmp_path / "rows.jsonl"),
        "--output_dir", str(tmp_path / "run"), "--max_steps", "2", "--max_input_length", "24", "--max_length", "64",
        "--report_to", "none", "--save_strategy", "no",
    )  # fmt: skip
    dhrd_in_process(capsys, "export", "--model", str(tmp_path / "run"), "--output_dir", str(tmp_path / "export"))
    config = json.loads((tmp_path / "export" / "config.json").read_text())
    assert (
        config["input_contract"]["max_input_length"] == 24 and config["input_contract"]["truncation_side"] == "right"
    )
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "export")
    assert (tokenizer.model_max_length, tokenizer.truncation_side) == (24, "right")
    assert "model_max_length=24" in (tmp_path / "export" / "README.md").read_text()

    dhrd_in_process(
        capsys, "predict", "--model", str(tmp_path / "export"), "--test_file", str(tmp_path / "rows.jsonl"),
        "--id_column", "id", "--output_file", str(tmp_path / "predictions.jsonl"),
    )  # fmt: skip
    by_dhrd = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    classifier = pipeline("text-classification", model=str(tmp_path / "export"), top_k=None)
    texts = [row["text"] for row in rows]
    assert all(len(tokenizer(text)["input_ids"]) > 60 for text in texts)  # every input is cut
    cut = classifier(texts, truncation=True)
    whole = classifier(texts, truncation=False)
    for ours, theirs in zip(by_dhrd, cut):
        assert ours["probs"] == pytest.approx({item["label"]: item["score"] for item in theirs}, abs=1e-5)
    differs = [a[0]["score"] != pytest.approx(b[0]["score"], abs=1e-5) for a, b in zip(cut, whole)]
    assert any(differs)  # the cut mattered: untruncated inputs score otherwise


def _as_hub_cache(folder, repo_id: str, cache) -> None:
    """`folder` laid out as the Hub cache holds a downloaded `repo_id` (refs/main -> snapshots/<commit>/)."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)


def test_a_hub_model_without_a_contract_is_said_once_and_a_missing_one_is_an_error(tmp_path):
    export_classifier(
        tiny_dhrd("qwen2", num_labels=2, id2label={0: "wet", 1: "dry"}), tmp_path / "plain", make_tokenizer()
    )
    assert "input_contract" not in json.loads((tmp_path / "plain" / "config.json").read_text())
    _as_hub_cache(tmp_path / "plain", "me/plain", tmp_path / "cache")
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in _long_rows(6)))
    common = ("--test_file", str(tmp_path / "rows.jsonl"), "--id_column", "id")
    env = {"HF_HUB_CACHE": str(tmp_path / "cache")}
    served = dhrd("predict", "--model", "me/plain", *common, "--output_file", str(tmp_path / "p.jsonl"), env_extra=env)
    assert served.returncode == 0, served.stderr[-3000:]
    assert served.stderr.count("carries no input contract") == 1
    assert len((tmp_path / "p.jsonl").read_text().splitlines()) == 6
    missing = dhrd(
        "predict", "--model", "me/absent", *common, "--output_file", str(tmp_path / "q.jsonl"), env_extra=env
    )
    assert "me/absent" in error_line(missing) and not (tmp_path / "q.jsonl").exists()


def test_a_contract_is_checked_when_read():
    assert InputContract.from_config(tiny_dhrd().config) is None
    config = tiny_dhrd().config
    config.input_contract = {"input_format": {"text_colum": "text"}, "max_input_length": 24}
    with pytest.raises(DataError, match="unknown input_format settings \\['text_colum'\\]"):
        DatasetArguments(test_file="rows.csv").with_input_format(InputContract.from_config(config).input_format)
    config.input_contract = {"input_format": {"text_column": 3}}
    with pytest.raises(ValueError, match="maps setting names to text"):
        InputContract.from_config(config)
    config.input_contract = {"max_input_length": 0}
    with pytest.raises(ValueError, match="positive integer"):
        InputContract.from_config(config)


def test_a_checkpoint_without_a_contract_is_said_and_reads_the_flags_given(
    tmp_path, tiny_backbone_dir, capsys, caplog
):
    """A DHRD folder whose config lost its contract (edited by hand): `predict` says so in one line and builds the
    inputs from the data flags given, which reproduce the trained format and cut."""
    rows = [{"id": f"r{i}", "a": row["text"], "b": row["text"][::-1], "label": row["label"], "rationale": "so"}
            for i, row in enumerate(_long_rows(12))]  # fmt: skip
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    data = ["--test_file", str(tmp_path / "rows.jsonl"), "--id_column", "id"]
    fmt = ["--text_columns", "a,b", "--input_template", "A: {a}\\nB: {b}"]
    code = main(["train", "--model_name_or_path", str(tiny_backbone_dir), "--train_file", str(tmp_path / "rows.jsonl"),
                 *fmt, "--max_input_length", "24", "--max_length", "64", "--max_steps", "1",
                 "--output_dir", str(tmp_path / "run"), "--report_to", "none"])  # fmt: skip
    assert code == 0, capsys.readouterr().err[-2000:]
    predict = ["predict", "--model", str(tmp_path / "run"), *data, "--output_file"]
    assert main([*predict, str(tmp_path / "new.jsonl")]) == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    del config["input_contract"]
    (tmp_path / "run" / "config.json").write_text(json.dumps(config))
    with caplog.at_level("INFO"):
        assert main([*predict, str(tmp_path / "flags.jsonl"), *fmt, "--max_input_length", "24"]) == 0
    assert "carries no input contract" in caplog.text
    assert (tmp_path / "flags.jsonl").read_text() == (tmp_path / "new.jsonl").read_text()
