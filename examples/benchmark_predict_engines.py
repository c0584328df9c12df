"""`dhrd predict` against `pipeline("text-classification")` and vLLM's pooling runner, float32 and bf16, one run.

Same exported classifier (the embedded SmolLM2 with a DHRD head, exported as a native classifier), the same
length-skewed real inputs as `benchmark_predict.py` (MultiRC paragraphs among CB, COPA and RTE inputs), the same
truncation (512 tokens), the same machine; each configuration in a fresh process. Reported per configuration: wall
seconds from the model's load to the last prediction (vLLM: also its engine's own time, start-up excluded), rows/s,
tokens/s, the achieved GFLOP/s (2 x the backbone's non-embedding parameters a token, attention left out) and that as a
share of this machine's measured matmul peak in the same precision (`matmul_peak_gflops`, the same threads),
and the top-label agreement with `dhrd predict` in float32.

    python examples/benchmark_predict_engines.py --data-dir ../shared/data --rows 200 \\
        --output docs/benchmarks/predict_engines.json
    python examples/benchmark_predict_engines.py --smoke   # seconds, a tiny random model, no vLLM
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

ROOT = Path(__file__).resolve().parent.parent
SERVING_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"


def worker(kind: str, dtype: str, batch: int, model: str, texts_file: str, output: str) -> dict:
    """One configuration in this process: the model's load to the last prediction."""
    import torch

    start = time.perf_counter()
    if kind == "pipeline":
        from transformers import pipeline

        texts = [json.loads(line)["text"] for line in Path(texts_file).read_text().splitlines()]
        classifier = pipeline("text-classification", model=model, device="cpu", dtype=getattr(torch, dtype))
        results = classifier(texts, batch_size=batch, truncation=True, max_length=MAX_INPUT_LENGTH, top_k=None)
        names = [classifier.model.config.id2label[i] for i in range(classifier.model.config.num_labels)]
        probs = [[{r["label"]: r["score"] for r in result}[name] for name in names] for result in results]
    else:
        from trainer.cli.predict import PredictArguments, run_predict
        from trainer.data.description import DatasetArguments
        from trainer.device import DeviceArguments

        predictions = Path(output).with_suffix(".jsonl")
        arguments = PredictArguments(model=model, output_file=str(predictions), max_batch_tokens=batch,
                                     max_input_length=MAX_INPUT_LENGTH, overwrite=True)  # fmt: skip
        run_predict(arguments, DatasetArguments(test_file=texts_file), DeviceArguments("cpu", dtype))
        probs = [list(json.loads(line)["probs"].values()) for line in predictions.read_text().splitlines()]
    seconds = time.perf_counter() - start
    Path(output).write_text(json.dumps(probs))
    return {"seconds": round(seconds, 2)}


def run_vllm(model: Path, texts_file: Path, dtype: str, output: Path, work: Path) -> dict:
    """vLLM's pooling runner (`examples/serving/vllm_classify.py`) in the serving environment: the whole process's
    wall time and the engine's own (start-up excluded)."""
    texts = [json.loads(line)["text"] for line in texts_file.read_text().splitlines()]
    (work / "texts.json").write_text(json.dumps(texts))
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "2", "VLLM_CACHE_ROOT": str(work / "vllm-cache"),
           "TORCHINDUCTOR_CACHE_DIR": str(work / "inductor"), "HF_HUB_OFFLINE": "1"}  # fmt: skip
    start = time.perf_counter()
    completed = subprocess.run(
        [str(SERVING_PYTHON), str(ROOT / "examples" / "serving" / "vllm_classify.py"), str(model),
         str(work / "texts.json"), "--dtype", dtype, "--output", str(work / "vllm.json")],
        capture_output=True, text=True, env=env, cwd=work,
    )  # fmt: skip
    wall = time.perf_counter() - start
    if completed.returncode != 0 or not (work / "vllm.json").is_file():
        raise SystemExit(f"vLLM failed:\n{completed.stderr[-3000:]}")
    result = json.loads((work / "vllm.json").read_text())
    output.write_text(json.dumps(result["probs"]))
    return {"seconds": round(result["seconds"], 2), "process_seconds": round(wall, 2)}


def matmul_peak_gflops(dtype: str, hidden: int, intermediate: int) -> float:
    """The best GFLOP/s of this machine's matrix products in `dtype` (best of 5 each): a 1024^3 product and the
    model's own MLP shape on 2,048 tokens (`F.linear`, the path the layers take; in bf16 it is the faster one)."""
    import torch

    kind = getattr(torch, dtype)
    products = {
        "matmul_1024": (lambda a, b: a @ b, (1024, 1024), (1024, 1024), 2 * 1024**3),
        "linear_mlp": (
            torch.nn.functional.linear,
            (2048, hidden),
            (intermediate, hidden),
            2 * 2048 * hidden * intermediate,
        ),
    }
    best_rate = 0.0
    for product, a_shape, b_shape, flops in products.values():
        a, b = torch.randn(*a_shape, dtype=kind), torch.randn(*b_shape, dtype=kind)
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            product(a, b)
            best = min(best, time.perf_counter() - start)
        best_rate = max(best_rate, flops / best / 1e9)
    return best_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.environ.get("DHRD_DATA_DIR", "../shared/data"))
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--long-share", type=float, default=0.25)
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--pipeline-batches", default="1,8")
    parser.add_argument("--token-budget", type=int, default=4096)
    parser.add_argument("--no-vllm", action="store_true", help="Leave vLLM out (it needs `make serving-env`).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, dtype, batch, model, texts_file, output = args.worker
        print(json.dumps(worker(kind, dtype, int(batch), model, texts_file, output)))
        return
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    use_vllm = not (args.no_vllm or args.smoke) and SERVING_PYTHON.is_file()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.smoke:
            texts = [" ".join(["word"] * (5 + (i * 37) % 120)) for i in range(32)]
            args.pipeline_batches, args.token_budget = "1", 1024
        else:
            texts = mixed_texts(args.data_dir, args.rows, args.long_share, args.seed)
        texts_file = tmp / "texts.jsonl"
        texts_file.write_text("".join(json.dumps({"text": text}) + "\n" for text in texts))
        build_classifier(tmp / "classifier", args.smoke)
        tokenizer = AutoTokenizer.from_pretrained(tmp / "classifier")
        tokens = sum(len(ids) for ids in tokenizer(texts, truncation=True, max_length=MAX_INPUT_LENGTH)["input_ids"])
        model = AutoModelForSequenceClassification.from_pretrained(tmp / "classifier")
        embeddings = model.get_input_embeddings().weight.numel()
        flops_per_token = 2 * (sum(p.numel() for p in model.parameters()) - embeddings)
        hidden, intermediate = model.config.hidden_size, model.config.intermediate_size
        del model
        runs, probs, peaks = {}, {}, {}
        for dtype in args.dtypes.split(","):
            peaks[dtype] = round(matmul_peak_gflops(dtype, hidden, intermediate), 1)
            configs = [("predict", args.token_budget)] + [
                ("pipeline", int(b)) for b in args.pipeline_batches.split(",")
            ]
            configs += [("vllm", 0)] if use_vllm else []
            for kind, batch in configs:
                name = f"{kind}_{dtype}" + (f"_b{batch}" if kind == "pipeline" else "")
                output = tmp / f"{name}.json"
                if kind == "vllm":
                    runs[name] = run_vllm(tmp / "classifier", texts_file, dtype, output, tmp)
                else:
                    command = [sys.executable, __file__, "--worker", kind, dtype, str(batch), str(tmp / "classifier"),
                               str(texts_file), str(output)]  # fmt: skip
                    completed = subprocess.run(command, capture_output=True, text=True)
                    if completed.returncode != 0:
                        raise SystemExit(f"{name} failed:\n{completed.stderr[-3000:]}")
                    runs[name] = json.loads(completed.stdout.strip().splitlines()[-1])
                seconds = runs[name]["seconds"]
                gflops = flops_per_token * tokens / seconds / 1e9
                # three significant digits: a tiny smoke model's few MFLOP/s must not round to zero
                runs[name].update(rows_per_second=round(len(texts) / seconds, 2),
                                  tokens_per_second=round(tokens / seconds, 1), gflops=float(f"{gflops:.3g}"),
                                  share_of_matmul_peak=float(f"{gflops / peaks[dtype]:.3g}"))  # fmt: skip
                probs[name] = json.loads(output.read_text())
                print(name, runs[name], file=sys.stderr, flush=True)
    reference = probs[f"predict_{args.dtypes.split(',')[0]}"]
    for name, rows in probs.items():
        runs[name]["top_label_as_predict_float32"] = f"{same_top_labels(reference, rows)}/{len(rows)}"
    ratios = {}
    for dtype in args.dtypes.split(","):
        ours = runs[f"predict_{dtype}"]["rows_per_second"]
        pipelines = [run["rows_per_second"] for name, run in runs.items() if name.startswith(f"pipeline_{dtype}")]
        ratios[f"predict_over_best_pipeline_{dtype}"] = round(ours / max(pipelines), 2)
        if f"vllm_{dtype}" in runs:
            ratios[f"predict_over_vllm_{dtype}"] = round(ours / runs[f"vllm_{dtype}"]["rows_per_second"], 2)
    report = {
        "rows": len(texts),
        "tokens": tokens,
        "model": "tiny random llama" if args.smoke else "SmolLM2-135M-Instruct + DHRD head, exported",
        "threads": torch.get_num_threads(),
        "gflop_per_token": float(f"{flops_per_token / 1e9:.3g}"),
        "matmul_peak_gflops": peaks,
        "runs": runs,
        "ratios": ratios,
    }
    print(json.dumps(report, indent=2))
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
