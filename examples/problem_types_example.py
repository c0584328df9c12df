"""Multi-label and regression end to end through the `dhrd` command line, on the embedded SmolLM2-135M-Instruct.

    python examples/problem_types_example.py                      # ~15 CPU-minutes on 2 cores
    python examples/problem_types_example.py --steps 4 --rows 64  # a smoke run

Data: the synthetic apples story with a programmatic teacher (`trainer.tasks.synthetic`), as a user's JSONL files:
multi-label rows list which of `first_over_10`, `second_over_10`, `first_has_more` hold; regression rows ask how
many apples a person ends with. For each problem type: `dhrd train` (pooled baseline, lm_weight 0, and DHRD,
lm_weight 1, same steps and seed), `dhrd evaluate` on held-out rows, `dhrd export` of the DHRD run, `dhrd predict`
with the export, and the export reloaded in a fresh process with plain transformers, whose logits must reproduce
the predictions. Prints and writes one JSON report (`--report`).
"""

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from modeling_dhrd.atomic import atomic_write_text
from trainer.tasks.synthetic import synthetic_multi_label_rows, synthetic_regression_rows

PROJECT_ROOT = Path(__file__).resolve().parents[1]
KINDS = {
    "multi_label": (synthetic_multi_label_rows, []),
    "regression": (synthetic_regression_rows, ["--problem_type", "regression"]),
}


def dhrd(*args: str) -> None:
    print("$ dhrd " + " ".join(args), flush=True)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    subprocess.run([sys.executable, "-m", "trainer.cli", *args], check=True, env=env, cwd=PROJECT_ROOT)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def fresh_process_logits(export: Path, texts: list[str]) -> list[list[float]]:
    """The export's logits from a new interpreter that imports only transformers (no project code)."""
    script = f"""
        import json, torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        model = AutoModelForSequenceClassification.from_pretrained({str(export)!r}).eval()
        tokenizer = AutoTokenizer.from_pretrained({str(export)!r})
        with torch.no_grad():
            rows = [model(**tokenizer(t, return_tensors="pt")).logits[0].tolist() for t in {texts!r}]
        print(json.dumps({{"problem_type": model.config.problem_type, "logits": rows}}))
    """
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], check=True, capture_output=True, text=True, cwd="/"
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_kind(kind: str, args, work: Path) -> dict:
    make_rows, flags = KINDS[kind]
    folder = work / kind
    folder.mkdir(parents=True, exist_ok=True)
    train = write_jsonl(folder / "train.jsonl", make_rows(args.rows, seed=0))
    valid = write_jsonl(folder / "valid.jsonl", make_rows(args.eval_rows, seed=1))
    data = ["--train_file", str(train), "--validation_file", str(valid), *flags]
    training = ["--max_steps", str(args.steps), "--per_device_train_batch_size", "8", "--learning_rate", "1e-4"]
    training += ["--lm_loss_scope", "rationale", "--report_to", "none", "--save_strategy", "no", "--seed", "0"]
    training += ["--overwrite_output_dir", "--logging_steps", "10"] + (["--bf16"] if args.bf16 else [])
    report: dict = {"train_rows": args.rows, "eval_rows": args.eval_rows, "steps": args.steps}
    for name, lm_weight in (("pooled", "0"), ("dhrd", "1")):
        run = folder / name
        if not (run / "eval.json").is_file():  # a finished run (trained and evaluated) is kept: reruns resume
            started = time.time()
            dhrd("train", "--output_dir", str(run), "--lm_weight", lm_weight, *data, *training)
            atomic_write_text(run / "train_seconds.txt", str(round(time.time() - started)))
            evaluation = ["--validation_file", str(valid), "--output_file", str(run / "eval.json")]
            dhrd("evaluate", "--model", str(run), *evaluation)
        seconds = int((run / "train_seconds.txt").read_text())
        metrics = json.loads((run / "eval.json").read_text())
        report[name] = {
            k: v for k, v in metrics.items() if k not in ("model", "split", "task", "method", "seconds", "qps")
        }
        report[name]["train_seconds"] = seconds
    export = folder / "export"
    dhrd("export", "--model", str(folder / "dhrd"), "--output_dir", str(export), "--overwrite")
    predictions = folder / "predictions.jsonl"
    dhrd("predict", "--model", str(export), "--test_file", str(valid), "--output_file", str(predictions))
    predicted = [json.loads(line) for line in predictions.read_text().splitlines()][:8]
    texts = [json.loads(line)["text"] for line in valid.read_text().splitlines()][:8]
    reloaded = fresh_process_logits(export.resolve(), texts)
    import torch

    logits = torch.tensor(reloaded["logits"])
    if kind == "regression":
        expected = torch.tensor([[row["score"]] for row in predicted])
        max_diff = float((logits - expected).abs().max())
    else:
        expected = torch.tensor([list(row["probs"].values()) for row in predicted])
        max_diff = float((torch.sigmoid(logits) - expected).abs().max())
    report["export"] = {"problem_type": reloaded["problem_type"], "max_diff_vs_predict": max_diff}
    report["sample_predictions"] = predicted[:3]
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rows", type=int, default=480, help="training rows")
    parser.add_argument("--eval-rows", type=int, default=200)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--work-dir", default="outputs/problem_types")
    parser.add_argument("--report", default="docs/results/problem_types.json")
    args = parser.parse_args()
    started = time.time()
    report = {kind: run_kind(kind, args, Path(args.work_dir)) for kind in KINDS}
    report["cpu_seconds"] = round(time.time() - started)
    text = json.dumps(report, indent=2)
    atomic_write_text(args.report, text + "\n")
    print(text)


if __name__ == "__main__":
    main()
