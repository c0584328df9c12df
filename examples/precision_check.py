"""What bf16 changes: `dhrd predict` on the same model and rows in float32 and in bfloat16, side by side, one run.

Each precision runs end to end in a fresh process (`--dtype float32`, `--dtype bfloat16`) on this machine. Reported:
seconds and rows/s of each, the rows whose top label agrees, the largest probability difference, and whether this
machine computes bf16 natively (`trainer.device.native_bf16`: where it does, `--dtype auto` is bf16).

    python examples/precision_check.py --model runs/esnli --test_file W/test.jsonl --task esnli \\
        --data_dir ../shared/data --output docs/benchmarks/precision_esnli.json
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="A DHRD checkpoint or an export.")
    parser.add_argument("--output")
    args, data = parser.parse_known_args()  # the rest: `dhrd predict`'s data description, as given
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("DHRD_DTYPE", None)
    runs, probs = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in ("float32", "bfloat16"):
            output = Path(tmp) / f"{dtype}.jsonl"
            command = [sys.executable, "-m", "trainer.cli", "predict", "--model", args.model, *data,
                       "--output_file", str(output), "--dtype", dtype, "--device", "cpu"]  # fmt: skip
            start = time.perf_counter()
            completed = subprocess.run(command, capture_output=True, text=True, env=env)
            seconds = time.perf_counter() - start
            if completed.returncode != 0:
                raise SystemExit(completed.stderr[-3000:])
            records = [json.loads(line) for line in output.read_text().splitlines()]
            probs[dtype] = [record["probs"] for record in records]
            runs[dtype] = {"seconds": round(seconds, 2), "rows_per_second": round(len(records) / seconds, 2)}
    from trainer.device import native_bf16

    exact, fast = probs["float32"], probs["bfloat16"]
    agree = sum(max(a, key=a.get) == max(b, key=b.get) for a, b in zip(exact, fast))
    report = {
        "model": args.model,
        "rows": len(exact),
        "native_bf16_here": native_bf16(),
        "runs": runs,
        "bf16_speedup": round(runs["bfloat16"]["rows_per_second"] / runs["float32"]["rows_per_second"], 2),
        "top_label_agrees": f"{agree}/{len(exact)}",
        "agreement": round(agree / len(exact), 4),
        "max_abs_prob_diff": round(max(abs(a[k] - b[k]) for a, b in zip(exact, fast) for k in a), 4),
    }
    print(json.dumps(report, indent=2))
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
