"""Inference benchmark: DHRD's classifier against the native pooled classifier and CoT decoding, one run.

Same backbone, same dtype, same machine, same inputs (a real task's validation inputs):
- `dhrd_exported`: the exported DHRD classifier, loaded as a native `*ForSequenceClassification`;
- `dhrd_model`: the DHRD model before export (reasoning head still attached, unused at inference);
- `native_pooled`: transformers' own `AutoModelForSequenceClassification` on the backbone;
- `cot_eos`: CoT decoding ("think step by step", chat template, KV cache, batched greedy) up to the paper's 500 new
  tokens, stopping at eos (the mean generated length is reported);
- `cot_fixed`: the same with exactly `--cot-fixed-tokens` new tokens, so the ratio is reproducible.

Classifier batches sort inputs by length to cut padding (the padding fraction is reported). Output: JSON, a
markdown table and a PNG, with the ratios DHRD/CoT and DHRD/pooled.

With `--vllm` (after `make serving-env`) the same run also serves the exported classifier with vLLM's pooling
runner and CoT decoding with vLLM's generator (continuous batching over all inputs), next to transformers.

    python examples/benchmark_inference.py --task rte --data-dir ../shared/data --output-dir docs/benchmarks
    python examples/benchmark_inference.py --random-weights --config llama-3.1-8b --device cuda   # paper scale
    python examples/benchmark_inference.py --smoke                                              # seconds (CI)
"""

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from trainer.embedded import BACKBONE_HELP

RANDOM_CONFIGS = {
    "llama-3.1-8b": dict(
        model_type="llama",
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
        rope_theta=500000.0,
        max_position_embeddings=8192,
        tie_word_embeddings=False,
    ),
    "llama-3.2-3b": dict(
        model_type="llama",
        hidden_size=3072,
        intermediate_size=8192,
        num_hidden_layers=28,
        num_attention_heads=24,
        num_key_value_heads=8,
        vocab_size=128256,
        rope_theta=500000.0,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
    ),
    "qwen3-8b": dict(
        model_type="qwen3",
        hidden_size=4096,
        intermediate_size=12288,
        num_hidden_layers=36,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=128,
        vocab_size=151936,
        max_position_embeddings=8192,
        tie_word_embeddings=False,
    ),
    "smoke": dict(
        model_type="llama",
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=49152,
        tie_word_embeddings=True,
    ),
}


def build_models(args, label_names, workdir: Path):
    """(backbone folder, tokenizer, DHRD model, exported folder) for the chosen backbone."""
    from modeling_dhrd import DHRDForSequenceClassification, export_classifier
    from trainer.embedded import resolve_backbone

    dtype = getattr(torch, args.dtype)
    tokenizer_source = resolve_backbone(args.model)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    if args.random_weights:
        spec = dict(RANDOM_CONFIGS[args.config])
        config = AutoConfig.for_model(spec.pop("model_type"), **spec)
        torch.manual_seed(0)
        with torch.device(args.device):
            causal_lm = AutoModelForCausalLM.from_config(config, dtype=dtype)
        backbone = workdir / "backbone"
        causal_lm.save_pretrained(backbone)
        tokenizer.save_pretrained(backbone)
        del causal_lm
    else:
        backbone = Path(tokenizer_source)
    torch.manual_seed(0)
    dhrd = (
        DHRDForSequenceClassification.from_backbone(str(backbone), id2label=dict(enumerate(label_names)), dtype=dtype)
        .to(args.device)
        .eval()
    )
    exported = workdir / "exported"
    export_classifier(dhrd, exported, tokenizer, verification_texts=["short", "a somewhat longer input text"])
    return backbone, tokenizer, dhrd, exported


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


@torch.no_grad()
def time_classifiers(classifiers: dict, texts, batch_size, args) -> dict[str, dict]:
    """QPS of each (model, tokenizer), best of `--repeats` passes over all inputs, the models interleaved in every
    repeat (in a rotating order) so that drifts of the machine (clock, other load) hit them alike."""
    order = sorted(texts, key=len, reverse=True)  # length-sorted batches: little padding
    prepared = {}
    for name, (model, tokenizer) in classifiers.items():
        tokenizer.padding_side = "right"
        batches = [
            tokenizer(
                order[i : i + batch_size], padding=True, truncation=True, max_length=512, return_tensors="pt"
            ).to(args.device)
            for i in range(0, len(order), batch_size)
        ]
        model(**batches[0])  # warm-up
        real = sum(int(b["attention_mask"].sum()) for b in batches)
        prepared[name] = (model, batches, 1 - real / sum(b["attention_mask"].numel() for b in batches))
    best = dict.fromkeys(classifiers, float("inf"))
    names = list(prepared)
    for repeat in range(args.repeats):
        # the order rotates every pass, so that no model always runs first (after warm-up) or after the same one
        for name in names[repeat % len(names) :] + names[: repeat % len(names)]:
            model, batches, _ = prepared[name]
            _sync(args.device)
            start = time.perf_counter()
            for batch in batches:
                model(**batch)
            _sync(args.device)
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: {"qps": len(texts) / best[name], "padding_fraction": prepared[name][2]} for name in classifiers}


@torch.no_grad()
def time_cot(model, tokenizer, texts, label_names, batch_size, new_tokens, fixed: bool, args) -> dict:
    from trainer.inference.cot import cot_decode

    texts = texts[: max(batch_size, args.cot_min_inputs)]
    start = time.perf_counter()
    result = cot_decode(
        model,
        tokenizer,
        texts,
        label_names,
        batch_size=batch_size,
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens if fixed else None,
    )
    _sync(args.device)
    seconds = time.perf_counter() - start
    lengths = result.generated_tokens
    return {"qps": len(texts) / seconds, "mean_generated_tokens": sum(lengths) / len(lengths), "inputs": len(texts)}


def time_vllm(args, exported: Path, backbone: Path, texts, label_names, workdir: Path) -> dict:
    """QPS of the exported classifier in vLLM's pooling runner and of CoT decoding in vLLM (engine start excluded)."""
    from trainer.inference.cot import cot_prompts

    scripts = Path(__file__).parent / "serving"
    env = {
        **os.environ,
        "VLLM_CPU_KVCACHE_SPACE": "2",
        "VLLM_CACHE_ROOT": str(workdir / "vllm-cache"),
        "TORCHINDUCTOR_CACHE_DIR": str(workdir / "inductor"),
        "HF_HUB_OFFLINE": "1",
    }
    (workdir / "texts.json").write_text(json.dumps(texts))
    cot_texts = texts[: args.vllm_cot_inputs]
    prompts = cot_prompts(AutoTokenizer.from_pretrained(backbone), cot_texts, label_names)
    (workdir / "prompts.json").write_text(json.dumps(prompts))
    runs = {
        "classifier": [
            str(scripts / "vllm_classify.py"),
            str(exported),
            str(workdir / "texts.json"),
            "--repeat",
            str(args.repeats),
        ],
        "cot_fixed": [
            str(scripts / "vllm_generate.py"),
            str(backbone),
            str(workdir / "prompts.json"),
            "--max-tokens",
            str(args.cot_fixed_tokens),
            "--fixed",
        ],
    }
    result = {}
    for name, command in runs.items():
        output = workdir / f"vllm-{name}.json"
        completed = subprocess.run(
            [args.serving_python, *command, "--dtype", args.dtype, "--output", str(output)],
            capture_output=True,
            text=True,
            env=env,
            cwd=workdir,
        )
        if completed.returncode != 0 or not output.is_file():
            raise RuntimeError(f"vLLM {name} failed:\n{completed.stderr[-3000:]}")
        result[f"vllm_{name}_qps"] = json.loads(output.read_text())["qps"]
    result["vllm_cot_inputs"] = len(cot_texts)
    return result


def load_texts(args) -> tuple[list[str], list[str]]:
    from trainer.tasks import get_task

    if args.smoke:
        return [f"Premise: item {i} is {'big ' * (i % 7)}. Hypothesis: it is small." for i in range(16)], ["yes", "no"]
    task = get_task(args.task)
    rows = task.load("val", args.data_dir, limit=args.inputs)
    return list(rows["text"]), list(task.label_names)


def run(args) -> dict:
    texts, label_names = load_texts(args)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        backbone, tokenizer, dhrd, exported = build_models(args, label_names, Path(tmp))
        dtype = getattr(torch, args.dtype)
        exported_model = AutoModelForSequenceClassification.from_pretrained(exported, dtype=dtype).to(args.device)
        export_tokenizer = AutoTokenizer.from_pretrained(exported)
        # transformers' own pooled classifier on the same backbone, with the export's pad token (its own row)
        native = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=len(label_names), dtype=dtype)
        if native.get_input_embeddings().num_embeddings < len(export_tokenizer):
            native.resize_token_embeddings(len(export_tokenizer), mean_resizing=False)
        native.config.pad_token_id = exported_model.config.pad_token_id
        native.to(args.device)
        # DHRD pools by the attention mask, so it takes the backbone's tokenizer (pad = eos); the native classifiers
        # pool at the last non-pad token and take the export's tokenizer (a pad token that cannot end an input).
        classifiers = {
            "dhrd_exported": (exported_model.eval(), export_tokenizer),
            "dhrd_model": (dhrd, tokenizer),
            "native_pooled": (native.eval(), export_tokenizer),
        }
        lm = AutoModelForCausalLM.from_pretrained(backbone, dtype=dtype).to(args.device).eval()
        lm_tokenizer = AutoTokenizer.from_pretrained(backbone)
        for batch_size in args.batch_sizes:
            row = {"dtype": args.dtype, "batch_size": batch_size}
            for name, timing in time_classifiers(classifiers, texts, batch_size, args).items():
                row[f"{name}_qps"] = timing["qps"]
                row["padding_fraction"] = timing["padding_fraction"]
            cot_fixed = time_cot(lm, lm_tokenizer, texts, label_names, batch_size, args.cot_fixed_tokens, True, args)
            row["cot_fixed_qps"], row["cot_fixed_tokens"] = cot_fixed["qps"], args.cot_fixed_tokens
            if batch_size in args.cot_eos_batch_sizes:
                cot_eos = time_cot(lm, lm_tokenizer, texts, label_names, batch_size, args.cot_max_tokens, False, args)
                row["cot_eos_qps"], row["cot_eos_mean_tokens"] = cot_eos["qps"], cot_eos["mean_generated_tokens"]
                row["dhrd_over_cot_eos"] = row["dhrd_exported_qps"] / cot_eos["qps"]
            row["dhrd_over_cot_fixed"] = row["dhrd_exported_qps"] / cot_fixed["qps"]
            row["dhrd_over_pooled"] = row["dhrd_exported_qps"] / row["native_pooled_qps"]
            row["dhrd_model_over_pooled"] = row["dhrd_model_qps"] / row["native_pooled_qps"]
            results.append(row)
            print(json.dumps(row))
        serving = []
        if args.vllm:
            row = {"dtype": args.dtype, **time_vllm(args, exported, backbone, texts, label_names, Path(tmp))}
            largest = max(results, key=lambda r: r["batch_size"])
            row["transformers_classifier_qps"] = largest["dhrd_exported_qps"]
            row["transformers_batch_size"] = largest["batch_size"]
            row["vllm_classifier_over_transformers"] = row["vllm_classifier_qps"] / largest["dhrd_exported_qps"]
            row["vllm_classifier_over_vllm_cot"] = row["vllm_classifier_qps"] / row["vllm_cot_fixed_qps"]
            serving.append(row)
            print(json.dumps(row))
    return {
        "setting": {k: v for k, v in vars(args).items() if k != "output_dir"},
        "inputs": len(texts),
        "device": args.device,
        "threads": torch.get_num_threads(),
        "results": results,
        "serving": serving,
    }


def serving_markdown(report: dict) -> str:
    if not report.get("serving"):
        return ""
    lines = [
        "",
        "| dtype | vLLM classifier QPS | transformers classifier QPS (batch) | vLLM CoT fixed QPS "
        "| vLLM/transformers | classifier/CoT in vLLM |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["serving"]:
        lines.append(
            f"| {r['dtype']} | {r['vllm_classifier_qps']:.1f} | {r['transformers_classifier_qps']:.1f} "
            f"({r['transformers_batch_size']}) | {r['vllm_cot_fixed_qps']:.2f} "
            f"| {r['vllm_classifier_over_transformers']:.2f} | {r['vllm_classifier_over_vllm_cot']:.0f}x |"
        )
    return "\n".join(lines)


def markdown(report: dict) -> str:
    lines = [
        "| dtype | batch | padding | DHRD exported QPS | DHRD model QPS | native pooled QPS | CoT fixed QPS "
        "| CoT eos QPS (mean tokens) | DHRD/pooled | DHRD/CoT fixed | DHRD/CoT eos |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        eos = f"{r['cot_eos_qps']:.3f} ({r['cot_eos_mean_tokens']:.0f})" if "cot_eos_qps" in r else "-"
        ratio_eos = f"{r['dhrd_over_cot_eos']:.0f}x" if "dhrd_over_cot_eos" in r else "-"
        lines.append(
            f"| {r['dtype']} | {r['batch_size']} | {r['padding_fraction']:.1%} | {r['dhrd_exported_qps']:.1f} "
            f"| {r['dhrd_model_qps']:.1f} | {r['native_pooled_qps']:.1f} | {r['cot_fixed_qps']:.3f} | {eos} "
            f"| {r['dhrd_over_pooled']:.2f} | {r['dhrd_over_cot_fixed']:.0f}x | {ratio_eos} |"
        )
    serving = serving_markdown(report)
    return "\n".join(lines) + ("\n" + serving if serving else "")


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4))
    for key, label in (
        ("dhrd_exported_qps", "DHRD (exported)"),
        ("native_pooled_qps", "native pooled"),
        ("cot_fixed_qps", "CoT decoding (fixed length)"),
    ):
        for dtype in sorted({r["dtype"] for r in report["results"]}):
            rows = [r for r in report["results"] if r["dtype"] == dtype]
            axis.plot([r["batch_size"] for r in rows], [r[key] for r in rows], marker="o", label=f"{label} {dtype}")
    axis.set_xscale("log", base=2)
    axis.set_yscale("log")
    axis.set_xlabel("batch size")
    axis.set_ylabel("inputs / second")
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help=BACKBONE_HELP)
    parser.add_argument("--task", default="rte")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--inputs", type=int, default=128, help="validation inputs timed per classifier")
    parser.add_argument("--dtypes", default="bfloat16,float32")
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument("--cot-fixed-tokens", type=int, default=128)
    parser.add_argument("--cot-max-tokens", type=int, default=500)
    parser.add_argument("--cot-eos-batch-sizes", default="8", help="batch sizes that also run CoT to eos")
    parser.add_argument("--cot-min-inputs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA, MPS, then CPU), cpu, cuda, cuda:N: trainer.device"
    )
    parser.add_argument("--random-weights", action="store_true", help="build --config's architecture, random weights")
    parser.add_argument("--config", default="llama-3.1-8b", choices=sorted(RANDOM_CONFIGS))
    parser.add_argument("--smoke", action="store_true", help="tiny random model, a few inputs (CI, seconds)")
    parser.add_argument("--vllm", action="store_true", help="also time vLLM serving (needs `make serving-env`)")
    parser.add_argument("--serving-python", default=str(Path(__file__).parent.parent / ".venv-vllm/bin/python"))
    parser.add_argument("--vllm-cot-inputs", type=int, default=32)
    parser.add_argument("--output-dir", default=None)
    args = parser.parse_args()
    from trainer.device import resolve_device

    args.device = str(resolve_device(args.device))  # the project's one device rule
    if args.smoke:
        args.random_weights, args.config, args.dtypes, args.batch_sizes = True, "smoke", "float32", "1,4"
        args.cot_fixed_tokens, args.cot_max_tokens, args.cot_eos_batch_sizes, args.repeats = 4, 8, "4", 1
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    args.cot_eos_batch_sizes = [int(b) for b in args.cot_eos_batch_sizes.split(",") if b]
    reports = []
    for dtype in args.dtypes.split(","):
        args.dtype = dtype
        reports.append(run(args))
    report = {
        **reports[0],
        "results": [row for r in reports for row in r["results"]],
        "serving": [row for r in reports for row in r["serving"]],
    }
    report["setting"].pop("dtype", None)
    table = markdown(report)
    print(table)
    if args.output_dir:
        out = Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        name = "inference_smoke" if args.smoke else f"inference_{args.config if args.random_weights else args.task}"
        (out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
        (out / f"{name}.md").write_text(table + "\n")
        plot(report, out / f"{name}.png")


if __name__ == "__main__":
    main()
