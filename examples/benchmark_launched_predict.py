"""`dhrd predict` on one process and on several (`torchrun --nproc_per_node N`), side by side, one run.

Same exported classifier (the embedded SmolLM2 with a DHRD head, exported as a native classifier), same
length-skewed real inputs as `benchmark_predict.py` (MultiRC paragraphs among CB, COPA and RTE inputs), same machine.
Each configuration runs end to end in fresh processes (load, read, predict, write); the threads are split so every
configuration uses the same cores: one process with T threads, N processes with T / N threads each. Reported: wall
seconds, rows/s, the peak RSS of each process (sampled from /proc: `VmHWM` of the launcher's processes), and whether
the outputs agree with the one-process run (labels, largest probability difference).

    python examples/benchmark_launched_predict.py --data-dir ../shared/data --rows 400 \
        --output docs/benchmarks/launched_predict.json
    python examples/benchmark_launched_predict.py --smoke      # seconds, a tiny random model (CI)
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark_predict import MAX_INPUT_LENGTH, build_classifier, mixed_texts, same_top_labels  # noqa: E402


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (torchrun's ranks run in sessions of their own, under the launcher)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
    found, frontier = [pid], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        found += frontier
    return found


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run(command: list[str], threads: int) -> dict:
    """Run `command` to its end; its wall time and the peak RSS of each of its processes (sampled every 0.1 s)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peaks: dict[int, float] = {}
    while process.poll() is None:
        for pid in descendants(process.pid):
            rss = peak_rss_mb(pid)
            if rss is not None:
                peaks[pid] = max(peaks.get(pid, 0.0), rss)
        time.sleep(0.1)
    seconds = time.perf_counter() - start
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{stderr[-3000:]}")
    workers = sorted(round(rss) for pid, rss in peaks.items() if pid != process.pid or len(peaks) == 1)
    return {"seconds": round(seconds, 2), "peak_rss_mb_per_process": workers}


def probabilities(path: Path) -> list[list[float]]:
    return [list(json.loads(line)["probs"].values()) for line in path.read_text().splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.environ.get("DHRD_DATA_DIR", "../shared/data"))
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--long-share", type=float, default=0.25)
    parser.add_argument("--processes", default="2", help="Process counts to run besides one process.")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="Threads in all, per configuration.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.smoke:
            texts = [" ".join(["word"] * (5 + (i * 37) % 120)) for i in range(48)]
        else:
            texts = mixed_texts(args.data_dir, args.rows, args.long_share, args.seed)
        (tmp / "texts.jsonl").write_text("".join(json.dumps({"text": text}) + "\n" for text in texts))
        build_classifier(tmp / "classifier", args.smoke)
        predict = ["-m", "trainer.cli", "predict", "--model", str(tmp / "classifier"), "--device", "cpu",
                   "--test_file", str(tmp / "texts.jsonl"), "--max_input_length", str(MAX_INPUT_LENGTH),
                   "--dtype", "float32"]  # fmt: skip
        runs, outputs = {}, {}
        for processes in [1, *(int(n) for n in args.processes.split(","))]:
            name, output = f"{processes}_process", tmp / f"p{processes}.jsonl"
            launcher = (
                [sys.executable]
                if processes == 1
                else [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes)]
            )
            threads = max(1, args.threads // processes)
            runs[name] = {"threads_per_process": threads, **run([*launcher, *predict, "--output_file", str(output)],
                                                                 threads)}  # fmt: skip
            runs[name]["rows_per_second"] = round(len(texts) / runs[name]["seconds"], 2)
            outputs[name] = probabilities(output)
            print(name, runs[name], file=sys.stderr, flush=True)
        one = outputs["1_process"]
        for name, probs in outputs.items():
            runs[name]["speedup_over_one_process"] = round(
                runs[name]["rows_per_second"] / runs["1_process"]["rows_per_second"], 2
            )
            runs[name]["same_top_label"] = same_top_labels(one, probs)
            runs[name]["max_abs_prob_diff"] = max(abs(x - y) for a, b in zip(one, probs) for x, y in zip(a, b))
        report = {
            "rows": len(texts),
            "model": "tiny random llama" if args.smoke else "SmolLM2-135M-Instruct + DHRD head, exported, fp32",
            "threads_in_all": args.threads,
            "cpu": os.cpu_count(),
            "runs": runs,
        }
    print(json.dumps(report, indent=2))
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
