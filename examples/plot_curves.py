"""Data-efficiency curves from accuracy-study JSON files (`examples/accuracy_study.py --train-rows 100,200,400`):
accuracy against training rows per condition (mean ± std over seeds), and the paired differences that the seeds
make fair (DHRD − pooled, shuffled − pooled, DHRD − shuffled, same seed and size), as a markdown table and a PNG.

    python examples/plot_curves.py docs/results/esnli_curve.json docs/results/esnli.json \\
        docs/results/esnli_shuffled.json docs/results/esnli_shuffled_s12.json \\
        --metric heldout/accuracy --png docs/esnli_curve.png

Files of single-size studies count as one point (their size is the report's `train_rows`), so an existing table
(e-SNLI at 1,600 rows) joins the curve when its protocol matches; the table lists the files it read.
"""

import argparse
import json
import statistics
from pathlib import Path

PAIRS = (("dhrd", "pooled"), ("dhrd_shuffled", "pooled"), ("dhrd", "dhrd_shuffled"))


def collect(paths: list[str], metric: str) -> dict[int, dict[str, dict[int, float]]]:
    """{train rows: {condition: {seed: value}}} over every run that has `metric` (`evaluation/metric`)."""
    evaluation, name = metric.split("/")
    points: dict[int, dict[str, dict[int, float]]] = {}
    for path in paths:
        report = json.loads(Path(path).read_text())
        for run in report["runs"]:
            value = run["scores"].get(evaluation, {}).get(name)
            size = run.get("train_rows", report["train_rows"])
            if value is not None:
                points.setdefault(int(size), {}).setdefault(run["condition"], {})[run["seed"]] = value
    return dict(sorted(points.items()))


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def paired(conditions: dict[str, dict[int, float]], a: str, b: str) -> list[float]:
    """Points `a − b` of the seeds both conditions ran."""
    if a not in conditions or b not in conditions:
        return []
    return [100 * (conditions[a][s] - conditions[b][s]) for s in sorted(conditions[a]) if s in conditions[b]]


def markdown(points: dict[int, dict[str, dict[int, float]]]) -> str:
    names = sorted({c for conditions in points.values() for c in conditions}, key=lambda c: (c != "pooled", c))
    pairs = [p for p in PAIRS if any(paired(conditions, *p) for conditions in points.values())]
    header = ["rows", *names, *[f"{a} − {b} (points)" for a, b in pairs]]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for size, conditions in points.items():
        cells = [str(size)]
        for name in names:
            values = list(conditions.get(name, {}).values())
            mean, std = _mean_std(values) if values else (None, None)
            cells.append(f"{mean:.3f} ± {std:.3f} (n={len(values)})" if values else "—")
        for a, b in pairs:
            deltas = paired(conditions, a, b)
            if deltas:
                mean, std = _mean_std(deltas)
                ahead = sum(d > 0 for d in deltas)
                cells.append(f"{mean:+.1f} ± {std:.1f} ({ahead}/{len(deltas)} seeds ahead)")
            else:
                cells.append("—")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(points: dict[int, dict[str, dict[int, float]]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"pooled": "#999999", "dhrd": "#d9822b", "dhrd_shuffled": "#4a7ab5", "dhrd_human": "#5a9e4b"}
    figure, axis = plt.subplots(figsize=(5.5, 3.8))
    names = sorted({c for conditions in points.values() for c in conditions}, key=lambda c: (c != "pooled", c))
    for name in names:
        sizes = [size for size, conditions in points.items() if name in conditions]
        stats = [_mean_std(list(points[size][name].values())) for size in sizes]
        axis.errorbar(
            sizes,
            [m for m, _ in stats],
            yerr=[s for _, s in stats],
            label=name,
            marker="o",
            capsize=3,
            color=colours.get(name),
        )
    axis.set_xscale("log")
    axis.set_xticks(list(points), [str(size) for size in points])
    axis.set_xlabel("training rows")
    axis.set_ylabel("accuracy (mean ± std over seeds)")
    axis.set_title(title)
    axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+")
    parser.add_argument("--metric", default="heldout/accuracy", help="evaluation/metric")
    parser.add_argument("--png", default=None, help="write the plot here")
    parser.add_argument("--title", default="accuracy vs training rows")
    args = parser.parse_args()
    points = collect(args.files, args.metric)
    if not points:
        raise SystemExit(f"no run in {args.files} has the metric {args.metric!r}")
    print(markdown(points))
    if args.png:
        plot(points, Path(args.png), args.title)
        print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
