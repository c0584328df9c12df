"""The teacher online and through batch files, side by side, one run: `dhrd rationales` against a vLLM server, and
`--write_batch` -> vLLM `run-batch` -> `--read_batch`, on the same rows, the same served teacher (the embedded
SmolLM2), the same machine.

Reported: wall seconds of each step (the server's start and the batch runner's model load are counted, as a user
waits for them), rows/s, the statuses of each path, the rows whose rationale is the same text on both paths, and the
tokens each path counted. Needs the serving environment (`make serving-env`).

    python examples/benchmark_batch_files.py --task rte --data-dir ../shared/data --rows 64 \\
        --output docs/benchmarks/batch_files.json
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def timed(command: list[str], env: dict | None = None) -> float:
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(command[:6])} ... failed:\n{completed.stdout[-2000:]}{completed.stderr[-3000:]}")
    return round(time.perf_counter() - start, 2)


def main() -> None:
    from conftest import _embedded
    from serving import VllmServer, serving_env, serving_python

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="rte")
    parser.add_argument("--data-dir", default=os.environ.get("DHRD_DATA_DIR", "../shared/data"))
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--output")
    args = parser.parse_args()
    teacher = _embedded("smollm2-135m-instruct")
    vllm = ("--dtype", "bfloat16", "--max-model-len", "2048", "--enforce-eager")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = [sys.executable, "-m", "trainer.cli", "rationales", "--task", args.task, "--data_dir", args.data_dir,
                "--limit", str(args.rows), "--server_model", "smollm2", "--max_new_tokens",
                str(args.max_new_tokens)]  # fmt: skip
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        start = time.perf_counter()
        server = VllmServer(teacher, tmp, "smollm2", vllm).start()
        server_start = round(time.perf_counter() - start, 2)
        try:
            online = timed([*data, "--output_dir", str(tmp / "online"), "--server_url", f"{server.base_url}/v1",
                            "--concurrency", "8"], env)  # fmt: skip
        finally:
            server.kill()
        steps = {
            "write_batch": timed([*data, "--output_dir", str(tmp / "batch"), "--write_batch",
                                  str(tmp / "requests.jsonl")], env),  # fmt: skip
            "vllm_run_batch": timed([serving_python(), "-m", "vllm.entrypoints.openai.run_batch", "-i",
                                     str(tmp / "requests.jsonl"), "-o", str(tmp / "results.jsonl"), "--model",
                                     str(teacher), "--served-model-name", "smollm2", *vllm], serving_env(tmp)),
            "read_batch": timed([*data, "--output_dir", str(tmp / "batch"), "--read_batch",
                                 str(tmp / "results.jsonl")], env),  # fmt: skip
        }  # fmt: skip
        rows = {name: [json.loads(line) for line in (tmp / name / "rationales.jsonl").read_text().splitlines()]
                for name in ("online", "batch")}  # fmt: skip
        summaries = {name: json.loads((tmp / name / "summary.json").read_text()) for name in ("online", "batch")}
    same_text = sum(a["rationale_status"] == b["rationale_status"] and a.get("rationale") == b.get("rationale")
                    for a, b in zip(rows["online"], rows["batch"]))  # fmt: skip
    batch_seconds = round(sum(steps.values()), 2)
    report = {
        "task": args.task,
        "rows": args.rows,
        "teacher": "SmolLM2-135M-Instruct (embedded), vLLM CPU, bf16, greedy",
        "online": {
            "server_start_seconds": server_start,
            "client_seconds": online,
            "rows_per_second": round(args.rows / online, 2),
        },  # fmt: skip
        "batch_files": {**steps, "seconds": batch_seconds, "rows_per_second": round(args.rows / batch_seconds, 2)},
        "statuses": {name: {"kept": s["kept"], **s["filtered"]} for name, s in summaries.items()},
        "tokens": {
            name: {"prompt": s["prompt_tokens"], "completion": s["completion_tokens"]} for name, s in summaries.items()
        },  # fmt: skip
        "same_rationale_and_status": f"{same_text}/{args.rows}",
        "cpu": os.cpu_count(),
    }
    print(json.dumps(report, indent=2))
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
