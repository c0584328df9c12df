"""Training-step benchmark: what DHRD's single pass and chunked LM loss buy, side by side in one run.

Configurations, all on the same sequences `[x, rationale]` (x = `--input-fraction` of each sequence):
- `pooled_only`: the pooled classifier trained on x alone (the baseline DHRD must match at inference);
- `lm_only`: the reasoning head's LM loss over the full sequence (chunked);
- `dhrd_single_pass`: DHRD as implemented here, one backbone pass for both losses;
- `dhrd_two_passes`: DHRD done naively, a classification pass over x plus an LM pass over the sequence;
- `dhrd_unchunked`: one pass, but the LM loss from full `[batch, seq, vocab]` logits.

`--attn-implementations sdpa,eager` runs every configuration with each attention implementation and reports each
one's step time over the first one's (short sequences train faster with `eager` on a CPU: docs/RESULTS.md).

Each configuration runs in its own process (forward + backward, no optimizer), so its peak memory is its own: peak
RSS is reset after loading (`/proc/self/clear_refs`) and the high-water mark read after the steps.

    python examples/benchmark_training.py --seq-len 1024 --batch-size 1 --dtype bfloat16   # embedded SmolLM2
    python examples/benchmark_training.py --seq-len 100 --batch-size 8 --configs pooled_only,dhrd_single_pass \
        --attn-implementations sdpa,eager                                             # the demo's shapes
    python examples/benchmark_training.py --smoke                                         # tiny model, seconds
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from trainer.embedded import BACKBONE_HELP

CONFIGS = ("pooled_only", "lm_only", "dhrd_single_pass", "dhrd_two_passes", "dhrd_unchunked")


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak_rss() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _build_model(args):
    from transformers import LlamaConfig

    from modeling_dhrd import DHRDConfig, DHRDForSequenceClassification
    from trainer.embedded import resolve_backbone

    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    if args.smoke:
        text_config = LlamaConfig(
            vocab_size=512,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
        )
        config = DHRDConfig(text_config=text_config, num_labels=2, attn_implementation=args.attn_implementation)
        return DHRDForSequenceClassification(config).to(dtype)
    path = resolve_backbone(args.model)
    return DHRDForSequenceClassification.from_backbone(
        path, num_labels=2, dtype=dtype, attn_implementation=args.attn_implementation
    )


def _batch(args, vocab_size: int):
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(3, vocab_size, (args.batch_size, args.seq_len), generator=generator)
    n_input = max(1, int(args.seq_len * args.input_fraction))
    pooling_mask = torch.zeros_like(ids)
    pooling_mask[:, :n_input] = 1
    labels = torch.randint(0, 2, (args.batch_size,), generator=generator)
    return ids, pooling_mask, n_input, labels


def _step(config: str, model, ids, pooling_mask, n_input, labels) -> None:
    full_mask = torch.ones_like(ids)
    if config == "pooled_only":
        loss = model(input_ids=ids[:, :n_input], labels=labels).loss
    elif config == "lm_only":
        loss = model(input_ids=ids, attention_mask=full_mask, pooling_mask=pooling_mask, lm_labels=ids).loss
    elif config == "dhrd_single_pass":
        loss = model(
            input_ids=ids, attention_mask=full_mask, pooling_mask=pooling_mask, lm_labels=ids, labels=labels
        ).loss
    elif config == "dhrd_two_passes":
        cls_loss = model(input_ids=ids[:, :n_input], labels=labels).loss
        lm_loss = model(input_ids=ids, attention_mask=full_mask, pooling_mask=pooling_mask, lm_labels=ids).loss
        loss = cls_loss + lm_loss
    elif config == "dhrd_unchunked":
        hidden = model.model(input_ids=ids).last_hidden_state
        logits = model.lm_head(hidden).float()  # [batch, seq, vocab] all at once
        lm_loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
        cls_loss = F.cross_entropy(model.score(hidden[:, n_input - 1]).float(), labels)
        loss = cls_loss + lm_loss
    else:
        raise ValueError(config)
    loss.backward()


def run_worker(args) -> dict:
    torch.set_num_threads(args.threads)
    model = _build_model(args).train()
    ids, pooling_mask, n_input, labels = _batch(args, model.config.text_config.vocab_size)
    for _ in range(args.warmup):
        _step(args.worker, model, ids, pooling_mask, n_input, labels)
        model.zero_grad(set_to_none=True)
    _reset_peak_rss()
    baseline = _rss_kib("VmRSS")
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        _step(args.worker, model, ids, pooling_mask, n_input, labels)
        times.append(time.perf_counter() - start)
        model.zero_grad(set_to_none=True)
    peak = _rss_kib("VmHWM")
    step = sorted(times)[len(times) // 2]
    return {
        "config": args.worker,
        "attn_implementation": args.attn_implementation,
        "step_s": step,
        "tokens_per_s": args.batch_size * args.seq_len / step,
        "peak_rss_mib": peak / 1024,
        "peak_increase_mib": max(0, peak - baseline) / 1024,
    }


def _attention_ratios(results: list[dict], implementations: list[str]) -> dict[str, float]:
    """Each configuration's step time with every other attention implementation over the first one's."""
    steps = {(row["config"], row["attn_implementation"]): row["step_s"] for row in results}
    return {
        f"{config}_{other}_step_over_{implementations[0]}_step": steps[config, other]
        / steps[config, implementations[0]]
        for config, attention in steps
        if attention == implementations[0]
        for other in implementations[1:]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help=BACKBONE_HELP)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--input-fraction", type=float, default=0.5, help="share of each sequence that is x")
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument(
        "--attn-implementations", default="sdpa", help="comma-separated: run every config with each (sdpa,eager)"
    )
    parser.add_argument("--attn-implementation", default="sdpa", help=argparse.SUPPRESS)
    parser.add_argument("--smoke", action="store_true", help="tiny random model, short sequences (CI)")
    parser.add_argument("--output-dir", default=None, help="write training.json and training.md here")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.smoke:
        args.seq_len, args.steps, args.warmup, args.dtype = min(args.seq_len, 64), 1, 1, "float32"
    if args.worker:
        print(json.dumps(run_worker(args)))
        return

    results = []
    implementations = args.attn_implementations.split(",")
    for config in args.configs.split(","):
        for attention in implementations:
            command = [sys.executable, __file__, *sys.argv[1:], "--worker", config, "--attn-implementation", attention]
            completed = subprocess.run(command, capture_output=True, text=True)
            if completed.returncode != 0:
                sys.exit(f"{config} ({attention}) failed:\n{completed.stderr[-3000:]}")
            results.append(json.loads(completed.stdout.strip().splitlines()[-1]))
            print(f"{config} ({attention}): {results[-1]['step_s']:.3f} s/step", file=sys.stderr)
    ratios = _attention_ratios(results, implementations)
    by_name = {row["config"]: row for row in results if row["attn_implementation"] == implementations[0]}
    if {"dhrd_single_pass", "lm_only"} <= by_name.keys():
        ratios["single_pass_step_over_lm_only_step"] = (
            by_name["dhrd_single_pass"]["step_s"] / by_name["lm_only"]["step_s"]
        )
    if {"dhrd_single_pass", "dhrd_two_passes"} <= by_name.keys():
        ratios["two_passes_step_over_single_pass_step"] = (
            by_name["dhrd_two_passes"]["step_s"] / by_name["dhrd_single_pass"]["step_s"]
        )
    if {"dhrd_single_pass", "dhrd_unchunked"} <= by_name.keys():
        ratios["single_pass_peak_over_unchunked_peak"] = (
            by_name["dhrd_single_pass"]["peak_rss_mib"] / by_name["dhrd_unchunked"]["peak_rss_mib"]
        )
        ratios["single_pass_peak_increase_over_unchunked"] = by_name["dhrd_single_pass"]["peak_increase_mib"] / max(
            by_name["dhrd_unchunked"]["peak_increase_mib"], 1e-9
        )
    setting = {
        k: getattr(args, k)
        for k in (
            "model",
            "seq_len",
            "batch_size",
            "input_fraction",
            "dtype",
            "steps",
            "threads",
            "smoke",
            "attn_implementations",
        )
    }
    report = {"setting": setting, "results": results, "ratios": ratios}
    table = [
        "| config | attention | step (s) | tokens/s | peak RSS (MiB) | peak increase (MiB) |",
        "|---|---|---|---|---|---|",
    ]
    for row in results:
        table.append(
            f"| {row['config']} | {row['attn_implementation']} | {row['step_s']:.3f} | {row['tokens_per_s']:.0f} | "
            f"{row['peak_rss_mib']:.0f} | {row['peak_increase_mib']:.0f} |"
        )
    table += ["", *(f"- {name}: {value:.3f}" for name, value in ratios.items())]
    print(json.dumps(report, indent=2))
    print("\n".join(table))
    if args.output_dir:
        out = Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "training.json").write_text(json.dumps(report, indent=2) + "\n")
        (out / "training.md").write_text("\n".join(table) + "\n")


if __name__ == "__main__":
    main()
