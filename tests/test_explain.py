"""`dhrd explain`: the reasoning head writes a rationale for the rows asked for (the least confident ones), from the
DHRD checkpoint and, for a backbone with tied embeddings, identically from the native export."""

import json

import torch
from conftest import make_tokenizer, tiny_text_config, write_rows
from transformers import AutoModelForCausalLM

from trainer.cli import main


def _backbone(folder, architecture: str) -> str:
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(tiny_text_config(architecture)).save_pretrained(folder)
    make_tokenizer().save_pretrained(folder)
    return str(folder)


def _trained_and_exported(tmp_path, architecture: str, capsys) -> tuple[list[str], str, str]:
    write_rows(tmp_path / "rows.jsonl", 12, ("wet", "dry"))
    data = ["--train_file", str(tmp_path / "rows.jsonl"), "--test_file", str(tmp_path / "rows.jsonl")]
    run, export = str(tmp_path / f"run-{architecture}"), str(tmp_path / f"export-{architecture}")
    backbone = _backbone(tmp_path / architecture, architecture)
    assert main(["train", "--model_name_or_path", backbone, *data, "--output_dir", run, "--max_steps", "2",
                 "--report_to", "none", "--save_strategy", "no"]) == 0  # fmt: skip
    assert main(["export", "--model", run, "--output_dir", export]) == 0
    capsys.readouterr()
    return data, run, export


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_least_confident_rows_are_explained_alike_by_the_checkpoint_and_its_tied_export(tmp_path, capsys):
    data, run, export = _trained_and_exported(tmp_path, "llama", capsys)  # tiny Llama: tied embeddings
    assert main(["predict", "--model", export, *data, "--output_file", str(tmp_path / "p.jsonl")]) == 0
    predicted = _lines(tmp_path / "p.jsonl")
    confidence = {row["idx"]: max(row["probs"].values()) for row in predicted}
    least = sorted(confidence, key=confidence.get)[:3]
    explained = {}
    for name, model in (("checkpoint", run), ("export", export)):
        output = tmp_path / f"{name}.jsonl"
        code = main(["explain", "--model", model, *data, "--least_confident", "3", "--max_new_tokens", "8",
                     "--output_file", str(output)])  # fmt: skip
        assert code == 0, capsys.readouterr().err[-2000:]
        assert "explained 3 of 12 rows (least confident)" in capsys.readouterr().out
        explained[name] = _lines(output)
    rows = explained["export"]
    assert sorted(row["idx"] for row in rows) == sorted(least)
    by_id = {row["idx"]: row for row in predicted}
    for row in rows:
        assert row["label"] == by_id[row["idx"]]["label"]
        assert abs(row["confidence"] - confidence[row["idx"]]) < 1e-4
        assert row["agrees"] == (row["stated_label"] == row["label"])
    # the export's tied embeddings are the checkpoint's reasoning head: the same rationales, token for token
    assert [row["rationale"] for row in rows] == [row["rationale"] for row in explained["checkpoint"]]


def test_an_export_without_a_tied_head_is_refused_in_one_line(tmp_path, capsys):
    data, _, export = _trained_and_exported(tmp_path, "qwen2", capsys)  # tiny Qwen2: untied LM head
    code = main(["explain", "--model", export, *data, "--output_file", str(tmp_path / "e.jsonl")])
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert code != 0 and "keeps no reasoning head" in line and "DHRD checkpoint" in line, line
    assert not (tmp_path / "e.jsonl").exists()
