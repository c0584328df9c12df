"""Memory of `dhrd predict` as the data grows: peak RSS and rows/s at several sizes, side by side in one run.

A tiny random classifier (exported like a real one) predicts synthetic rows (`id`, a sentence of 3–30 words) from a
jsonl file into a parquet file, each size in a fresh process (`python -m trainer.cli predict`, end to end: load, read,
predict, write). The process's peak RSS comes from `os.wait4`. The model is tiny on purpose: what grows with the
data is the pipeline around the model (rows, parts, output), which is what this measures.

    python examples/benchmark_predict_memory.py --rows 100000,1000000 --output docs/benchmarks/predict_memory.json
    python examples/benchmark_predict_memory.py --smoke     # seconds (CI)
    python examples/benchmark_predict_memory.py --project ../older-checkout   # another version's CLI, same data
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORDS = "sun rain wind snow cloud storm fog hail frost heat dry wet cold warm grey clear".split()


def build_classifier(folder: Path) -> None:
    import torch

    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import make_tokenizer, tiny_dhrd

    from modeling_dhrd import export_classifier

    torch.manual_seed(0)
    export_classifier(tiny_dhrd("llama", num_labels=3), folder, make_tokenizer())


def write_rows(path: Path, rows: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with open(path, "w") as handle:
        for i in range(rows):
            text = " ".join(rng.choices(WORDS, k=rng.randint(3, 30)))
            handle.write(json.dumps({"id": f"row-{i}", "text": text}) + "\n")


def measure(project: Path, model: Path, rows_file: Path, output: Path, cache: Path) -> dict:
    """One `dhrd predict` process: wall seconds and its peak RSS (KiB, from the kernel's accounting at exit)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": str(cache), "PYTHONPATH": str(project)}
    env["DHRD_DTYPE"] = "float32"  # every version in float32 (older ones load as saved: the same float32 model)
    command = [sys.executable, "-m", "trainer.cli", "predict", "--model", str(model), "--test_file", str(rows_file)]
    log = output.with_suffix(".log")
    start = time.perf_counter()
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            [*command, "--output_file", str(output)], cwd=project, env=env, stdout=handle, stderr=handle
        )
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"predict failed:\n{log.read_text()[-3000:]}")
    return {"seconds": round(seconds, 1), "peak_rss_kib": usage.ru_maxrss}


def run_size(project: Path, model: Path, rows: int, tmp: Path) -> dict:
    import pyarrow.parquet as pq

    rows_file, output = tmp / f"rows-{rows}.jsonl", tmp / f"predictions-{rows}.parquet"
    write_rows(rows_file, rows)
    result = measure(project, model, rows_file, output, tmp / f"cache-{rows}")
    written = pq.ParquetFile(output).metadata.num_rows
    if written != rows:
        raise SystemExit(f"{rows} rows in, {written} predictions out")
    rows_file.unlink()
    output.unlink()
    return {
        "rows": rows,
        "seconds": result["seconds"],
        "rows_per_second": round(rows / result["seconds"], 1),
        "peak_rss_mib": round(result["peak_rss_kib"] / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="100000,1000000", help="Sizes, comma-separated; the first is the baseline.")
    parser.add_argument(
        "--project", default=str(ROOT), help="The checkout whose `trainer.cli` runs (compare versions)."
    )
    parser.add_argument("--output")
    parser.add_argument("--smoke", action="store_true", help="1,000 and 5,000 rows.")
    args = parser.parse_args()
    sizes = [1000, 5000] if args.smoke else [int(value) for value in args.rows.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        build_classifier(tmp / "classifier")
        runs = []
        for rows in sizes:
            runs.append(run_size(Path(args.project), tmp / "classifier", rows, tmp))
            print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    base = runs[0]
    report = {
        "project": str(Path(args.project).resolve()),
        "model": "tiny random llama (hidden 32, 2 layers), exported; byte-level tokenizer",
        "output": "parquet",
        "runs": runs,
        "peak_rss_ratio_to_first": {
            str(run["rows"]): round(run["peak_rss_mib"] / base["peak_rss_mib"], 3) for run in runs
        },
        "rows_per_second_ratio_to_first": {
            str(run["rows"]): round(run["rows_per_second"] / base["rows_per_second"], 3) for run in runs
        },
    }
    print(json.dumps(report, indent=2))
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
