"""Padded against packed (`--padding_free`) DHRD training steps on the same batches, side by side in one run.

The batches are what `DHRDTrainer` trains on: rows prepared by its sequence builder (input + reason marker +
rationale + answer), drawn in random order, `--batch-size` at a time, collated padded to the batch's longest sequence;
the packed step packs the same batch (`trainer.training.packing.pack_batch`). Each step is a forward and backward
(no optimizer); the two forms alternate batch by batch, so a slow moment of the machine hits both alike. Reported:
real tokens/s (tokens that are not padding), the tokens each form computes, the median step, the useful GFLOP/s
(6 FLOP a parameter a real token, the reasoning head's on its targets) against this machine's matrix-product peak
(`benchmark_predict_engines.matmul_peak_gflops`: the share is the MFU), the ratios, and the
largest difference between the forms' losses (they must agree: it is the same loss). Three packed forms: `packed`,
what `--padding_free` does with this model's attention (rows as wide as the batch's longest sequence without
flash-attention, one row with it), rows of 512 tokens, and one row holding the whole batch (TRL's and
`DataCollatorWithFlattening`'s form).

    python examples/benchmark_packed_step.py --train-file W/train.jsonl   # e-SNLI rows with PaLM rationales
    python examples/benchmark_packed_step.py --smoke                      # tiny model, synthetic skewed rows
"""

import argparse
import json
import random
import statistics
import time

import torch
from benchmark_predict_engines import matmul_peak_gflops  # this folder's (the script runs from it)
from datasets import Dataset, load_dataset

from trainer.embedded import BACKBONE_HELP


def _smoke_rows(n: int = 48) -> Dataset:
    """Inputs of 3-60 words and rationales of 0-40 words: a skewed mix, as real rationale data is."""
    rng = random.Random(0)
    words = "the a red dog ran over green hills while birds sang loudly in tall trees".split()
    return Dataset.from_list(
        [
            {
                "text": " ".join(rng.choices(words, k=rng.choice([3, 5, 8, 60]))),
                "label": i % 3,
                "rationale": " ".join(rng.choices(words, k=rng.randint(0, 40))) or None,
            }
            for i in range(n)
        ]
    )


def _trainer(args):
    from transformers import AutoTokenizer, LlamaConfig

    from modeling_dhrd import DHRDConfig, DHRDForSequenceClassification
    from trainer import DHRDTrainer, DHRDTrainingArguments
    from trainer.embedded import resolve_backbone

    if args.smoke:
        from tokenizers import Tokenizer, models, pre_tokenizers
        from transformers import PreTrainedTokenizerFast

        vocab = {"<eos>": 0, **{c: i + 1 for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}}
        backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>", pad_token="<eos>")
        text_config = LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, eos_token_id=0, pad_token_id=0,
        )  # fmt: skip
        model = DHRDForSequenceClassification(DHRDConfig(text_config=text_config, num_labels=3))
        rows = _smoke_rows()
    else:
        backbone = resolve_backbone(args.model)
        tokenizer = AutoTokenizer.from_pretrained(backbone)
        model = DHRDForSequenceClassification.from_backbone(
            backbone, num_labels=3, attn_implementation=args.attn_implementation
        )
        rows = load_dataset("json", data_files=args.train_file, split="train").select(range(args.rows))
    model.config.classifier_dropout = 0.0
    model.dropout.p = 0.0  # the two forms must see the same loss
    training = DHRDTrainingArguments(
        output_dir="/tmp/benchmark_packed_step", use_cpu=not torch.cuda.is_available(), report_to=[],
        lm_loss_scope=args.lm_loss_scope, max_input_length=256, max_length=512, bf16=args.bf16,
    )  # fmt: skip
    return DHRDTrainer(model=model, args=training, train_dataset=rows, processing_class=tokenizer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help=BACKBONE_HELP)
    parser.add_argument(
        "--train-file", help="jsonl with text, label, rationale (e.g. `dhrd rationales --join` output)"
    )
    parser.add_argument("--rows", type=int, default=400, help="rows read from --train-file")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=12, help="batches timed in each form (after one warm-up each)")
    parser.add_argument("--lm-loss-scope", default="rationale")
    parser.add_argument("--attn-implementation", default="sdpa")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast, as `--bf16` training")
    parser.add_argument("--smoke", action="store_true", help="a tiny random model on synthetic rows (CI)")
    parser.add_argument("--output", default=None, help="also write the JSON here")
    args = parser.parse_args()
    if args.smoke:
        args.steps = 3
    if not args.smoke and not args.train_file:
        parser.error("--train-file is required (or --smoke)")

    from trainer.training.packing import pack_batch, packed_width

    trainer = _trainer(args)
    model, collate, pad_id = trainer.model.train(), trainer.data_collator, trainer.data_collator.pad_token_id
    rows = trainer.train_dataset
    order = list(range(len(rows)))
    random.Random(0).shuffle(order)
    batches = [
        collate([rows[i] for i in order[start : start + args.batch_size]])
        for start in range(0, (args.steps + 1) * args.batch_size, args.batch_size)
    ]
    forms = {
        "padded": lambda batch: batch,
        "packed": lambda batch: pack_batch(batch, pad_id, packed_width(model)),  # what --padding_free does here
        "packed_512": lambda batch: pack_batch(batch, pad_id, width=512),  # rows of 512 tokens
        "packed_one_row": lambda batch: pack_batch(batch, pad_id, width=0),  # every sequence in one row
    }
    seconds = {name: [] for name in forms}
    computed = dict.fromkeys(forms, 0)
    losses = {name: [] for name in forms}
    real_tokens = 0
    autocast = torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=args.bf16)
    batches = [{name: tensor.to(model.device) for name, tensor in batch.items()} for batch in batches]  # a GPU's
    for step, batch in enumerate(batches):
        for name, form in forms.items():
            start = time.perf_counter()
            inputs = form(batch)
            with autocast:
                loss = model(**inputs).loss
            loss.backward()
            model.zero_grad(set_to_none=True)
            if step:  # the first batch warms both forms up
                seconds[name].append(time.perf_counter() - start)
                computed[name] += inputs["input_ids"].numel()
            losses[name].append(float(loss.detach()))
        if step:
            real_tokens += int(batch["attention_mask"].sum())
    total = {name: sum(times) for name, times in seconds.items()}
    # useful work: forward + backward (6 FLOP a parameter) of the backbone and pooled head over the real tokens, and
    # of the reasoning head over the LM targets; padding and attention are not counted
    dhrd = trainer._dhrd_config
    text = dhrd.text_config
    vocab_params = text.vocab_size * text.hidden_size
    backbone_params = sum(p.numel() for p in model.parameters()) - vocab_params * (
        1 if text.tie_word_embeddings else 2
    )
    lm_targets = sum(int((batch["lm_labels"][..., 1:] != -100).sum()) for batch in batches[1:] if "lm_labels" in batch)
    useful_gflop = 6 * (backbone_params * real_tokens + vocab_params * lm_targets) / 1e9
    peak = matmul_peak_gflops("bfloat16" if args.bf16 else "float32", text.hidden_size, text.intermediate_size)
    report = {
        "model": "tiny random llama" if args.smoke else (args.model or "SmolLM2-135M-Instruct (embedded)"),
        "data": "synthetic skewed rows" if args.smoke else args.train_file,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "precision": "bf16 autocast" if args.bf16 else "float32",
        "attn_implementation": args.attn_implementation,
        "threads": torch.get_num_threads(),
        "real_tokens": real_tokens,
        "lm_targets": lm_targets,
        "matmul_peak_gflops": round(peak, 1),
        "forms": {
            name: {
                "median_step_s": round(statistics.median(seconds[name]), 3),
                "real_tokens_per_second": round(real_tokens / total[name], 1),
                "computed_tokens": computed[name],
                "padding_share": round(1 - real_tokens / computed[name], 3),
                "useful_gflops": float(f"{useful_gflop / total[name]:.3g}"),
                "share_of_matmul_peak": float(f"{useful_gflop / total[name] / peak:.3g}"),
            }
            for name in forms
        },
        "over_padded_tokens_per_second": {
            name: round(total["padded"] / total[name], 2) for name in forms if name != "padded"
        },
        "max_loss_difference": max(abs(a - b) for name in forms for a, b in zip(losses["padded"], losses[name])),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        from modeling_dhrd.atomic import atomic_write_text

        atomic_write_text(args.output, text + "\n")


if __name__ == "__main__":
    main()
