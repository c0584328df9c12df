"""Render accuracy-study JSON files (`examples/accuracy_study.py`) as one markdown table: per-seed scores, mean ±
std, and the paired difference to the pooled baseline of the same seed (the comparison the seeds make fair).

    python examples/results_table.py docs/results/esnli.json docs/results/esnli_shuffled.json --metric heldout/accuracy
"""

import argparse
import json
import statistics
from pathlib import Path


def collect(paths: list[str], metric: str) -> dict[str, dict[int, float]]:
    """{condition: {seed: value}} over every run of every file that has `metric` (`evaluation/metric`)."""
    evaluation, name = metric.split("/")
    table: dict[str, dict[int, float]] = {}
    for path in paths:
        for run in json.loads(Path(path).read_text())["runs"]:
            value = run["scores"].get(evaluation, {}).get(name)
            if value is not None:
                table.setdefault(run["condition"], {})[run["seed"]] = value
    return table


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def markdown(table: dict[str, dict[int, float]], baseline: str = "pooled") -> str:
    seeds = sorted({seed for values in table.values() for seed in values})
    header = ["condition", *[f"seed {s}" for s in seeds], "mean ± std", f"paired Δ vs {baseline} (points)"]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for condition, values in table.items():
        cells = [f"{values[s]:.3f}" if s in values else "" for s in seeds]
        mean, std = _mean_std(list(values.values()))
        paired = [100 * (values[s] - table[baseline][s]) for s in values if s in table.get(baseline, {})]
        delta = ""
        if paired and condition != baseline:
            paired_mean, paired_std = _mean_std(paired)
            delta = f"{paired_mean:+.1f} ± {paired_std:.1f} (n={len(paired)})"
        lines.append(f"| {condition} | " + " | ".join(cells) + f" | {mean:.3f} ± {std:.3f} | {delta} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+")
    parser.add_argument("--metric", default="val/accuracy", help="evaluation/metric, e.g. heldout/accuracy")
    parser.add_argument("--baseline", default="pooled")
    args = parser.parse_args()
    print(markdown(collect(args.files, args.metric), args.baseline))


if __name__ == "__main__":
    main()
