"""A backbone larger than the embedded ones (a ~290M Llama, random weights) through the whole user path on this CPU:
`dhrd train` with LoRA + gradient checkpointing (bf16 where the hardware computes it, else fp32: emulated bf16 made
this test 5x slower on an AVX2 CPU), `dhrd export` (adapter merged), a plain-transformers reload in a fresh process,
and `dhrd predict` (`examples/large_backbone_check.py`; the 1B shape's numbers are in docs/RESULTS.md, "At scale")."""

import json
import subprocess
import sys

import pytest
from conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow


def test_a_290m_llama_trains_with_lora_exports_merged_and_predicts(tmp_path):
    completed = subprocess.run(
        [
            sys.executable, str(PROJECT_ROOT / "examples" / "large_backbone_check.py"), "--shape", "llama-290m",
            "--steps", "2", "--predict-rows", "16", "--precision", "native", "--work-dir", str(tmp_path / "work"),
            "--output", str(tmp_path / "report.json"),
        ],
        capture_output=True, text=True, timeout=900, cwd=PROJECT_ROOT,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["parameters"] > 270_000_000
    assert report["train"]["steps"] == 2 and report["train"]["seconds_per_step"] > 0
    assert (tmp_path / "work" / "run" / "adapter" / "adapter_config.json").is_file()  # a LoRA run, merged at export
    assert report["export"]["line"].startswith("exported LlamaForSequenceClassification")
    reloaded = report["reload_plain_transformers"]
    assert reloaded["architecture"] == "LlamaForSequenceClassification" and reloaded["finite_logits"]
    predictions = [json.loads(line) for line in (tmp_path / "work" / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 16 and {p["label"] for p in predictions} <= {"calm", "stormy", "mixed"}
    assert all(abs(sum(p["probs"].values()) - 1) < 1e-4 for p in predictions)
