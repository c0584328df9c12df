"""The `dhrd` command line end to end (as subprocesses, like a user's shell), its errors, the model card and the
Hub upload (against a Hub stand-in on loopback)."""

import json
import subprocess

import pytest
from cli_helpers import dhrd, dhrd_in_process, fake_hub, refusal_in_process
from conftest import DATA_DIR, PROJECT_ROOT, requires_data, write_rows

from trainer.training.model_card import parse_front_matter, render_model_card


@pytest.fixture
def files(tmp_path):
    write_rows(tmp_path / "train.jsonl", 16, ("wet", "dry"))
    write_rows(tmp_path / "eval.jsonl", 8, ("wet", "dry"), seed=1)
    return tmp_path


MISMATCH = "eval.jsonl row 0: label 'wet' is not one of the labels ['entailment', 'not_entailment']"


def test_train_export_evaluate_from_the_shell(files, tiny_backbone_dir):
    run, exported = files / "run", files / "exported"
    trained = dhrd(
        "train",
        "--model_name_or_path",
        str(tiny_backbone_dir),
        "--train_file",
        str(files / "train.jsonl"),
        "--eval_file",
        str(files / "eval.jsonl"),
        "--output_dir",
        str(run),
        "--max-steps",
        "2",
        "--per_device_train_batch_size",
        "4",
        "--lm-weight",
        "0.5",
        "--use_cpu",
        "--report_to",
        "none",
        "--max_length",
        "256",
        "--max_input_length",
        "64",
        "--save_strategy",
        "no",
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "saved" in trained.stdout and (run / "model.safetensors").is_file()
    record = json.loads((run / "dhrd_training.json").read_text())
    assert record["training"]["steps"] == 2 and "accuracy" in record["eval_metrics"]
    assert json.loads((run / "config.json").read_text())["lm_weight"] == 0.5

    out = dhrd("export", "--model", str(run), "--output_dir", str(exported))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "exported Qwen2ForSequenceClassification" in out.stdout
    metadata = parse_front_matter((exported / "README.md").read_text())
    assert metadata["pipeline_tag"] == "text-classification" and "dhrd" in metadata["tags"]

    scores = []
    for model in (run, exported):  # the DHRD checkpoint and its export score the same
        evaluated = dhrd("evaluate", "--model", str(model), "--eval_file", str(files / "eval.jsonl"))
        assert evaluated.returncode == 0, evaluated.stderr[-3000:]
        scores.append(json.loads(evaluated.stdout.strip().splitlines()[-1]))
    assert scores[0]["accuracy"] == scores[1]["accuracy"] and scores[0]["rows"] == 8

    reasoning_head = ["evaluate", "--eval_file", str(files / "eval.jsonl"), "--method", "reasoning_head"]
    decoded = dhrd(*reasoning_head, "--model", str(run), "--max_new_tokens", "5")
    assert decoded.returncode == 0, decoded.stderr[-3000:]
    report = json.loads(decoded.stdout.strip().splitlines()[-1])
    assert report["method"] == "reasoning_head" and report["rows"] == 8 and 0 < report["mean_generated_tokens"] <= 5
    no_head = dhrd(*reasoning_head, "--model", str(exported))
    assert no_head.returncode == 1 and "no reasoning head" in no_head.stderr

    mismatch = dhrd(
        "evaluate",
        "--model",
        str(tiny_backbone_dir),
        "--eval_file",
        str(files / "eval.jsonl"),
        "--method",
        "cot",
        "--task",
        "rte",
    )
    assert (
        mismatch.returncode == 1
        and "eval.jsonl row 0: label 'wet' is not one of the labels ['entailment', 'not_entailment']"
        in mismatch.stderr
    )


def test_cot_decoding_evaluation_reports_generation_stats(tiny_backbone_dir):
    requires_data("superglue", "RTE")
    cot = dhrd(
        "evaluate",
        "--model",
        str(tiny_backbone_dir),
        "--method",
        "cot",
        "--task",
        "rte",
        "--data_dir",
        str(DATA_DIR),
        "--limit",
        "3",
        "--max_new_tokens",
        "6",
        "--batch_size",
        "3",
    )
    assert cot.returncode == 0, cot.stderr[-3000:]
    report = json.loads(cot.stdout.strip().splitlines()[-1])
    assert report["method"] == "cot" and report["rows"] == 3 and 0 < report["mean_generated_tokens"] <= 6
    assert 0 <= report["unparsed"] <= 3


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["train", "--train_file", "/nope.jsonl", "--output_dir", "/tmp/x", "--report_to", "none"],
            "No such data file: /nope.jsonl",
        ),
        (["train", "--task", "copaa", "--output_dir", "/tmp/x", "--report_to", "none"], "Unknown task 'copaa'"),
        (["evaluate", "--model", "/no/such/folder", "--task", "rte"], "No such model folder"),
        (["export", "--model", "/tmp", "--output_dir", "/tmp/y"], "/tmp is not a model folder"),
        (["rationales", "--task", "rte", "--output_dir", "/tmp/r", "--join", "nope"], "Unknown --join 'nope'"),
        (["frobnicate"], "unknown command 'frobnicate'"),
    ],
)
def test_bad_input_gives_one_line_and_a_nonzero_exit(args, message, tmp_path, capsys, monkeypatch):
    """In process (`trainer.cli.main`, as the shell runs it; the shell's own run is the story above and the config
    file's refusal below)."""
    monkeypatch.setenv("DHRD_DATA_DIR", str(tmp_path))
    assert message in refusal_in_process(capsys, *args)


def test_wrong_column_names_are_named(files, tiny_backbone_dir):
    completed = dhrd(
        "train",
        "--model_name_or_path",
        str(tiny_backbone_dir),
        "--train_file",
        str(files / "train.jsonl"),
        "--text_column",
        "sentence",
        "--output_dir",
        str(files / "r"),
        "--report_to",
        "none",
        "--use_cpu",
    )
    assert (
        completed.returncode == 1
        and "train.jsonl: no column 'sentence' (--text_column); the columns are" in completed.stderr
    )
    assert "Traceback" not in completed.stderr


def test_config_file_drives_a_subcommand(tmp_path):
    (tmp_path / "rationales.yaml").write_text(
        f"task: rte\noutput_dir: {tmp_path / 'r'}\njoin: nope\ndata_dir: {tmp_path}\n"
    )
    completed = dhrd("rationales", str(tmp_path / "rationales.yaml"))
    assert completed.returncode == 1 and "Unknown --join 'nope'" in completed.stderr


def test_model_card_renders_with_hub_metadata():
    card = render_model_card(
        repo_id="me/copa-dhrd",
        base_model="HuggingFaceTB/SmolLM2-135M-Instruct",
        architecture="LlamaForSequenceClassification",
        native=True,
        label_names=["Option 1", "Option 2"],
        dhrd={"pooling": "last", "head": "linear", "lm_weight": 1.0},
        training={"lora_r": 16, "max_input_length": 256},
        metrics={"accuracy": 0.61},
        datasets=["super_glue/copa"],
    )
    metadata = parse_front_matter(card)
    model_index = metadata.pop("model-index")
    assert metadata == {
        "library_name": "transformers",
        "pipeline_tag": "text-classification",
        "tags": ["dhrd", "text-classification", "reasoning-distillation"],
        "base_model": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "datasets": ["super_glue/copa"],
    }
    assert model_index[0]["name"] == "copa-dhrd"
    assert model_index[0]["results"][0]["metrics"] == [{"type": "accuracy", "value": 0.61}]
    assert 'pipeline("text-classification", model="me/copa-dhrd")' in card
    assert "| accuracy | 0.6100 |" in card and "arXiv:2509.21487" in card and "`Option 2`" in card
    remote = render_model_card(
        repo_id="me/x",
        base_model=None,
        architecture="DHRDForSequenceClassification",
        native=False,
        label_names=["a"],
        dhrd={"pooling": "mean", "head": "mlp"},
    )
    assert "trust_remote_code=True" in remote and "base_model" not in parse_front_matter(remote)


def test_push_to_hub_uploads_the_exported_folder(files, tiny_backbone_dir, tmp_path):
    run = files / "run"
    trained = dhrd(
        "train",
        "--model_name_or_path",
        str(tiny_backbone_dir),
        "--train_file",
        str(files / "train.jsonl"),
        "--output_dir",
        str(run),
        "--max-steps",
        "1",
        "--use_cpu",
        "--report_to",
        "none",
        "--save_strategy",
        "no",
    )
    assert trained.returncode == 0, trained.stderr[-2000:]
    with fake_hub(tmp_path / "hub") as hub_env:
        pushed = dhrd(
            "export",
            "--model",
            str(run),
            "--output_dir",
            str(tmp_path / "exported"),
            "--push_to_hub",
            "me/tiny-dhrd",
            env_extra={**hub_env, "HF_TOKEN": "hf_fake_token"},
        )
    assert pushed.returncode == 0, pushed.stderr[-3000:]
    assert "pushed to" in pushed.stdout
    uploaded = {
        p.relative_to(tmp_path / "hub" / "files"): p.read_bytes()
        for p in (tmp_path / "hub" / "files").rglob("*")
        if p.is_file()
    }
    local = {
        p.relative_to(tmp_path / "exported"): p.read_bytes() for p in (tmp_path / "exported").rglob("*") if p.is_file()
    }
    assert uploaded == local and any(str(p) == "model.safetensors" for p in uploaded)
    log = (tmp_path / "hub" / "requests.log").read_text()
    assert "POST /api/repos/create auth=True" in log and "/api/models/me/tiny-dhrd/commit/main" in log
    assert "hf_fake_token" not in pushed.stdout + pushed.stderr  # the token is never logged


@pytest.mark.slow
def test_demo_quick_runs_the_whole_story(tmp_path):
    """`make demo`'s path at 2 steps. The shuffled control trains as `dhrd compare`'s `shuffled` arm there (tested
    in test_compare.py); here the demo's two trainings, to keep the suite under 10 minutes on 2 cores."""
    completed = dhrd("demo", "--quick", "--output_dir", str(tmp_path / "demo"))
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert list(results["methods"]) == ["pooled", "dhrd"]  # the control only with --shuffled_control
    assert [results["methods"][m]["lm_weight"] for m in results["methods"]] == [0.0, 1.0]
    assert results["export"]["native"] and results["export"]["fresh_process_reload"]["ok"]
    assert results["speed"]["classifier_qps"] > results["speed"]["cot_qps"]
    assert (tmp_path / "demo" / "results.png").is_file()
    assert results["settings"]["attn_implementation"] == "eager"  # this machine trains on its CPU
    assert "DHRD demo on synthetic_multistep" in completed.stdout
    # a newcomer's log: each run's progress lines carry its name; no redrawn bars when output is not a terminal
    assert "[DHRD] step 2/2 (100%)" in completed.stdout
    assert "\r" not in completed.stdout + completed.stderr
    # the printed command classifies a held-out input with plain transformers, as the demo says it will
    try_it = results["try_it"]
    assert try_it["command"] in completed.stdout
    tried = subprocess.run(["bash", "-c", try_it["command"]], capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert tried.returncode == 0, tried.stderr[-2000:]
    assert f"'label': '{try_it['expected_label']}'" in tried.stdout


def test_train_takes_an_attention_kernel_for_training_only(files, tiny_backbone_dir):
    """`--attn_implementation eager` is the kernel the backbone trains with; the saved model loads with the default
    (the choice is the training machine's, not the checkpoint's)."""
    from transformers import AutoModelForSequenceClassification

    from modeling_dhrd.unwrap import unwrap_dhrd
    from trainer.cli import _parse
    from trainer.cli.train import ModelArguments, TrainCommandArguments, run_training
    from trainer.data.description import DatasetArguments

    run = files / "eager"
    argv = [
        "--model_name_or_path", str(tiny_backbone_dir), "--train_file", str(files / "train.jsonl"),
        "--output_dir", str(run), "--max_steps", "1", "--use_cpu", "--report_to", "none", "--save_strategy", "no",
        "--attn_implementation", "eager",
    ]  # fmt: skip
    trainer = run_training(*_parse((ModelArguments, DatasetArguments, TrainCommandArguments), argv, "dhrd train"))
    assert unwrap_dhrd(trainer.model, "the test").model.config._attn_implementation == "eager"
    assert json.loads((run / "dhrd_training.json").read_text())["training"]["attn_implementation"] == "eager"
    assert AutoModelForSequenceClassification.from_pretrained(run).config._attn_implementation == "sdpa"


def test_the_demo_shows_the_control_it_did_not_train_as_its_reference(tmp_path):
    """Without --shuffled_control the control's row is its 3-seed reference (from the reference data file), marked
    as not run, and its finding (what the rationales' content adds over the same rationales shuffled) is printed
    either way; so is every other question the reference answers."""
    from trainer.cli.demo import plot, report_table
    from trainer.cli.demo_setting import reference_runs

    results = json.loads((PROJECT_ROOT / "docs" / "benchmarks" / "demo_results_shuffled_control.json").read_text())
    assert list(results["methods"]) == ["pooled", "dhrd", "shuffled"]  # a recorded run with --shuffled_control
    full = report_table(results)
    del results["methods"]["shuffled"]
    table = report_table(results)
    control_row = next(line for line in table.splitlines() if line.startswith("| DHRD, rationales shuffled"))
    assert "| —        | —        | not run | 0.768 ± 0.013" in control_row
    content_line = "what the rationales' content adds (DHRD over the shuffled control): over 3 seeds -0.2 ± 4.2"
    assert content_line in table and content_line in full
    assert "--shuffled_control trains it" in table and "--shuffled_control" not in full
    references = reference_runs()["arms"]
    assert all(len(arm["accuracy"]) == 3 and arm["measured"] and arm["command"] for arm in references.values())
    if "input_lm" in references:  # the teacher-free control's row and question, from the same file
        assert "| LM on the input only (no teacher)" in table and "--input_lm_control trains it" in table
        assert "what the teacher adds over a teacher-free LM objective (DHRD over input_lm): over 3 seeds" in table
    assert plot(results, tmp_path / "results.png") and (tmp_path / "results.png").stat().st_size > 0


def test_the_demo_trains_with_eager_attention_on_a_cpu_only():
    import torch

    from trainer.cli.demo_setting import demo_attention

    assert demo_attention(None, torch.device("cpu")) == "eager"
    assert demo_attention(None, torch.device("cuda", 0)) is None  # the backbone's default (SDPA) on a GPU
    assert demo_attention("sdpa", torch.device("cpu")) == "sdpa"  # --attn_implementation wins


def test_lora_run_saves_its_adapter_and_a_merged_checkpoint(files, tiny_backbone_dir, capsys):
    """The adapter comes from `trainer.save_model` (correct under FSDP / ZeRO-3); rank 0 merges it into a base read
    from disk. The merged checkpoint equals base + adapter, and keeps the run's loss weights."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from modeling_dhrd import DHRDForSequenceClassification

    run = files / "lora"
    dhrd_in_process(
        capsys, "train", "--model_name_or_path", str(tiny_backbone_dir), "--train_file", str(files / "train.jsonl"),
        "--output_dir", str(run), "--lora_r", "4", "--lm_weight", "0.5", "--max_steps", "2", "--learning_rate", "0.05",
        "--report_to", "none", "--save_strategy", "no",
    )  # fmt: skip
    assert (run / "adapter" / "adapter_config.json").is_file() and (
        run / "adapter" / "adapter_model.safetensors"
    ).is_file()
    merged = AutoModelForSequenceClassification.from_pretrained(run).eval()
    assert merged.config.lm_weight == 0.5 and merged.lm_head is not None
    names = {0: "dry", 1: "wet"}
    base = DHRDForSequenceClassification.from_backbone(str(tiny_backbone_dir), id2label=names)
    expected = PeftModel.from_pretrained(base, str(run / "adapter")).eval()
    batch = AutoTokenizer.from_pretrained(run)(["sun rain", "snow"], return_tensors="pt", padding=True)
    with torch.no_grad():
        torch.testing.assert_close(merged(**batch).logits, expected(**batch).logits, atol=1e-5, rtol=1e-4)


def test_help_opens_with_a_usage_line_and_one_line_per_command(capsys):
    from trainer.cli import COMMANDS, main

    assert main(["--help"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("usage: dhrd <command>") and lines[2] == "commands:"
    listed = [line.split()[0] for line in lines[3 : 3 + len(COMMANDS)]]
    assert listed == list(COMMANDS) and lines[3 + len(COMMANDS)] == ""
