"""Multiple-choice training step (`DHRDForMultipleChoice`, forward + backward): the rows that carry a rationale run
apart from the other options (the default) against one pass over the padded batch, side by
side in one process, alternating, on the same batch; prints JSON with the seconds per step, the ratio and the largest
loss difference.

The batch has CommonsenseQA's shape by default: 8 questions x 5 options of ~30 tokens, the gold row continued by a
50-token rationale (the PaLM CoT's length with its markers), so in one pass four of five rows are mostly padding.

    python examples/benchmark_choice_step.py                           # embedded SmolLM2, bf16 autocast
    python examples/benchmark_choice_step.py --smoke                   # tiny model, seconds
"""

import argparse
import json
import statistics
import time

import torch

from modeling_dhrd.chunked_lm_loss import IGNORE_INDEX
from trainer.embedded import BACKBONE_HELP


def build_model(args):
    from modeling_dhrd import DHRDConfig, DHRDForMultipleChoice
    from trainer.embedded import resolve_backbone

    if args.smoke:
        from transformers import LlamaConfig

        text_config = LlamaConfig(
            vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4
        )
        return DHRDForMultipleChoice(DHRDConfig(text_config=text_config.to_dict(), problem_kind="multiple_choice"))
    return DHRDForMultipleChoice.from_backbone(resolve_backbone(args.model))  # fp32 weights, as the Trainer keeps


def build_batch(args, vocab_size: int) -> dict[str, torch.Tensor]:
    """Option rows of 70-100% of `--input-tokens`, the gold row (option 0) continued by the rationale; right-padded."""
    generator = torch.Generator().manual_seed(0)
    shape = (args.batch_size, args.options)
    lengths = torch.randint(int(0.7 * args.input_tokens), args.input_tokens + 1, shape, generator=generator)
    width = args.input_tokens + args.rationale_tokens
    batch = {
        "input_ids": torch.randint(1, vocab_size, (*shape, width), generator=generator),
        "attention_mask": torch.zeros(*shape, width, dtype=torch.long),
        "pooling_mask": torch.zeros(*shape, width, dtype=torch.long),
        "lm_labels": torch.full((*shape, width), IGNORE_INDEX),
    }
    for row in range(args.batch_size):
        for option in range(args.options):
            n_input = int(lengths[row, option])
            n_total = n_input + (args.rationale_tokens if option == 0 else 0)
            batch["attention_mask"][row, option, :n_total] = 1
            batch["pooling_mask"][row, option, :n_input] = 1
            if option == 0:
                batch["lm_labels"][row, option, n_input:n_total] = batch["input_ids"][row, option, n_input:n_total]
    batch["labels"] = torch.zeros(args.batch_size, dtype=torch.long)
    return batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help=BACKBONE_HELP)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--options", type=int, default=5)
    parser.add_argument("--input-tokens", type=int, default=30, help="longest option row [context, option]")
    parser.add_argument("--rationale-tokens", type=int, default=50)
    parser.add_argument(
        "--dtype", default="bfloat16", choices=["float32", "bfloat16"], help="bfloat16: autocast, as `--bf16` trains"
    )
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--smoke", action="store_true", help="tiny random model (CI)")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = build_model(args).train()
    batch = build_batch(args, model.config.get_text_config().vocab_size)
    seconds: dict[str, list[float]] = {"rows_apart": [], "one_pass": []}
    losses: dict[str, float] = {}
    for step in range(args.warmup + args.steps):
        for config in seconds:
            model.zero_grad(set_to_none=True)
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.dtype == "bfloat16" and not args.smoke):
                # asking for hidden states makes the forward one pass over the padded batch
                loss = model(**batch, output_hidden_states=config == "one_pass").loss
            loss.backward()
            if step >= args.warmup:
                seconds[config].append(time.perf_counter() - start)
            losses[config] = float(loss.detach())
    median = {config: statistics.median(values) for config, values in seconds.items()}
    report = {
        "model": "tiny" if args.smoke else (args.model or "smollm2-135m"),
        "dtype": "float32" if args.smoke else args.dtype,
        "batch": {k: getattr(args, k) for k in ("batch_size", "options", "input_tokens", "rationale_tokens")},
        "threads": torch.get_num_threads(),
        "seconds_per_step": {config: round(value, 4) for config, value in median.items()},
        "speedup_rows_apart": round(median["one_pass"] / median["rows_apart"], 3),
        "max_abs_loss_diff": abs(losses["rows_apart"] - losses["one_pass"]),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
