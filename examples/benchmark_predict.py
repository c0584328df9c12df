"""Batch prediction benchmark: `dhrd predict` against `transformers.pipeline("text-classification")`, one run.

Same exported classifier (the embedded SmolLM2 with a DHRD head, exported as a native
`LlamaForSequenceClassification`), same inputs, same truncation, same machine. The inputs are real and
length-skewed: MultiRC paragraphs (long) mixed with CB, COPA and RTE inputs (short), shuffled with a fixed seed,
as a user's mixed data would come. Each configuration runs in a fresh process (end to end: load the model, read the
inputs, write the predictions), which
reports its own wall time and peak memory (max RSS); the best batch setting of each side is compared:

- `pipeline_b{B}`: `pipeline(..., batch_size=B, truncation=True, max_length=L, top_k=None)` over the texts in their
  order (the pipeline pads each batch to its longest input);
- `predict_t{T}`: `dhrd predict --max_batch_tokens T` (token-budget batches over length-sorted inputs).

Predictions of the best pipeline and the best `dhrd predict` run are compared (top label and max probability
difference). Prints JSON and writes it to `--output`. With `--runs-dir`, each configuration's timing and
probabilities are kept there and a rerun measures only the configurations not there yet.

    python examples/benchmark_predict.py --data-dir ../shared/data --rows 2000 --output docs/benchmarks/predict.json
    python examples/benchmark_predict.py --smoke      # seconds, a tiny random model (CI)
"""

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MAX_INPUT_LENGTH = 512


def mixed_texts(data_dir: str, rows: int, long_share: float, seed: int) -> list[str]:
    from trainer.tasks import get_task

    rng = random.Random(seed)
    long_texts = get_task("multirc").load("val", data_dir)["text"]
    short_texts = [text for name in ("cb", "copa", "rte") for text in get_task(name).load("train", data_dir)["text"]]
    n_long = int(rows * long_share)
    texts = rng.sample(long_texts, n_long) + rng.sample(short_texts, rows - n_long)
    rng.shuffle(texts)
    return texts


def build_classifier(folder: Path, smoke: bool) -> None:
    import torch
    from transformers import AutoTokenizer

    from modeling_dhrd import DHRDForSequenceClassification, export_classifier
    from trainer.embedded import embedded_backbone_path

    torch.manual_seed(0)
    if smoke:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from conftest import make_tokenizer, tiny_dhrd

        model, tokenizer = tiny_dhrd("llama", num_labels=3), make_tokenizer()
    else:
        backbone = str(embedded_backbone_path())
        model = DHRDForSequenceClassification.from_backbone(backbone, num_labels=3)
        tokenizer = AutoTokenizer.from_pretrained(backbone)
    export_classifier(model, folder, tokenizer)


def worker(kind: str, value: int, model: str, texts_file: str, output: str) -> dict:
    """One configuration, end to end, in this process."""
    start = time.perf_counter()
    if kind == "pipeline":
        from transformers import pipeline

        texts = [json.loads(line)["text"] for line in Path(texts_file).read_text().splitlines()]
        classifier = pipeline("text-classification", model=model, device="cpu")
        results = classifier(texts, batch_size=value, truncation=True, max_length=MAX_INPUT_LENGTH, top_k=None)
        names = [classifier.model.config.id2label[i] for i in range(classifier.model.config.num_labels)]
        probs = [[{r["label"]: r["score"] for r in result}[name] for name in names] for result in results]
        Path(output).write_text(json.dumps(probs))
    else:
        from trainer.cli.predict import PredictArguments, run_predict
        from trainer.data.description import DatasetArguments
        from trainer.device import DeviceArguments

        run_predict(
            PredictArguments(
                model=model,
                output_file=output,
                max_batch_tokens=value,
                max_input_length=MAX_INPUT_LENGTH,
                overwrite=True,
            ),
            DatasetArguments(test_file=texts_file),
            DeviceArguments("cpu", "float32"),  # the pipeline's precision: the comparison stays float32 to float32
        )
    seconds = time.perf_counter() - start
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def same_top_labels(first: list[list[float]], second: list[list[float]]) -> int:
    """The rows whose most probable class is the same in two runs' probabilities (rows in the same order)."""
    return sum(
        max(range(len(a)), key=a.__getitem__) == max(range(len(b)), key=b.__getitem__) for a, b in zip(first, second)
    )


def read_probs(kind: str, path: Path) -> list[list[float]]:
    if kind == "pipeline":
        return json.loads(path.read_text())
    return [list(json.loads(line)["probs"].values()) for line in path.read_text().splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.environ.get("DHRD_DATA_DIR", "../shared/data"))
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--long-share", type=float, default=0.25, help="Share of MultiRC paragraphs.")
    parser.add_argument("--batch-sizes", default="1,8,32", help="Pipeline batch sizes.")
    parser.add_argument("--token-budgets", default="4096,16384", help="dhrd predict --max_batch_tokens values.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output")
    parser.add_argument(
        "--runs-dir", help="Keep each configuration's timing and probabilities here; configurations found are reused."
    )
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, value, model, texts_file, output = args.worker
        print(json.dumps(worker(kind, int(value), model, texts_file, output)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        runs_dir = Path(args.runs_dir) if args.runs_dir else tmp / "runs"
        runs_dir.mkdir(parents=True, exist_ok=True)
        if args.smoke:
            texts = [" ".join(["word"] * (5 + (i * 37) % 120)) for i in range(48)]
            args.batch_sizes, args.token_budgets = "1,8", "512,2048"
        else:
            texts = mixed_texts(args.data_dir, args.rows, args.long_share, args.seed)
        texts_file = tmp / "texts.jsonl"
        texts_file.write_text("".join(json.dumps({"text": text}) + "\n" for text in texts))
        build_classifier(tmp / "classifier", args.smoke)
        configs = [("pipeline", int(b)) for b in args.batch_sizes.split(",")]
        configs += [("predict", int(t)) for t in args.token_budgets.split(",")]
        runs, probs = {}, {}
        for kind, value in configs:
            name = f"{kind}_{'b' if kind == 'pipeline' else 't'}{value}"
            result, output = (
                runs_dir / f"{name}.json",
                runs_dir / f"{name}.probs.{'json' if kind == 'pipeline' else 'jsonl'}",
            )
            if not (result.is_file() and output.is_file()):  # a configuration measured before (--runs-dir) is kept
                command = [sys.executable, __file__, "--worker", kind, str(value), str(tmp / "classifier")]
                completed = subprocess.run(
                    [*command, str(texts_file), str(output)], capture_output=True, text=True, check=False
                )
                if completed.returncode != 0:
                    raise SystemExit(f"{name} failed:\n{completed.stderr[-3000:]}")
                result.write_text(completed.stdout.strip().splitlines()[-1] + "\n")
            runs[name] = json.loads(result.read_text())
            runs[name]["rows_per_second"] = round(len(texts) / runs[name]["seconds"], 2)
            probs[name] = read_probs(kind, output)
            print(name, runs[name], file=sys.stderr, flush=True)
        best = {
            kind: max((name for name in runs if name.startswith(kind)), key=lambda n: runs[n]["rows_per_second"])
            for kind in ("pipeline", "predict")
        }
        pipe, ours = probs[best["pipeline"]], probs[best["predict"]]
        same_label = same_top_labels(pipe, ours)
        report = {
            "rows": len(texts),
            "long_share": None if args.smoke else args.long_share,
            "max_input_length": MAX_INPUT_LENGTH,
            "model": "tiny random llama" if args.smoke else "SmolLM2-135M-Instruct + DHRD head, exported",
            "threads": __import__("torch").get_num_threads(),
            "runs": runs,
            "best": best,
            "speedup_predict_over_pipeline": round(
                runs[best["predict"]]["rows_per_second"] / runs[best["pipeline"]]["rows_per_second"], 2
            ),
            "same_top_label": f"{same_label}/{len(texts)}",
            "max_abs_prob_diff": max(abs(x - y) for a, b in zip(pipe, ours) for x, y in zip(a, b)),
        }
    print(json.dumps(report, indent=2))
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
