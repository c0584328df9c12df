"""A large backbone end to end through the `dhrd` command line, on whatever machine runs it: a real Llama
architecture at a user's size with random weights (no download) -> `dhrd train` with LoRA, gradient checkpointing
and bf16 -> `dhrd export` (the adapter merged, the reasoning head dropped) -> reload in a fresh process with plain
`AutoModelForSequenceClassification` -> `dhrd predict`. Each stage is its own process; its wall time and peak RSS
(`os.wait4`) are reported, and the training's seconds per step. Prints JSON.

    python examples/large_backbone_check.py --shape llama-3.2-1b --output docs/benchmarks/large_backbone_1b.json
    python examples/large_backbone_check.py --shape llama-290m   # the size tests/test_large_backbone.py runs
    python examples/large_backbone_check.py --shape tiny         # seconds

`--precision native` trains in bf16 only where the hardware computes it (a bf16 GPU, a CPU with AVX512-BF16) and in
fp32 elsewhere, where emulated bf16 is several times slower (55 s a step for the 290M shape on a 2-core AVX2 CPU).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from backbone_shapes import SHAPES, a_tokenizer, random_backbone

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from conftest import write_rows  # noqa: E402 - rows of random words with a label and a rationale, like a user's file

from trainer.device import native_bf16  # noqa: E402

LABELS = ("calm", "stormy", "mixed")

RELOAD = """
import json, sys, torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
folder = sys.argv[1]
model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
tokenizer = AutoTokenizer.from_pretrained(folder)
with torch.no_grad():
    logits = model(**tokenizer(["rain and wind all day"], return_tensors="pt")).logits
print(json.dumps({"architecture": type(model).__name__, "logits": logits[0].tolist(), "dtype": str(model.dtype)}))
"""


def stage(name: str, command: list[str], log_dir: Path) -> dict:
    """One process: its exit, wall seconds, peak RSS (MiB) and output; a failure stops the check with its log."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    log = log_dir / f"{name}.log"
    start = time.perf_counter()
    with open(log, "wb") as handle:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    output = log.read_text(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name} failed:\n{output[-4000:]}")
    print(f"{name}: {seconds:.1f} s, peak RSS {usage.ru_maxrss / 1024:.0f} MiB", file=sys.stderr, flush=True)
    return {"seconds": round(seconds, 1), "peak_rss_mib": round(usage.ru_maxrss / 1024), "output": output}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", default="llama-3.2-1b", choices=sorted(SHAPES))
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--predict-rows", type=int, default=64)
    parser.add_argument(
        "--precision", default="bf16", choices=("bf16", "fp32", "native"), help="native: bf16 where it is native"
    )
    parser.add_argument("--work-dir", help="Keep the folders here (default: a temporary folder).")
    parser.add_argument("--output")
    args = parser.parse_args()
    bf16 = args.precision == "bf16" or (args.precision == "native" and native_bf16())
    precision = ["--dtype", "bfloat16", "--bf16"] if bf16 else ["--dtype", "float32"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work_dir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        parameters = random_backbone(args.shape, work / "backbone", a_tokenizer())
        build_seconds = time.perf_counter() - start
        write_rows(work / "train.jsonl", args.steps * args.batch_size, LABELS, seed=0)
        write_rows(work / "rows.jsonl", args.predict_rows, LABELS, seed=1)
        dhrd = [sys.executable, "-m", "trainer.cli"]
        train = stage(
            "train",
            [
                *dhrd, "train", "--model", str(work / "backbone"), "--train_file", str(work / "train.jsonl"),
                "--output_dir", str(work / "run"), "--overwrite_output_dir", "--lora_r", str(args.lora_r),
                *precision, "--activation_checkpointing", "--max_steps", str(args.steps),
                "--per_device_train_batch_size", str(args.batch_size), "--learning_rate", "1e-4",
                "--max_input_length", "64", "--max_length", "128", "--logging_steps", "1", "--save_strategy", "no",
                "--report_to", "none", "--label_names", ",".join(LABELS),
            ],
            work,
        )  # fmt: skip
        runtime = float(re.findall(r"train_runtime=([\d.]+)", train["output"])[-1])
        export = stage(
            "export", [*dhrd, "export", "--model", str(work / "run"), "--output_dir", str(work / "export")], work
        )
        reload = stage("reload", [sys.executable, "-c", RELOAD, str(work / "export")], work)
        predict = stage(
            "predict",
            [
                *dhrd, "predict", "--model", str(work / "export"), "--test_file", str(work / "rows.jsonl"),
                "--output_file", str(work / "predictions.jsonl"), "--overwrite", *precision[:2],
            ],
            work,
        )  # fmt: skip
        predictions = (work / "predictions.jsonl").read_text().splitlines()
        reloaded = json.loads(reload["output"].strip().splitlines()[-1])
        report = {
            "shape": args.shape,
            "parameters": parameters,
            "lora_r": args.lora_r,
            "threads": int(os.environ.get("OMP_NUM_THREADS", 0)) or os.cpu_count(),
            "build_seconds": round(build_seconds, 1),
            "train": {
                "steps": args.steps,
                "batch_size": args.batch_size,
                "seconds_per_step": round(runtime / args.steps, 2),
                "process_seconds": train["seconds"],
                "peak_rss_mib": train["peak_rss_mib"],
                "settings": f"LoRA r={args.lora_r} on q,k,v,o,gate,up,down; "
                + ("bf16 weights + bf16 autocast" if bf16 else "fp32")
                + "; gradient checkpointing",
            },
            "export": {
                "seconds": export["seconds"],
                "peak_rss_mib": export["peak_rss_mib"],
                "line": export["output"].strip().splitlines()[-1],
            },
            "reload_plain_transformers": {
                "architecture": reloaded["architecture"],
                "dtype": reloaded["dtype"],
                "finite_logits": all(abs(value) < float("inf") for value in reloaded["logits"]),
                "seconds": reload["seconds"],
                "peak_rss_mib": reload["peak_rss_mib"],
            },
            "predict": {
                "rows": len(predictions),
                "seconds": predict["seconds"],
                "peak_rss_mib": predict["peak_rss_mib"],
                "line": predict["output"].strip().splitlines()[-1],
            },
        }
    print(json.dumps(report, indent=2))
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
