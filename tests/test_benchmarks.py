"""The benchmark and study scripts in their `--smoke` modes, so they cannot rot."""

import json
import subprocess
import sys

import pytest
from conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow


def _run(script: str, *args: str, cwd) -> subprocess.CompletedProcess:
    completed = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "examples" / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed


def test_training_benchmark_smoke(tmp_path, smollm2_path):
    _run("benchmark_training.py", "--smoke", "--output-dir", str(tmp_path), cwd=tmp_path)
    report = json.loads((tmp_path / "training.json").read_text())
    assert [row["config"] for row in report["results"]] == [
        "pooled_only",
        "lm_only",
        "dhrd_single_pass",
        "dhrd_two_passes",
        "dhrd_unchunked",
    ]
    assert all(row["step_s"] > 0 and row["peak_rss_mib"] > 0 for row in report["results"])
    assert {"single_pass_step_over_lm_only_step", "two_passes_step_over_single_pass_step"} <= report["ratios"].keys()


def test_training_benchmark_compares_attention_implementations(tmp_path, smollm2_path):
    args = (
        "--smoke",
        "--configs",
        "pooled_only",
        "--attn-implementations",
        "sdpa,eager",
        "--output-dir",
        str(tmp_path),
    )
    _run("benchmark_training.py", *args, cwd=tmp_path)
    report = json.loads((tmp_path / "training.json").read_text())
    rows = {row["attn_implementation"]: row["step_s"] for row in report["results"]}
    assert rows.keys() == {"sdpa", "eager"}
    assert report["ratios"]["pooled_only_eager_step_over_sdpa_step"] == pytest.approx(rows["eager"] / rows["sdpa"])


def test_inference_benchmark_smoke(tmp_path, smollm2_path):
    _run("benchmark_inference.py", "--smoke", "--output-dir", str(tmp_path), cwd=tmp_path)
    report = json.loads((tmp_path / "inference_smoke.json").read_text())
    assert [row["batch_size"] for row in report["results"]] == [1, 4]
    for row in report["results"]:
        assert row["dhrd_exported_qps"] > 0 and row["native_pooled_qps"] > 0 and row["cot_fixed_qps"] > 0
        assert 0 <= row["padding_fraction"] < 1
    assert "cot_eos_mean_tokens" in report["results"][1]
    assert (tmp_path / "inference_smoke.png").is_file() and (tmp_path / "inference_smoke.md").is_file()


def test_accuracy_study_smoke(tmp_path, tiny_backbone_dir):
    _run(
        "accuracy_study.py", "--smoke", "--model", str(tiny_backbone_dir), "--output-dir", str(tmp_path), cwd=tmp_path
    )
    report = json.loads((tmp_path / "synthetic.json").read_text())
    assert [run["condition"] for run in report["runs"]] == ["pooled", "dhrd"]
    assert set(report["summary"]) == {"pooled", "dhrd"}
    assert 0 <= report["summary"]["dhrd"]["val/accuracy"]["mean"] <= 1
    runs = {run["condition"]: run["scores"] for run in report["runs"]}
    cot = runs["dhrd"]["val_cot"]  # the trained reasoning head decoded 4 rows of at most 4 tokens
    assert "val_cot" not in runs["pooled"] and 0 < cot["mean_generated_tokens"] <= 4 and 0 <= cot["unparsed"] <= 4

    table = _run("results_table.py", str(tmp_path / "synthetic.json"), cwd=tmp_path).stdout
    delta = 100 * (runs["dhrd"]["val"]["accuracy"] - runs["pooled"]["val"]["accuracy"])
    assert f"| dhrd | {runs['dhrd']['val']['accuracy']:.3f} |" in table and f"{delta:+.1f} ± 0.0 (n=1)" in table


def test_accuracy_study_curve_resumes_and_plots(tmp_path, tiny_backbone_dir):
    """Several --train-rows make a curve (nested subsets, one row per size and condition); --resume runs only what
    is missing; plot_curves.py pairs conditions by seed and size and draws the PNG."""
    common = ["--study", "synthetic_multistep", "--model", str(tiny_backbone_dir), "--steps", "1", "--eval-rows", "8"]
    common += ["--output-dir", str(tmp_path), "--name", "curve", "--shuffled"]
    _run("accuracy_study.py", *common, "--seeds", "0", "--only", "pooled,dhrd", "--train-rows", "8,16", cwd=tmp_path)
    report = json.loads((tmp_path / "curve.json").read_text())
    assert [(r["condition"], r["train_rows"]) for r in report["runs"]] == [
        ("pooled", 8),
        ("dhrd", 8),
        ("pooled", 16),
        ("dhrd", 16),
    ]
    assert set(report["summary"]) == {"pooled@8", "dhrd@8", "pooled@16", "dhrd@16"}
    first = {(r["condition"], r["train_rows"]): r["scores"] for r in report["runs"]}
    report["cpu_seconds"] = 10_000  # as if the first sessions had taken that long: a resumed report adds to it
    (tmp_path / "curve.json").write_text(json.dumps(report))

    more = ["--seeds", "0", "--only", "pooled,dhrd,dhrd_shuffled,input_lm", "--train-rows", "8,16", "--resume"]
    log = _run("accuracy_study.py", *common, *more, cwd=tmp_path).stdout
    report = json.loads((tmp_path / "curve.json").read_text())
    assert [(r["condition"], r["train_rows"]) for r in report["runs"]][4:] == [
        ("input_lm", 8),
        ("dhrd_shuffled", 8),
        ("input_lm", 16),
        ("dhrd_shuffled", 16),
    ]
    assert {(r["condition"], r["train_rows"]): r["scores"] for r in report["runs"][:4]} == first  # kept, not rerun
    assert log.count('"condition"') == 4  # only the four missing runs ran
    teacher_free = [(r["source"], r["lm_loss_scope"]) for r in report["runs"] if r["condition"] == "input_lm"]
    assert teacher_free == [(None, "input"), (None, "input")]  # no teacher, the LM loss on the input
    assert report["cpu_seconds"] >= 10_000
    assert "[dhrd_shuffled seed 0 8 rows] training: 1 steps" in log  # progress lines name their run

    table = _run(
        "plot_curves.py",
        str(tmp_path / "curve.json"),
        "--metric",
        "val/accuracy",
        "--png",
        str(tmp_path / "c.png"),
        cwd=tmp_path,
    ).stdout
    runs = {(r["condition"], r["train_rows"]): r["scores"]["val"]["accuracy"] for r in report["runs"]}
    delta = 100 * (runs[("dhrd", 16)] - runs[("pooled", 16)])
    assert f"| 16 | {runs[('pooled', 16)]:.3f} ± 0.000 (n=1) |" in table
    assert f"{delta:+.1f} ± 0.0 ({int(delta > 0)}/1 seeds ahead)" in table
    assert (tmp_path / "c.png").stat().st_size > 0


def test_choice_step_benchmark_smoke(tmp_path):
    """Both multiple-choice step configurations run on the same batch and give the same loss (fp32)."""
    report = json.loads(_run("benchmark_choice_step.py", "--smoke", "--steps", "1", cwd=tmp_path).stdout)
    assert set(report["seconds_per_step"]) == {"rows_apart", "one_pass"}
    assert report["max_abs_loss_diff"] < 1e-5 and report["speedup_rows_apart"] > 0


def test_predict_memory_benchmark_smoke(tmp_path):
    _run("benchmark_predict_memory.py", "--smoke", "--output", str(tmp_path / "memory.json"), cwd=tmp_path)
    report = json.loads((tmp_path / "memory.json").read_text())
    assert [run["rows"] for run in report["runs"]] == [1000, 5000]
    assert all(run["peak_rss_mib"] > 0 and run["rows_per_second"] > 0 for run in report["runs"])
    assert report["peak_rss_ratio_to_first"]["1000"] == 1.0


def test_launched_predict_benchmark_smoke(tmp_path):
    """One process against `torchrun` with two: both runs measured, the outputs agree."""
    _run("benchmark_launched_predict.py", "--smoke", "--output", str(tmp_path / "launched.json"), cwd=tmp_path)
    runs = json.loads((tmp_path / "launched.json").read_text())["runs"]
    assert set(runs) == {"1_process", "2_process"} and len(runs["2_process"]["peak_rss_mb_per_process"]) == 2
    assert runs["2_process"]["same_top_label"] == 48 and runs["2_process"]["max_abs_prob_diff"] < 1e-6


def test_precision_check_compares_float32_and_bf16_predictions(tmp_path):
    from conftest import make_tokenizer, tiny_dhrd, write_rows

    tiny_dhrd("llama", num_labels=2, id2label={0: "wet", 1: "dry"}, label2id={"wet": 0, "dry": 1}).save_pretrained(
        tmp_path / "model"
    )
    make_tokenizer().save_pretrained(tmp_path / "model")
    write_rows(tmp_path / "rows.jsonl", 12, ("wet", "dry"))
    _run("precision_check.py", "--model", str(tmp_path / "model"), "--test_file", str(tmp_path / "rows.jsonl"),
         "--output", str(tmp_path / "precision.json"), cwd=tmp_path)  # fmt: skip
    report = json.loads((tmp_path / "precision.json").read_text())
    assert report["rows"] == 12 and set(report["runs"]) == {"float32", "bfloat16"}
    assert report["top_label_agrees"].endswith("/12") and 0 <= report["max_abs_prob_diff"] <= 1


def test_predict_engines_benchmark_smoke(tmp_path):
    """`dhrd predict` against the pipeline, float32 only (each configuration is a process; vLLM is left out)."""
    _run("benchmark_predict_engines.py", "--smoke", "--dtypes", "float32", "--output", str(tmp_path / "engines.json"),
         cwd=tmp_path)  # fmt: skip
    report = json.loads((tmp_path / "engines.json").read_text())
    assert set(report["runs"]) == {"predict_float32", "pipeline_float32_b1"}
    assert report["runs"]["pipeline_float32_b1"]["top_label_as_predict_float32"] == "32/32"  # the same classifier
    assert all(run["gflops"] > 0 and 0 < run["share_of_matmul_peak"] for run in report["runs"].values())
    assert set(report["ratios"]) == {"predict_over_best_pipeline_float32"}


def test_gpu_check_runs_its_smoke_mode_on_the_cpu(tmp_path):
    """The GPU script cannot rot while no GPU is lent: its whole path runs on the CPU with a tiny shape."""
    args = ["--device", "cpu", "--shapes", "tiny", "--serve-shape", "tiny", "--quick"]
    _run("gpu_check.py", *args, "--output", str(tmp_path / "gpu.json"), cwd=tmp_path)
    report = json.loads((tmp_path / "gpu.json").read_text())
    assert report["device"] == "cpu" and report["training"]["tiny"]["tokens_per_second"] > 0
    assert report["export"]["native"] and report["predict"]["rows"] == 64
    assert report["predict"]["speedup_over_best_pipeline"] > 0 and report["paper_inference"]["cot_qps"] > 0


def test_packed_step_benchmark_smoke(tmp_path):
    """Padded and packed steps on the same batches: the packed form computes fewer tokens for the same loss."""
    _run("benchmark_packed_step.py", "--smoke", "--output", str(tmp_path / "packed.json"), cwd=tmp_path)
    report = json.loads((tmp_path / "packed.json").read_text())
    padded, packed = report["forms"]["padded"], report["forms"]["packed"]
    assert packed["computed_tokens"] < padded["computed_tokens"] and packed["padding_share"] < padded["padding_share"]
    assert report["max_loss_difference"] < 1e-4
    assert report["forms"]["packed_one_row"]["padding_share"] == 0  # one row of every sequence: no padding at all
    assert set(report["over_padded_tokens_per_second"]) == {"packed", "packed_512", "packed_one_row"}
    assert all(0 < form["share_of_matmul_peak"] < 1 for form in report["forms"].values())  # an MFU per form
