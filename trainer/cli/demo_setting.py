"""The demo's default setting (data size, training budget) and its spread over three seeds, measured once by the
accuracy study.

A single demo run is one seed; on 300 held-out questions one seed's luck moves accuracy by several points. So the
demo's table puts each method's mean ± std over the study's three seeds (same data, order and settings: with
`--seed 0/1/2` the demo repeats the study's runs) beside its own numbers, and says in one line whether DHRD's gain
over the pooled baseline is beyond that spread.
"""

import json
import statistics
from pathlib import Path

import torch

from ..device import native_bf16

# The default setting: 160 questions for 100 steps (5 epochs), chosen on the validation split among 60/100/200 steps
# and lm_weight 0.1/0.3/1 (docs/RESULTS.md, "The mechanism check"); the demo scores the held-out test split.
DEMO_TRAIN_ROWS = 160


def demo_attention(requested: str | None, trains_on: torch.device) -> str | None:
    """The backbone's attention kernel for the demo's trainings: `requested` when given; else `eager` on a CPU, where
    it trains the demo's ~100-token sequences 15-20% faster than SDPA (docs/RESULTS.md, "Attention kernels on a
    CPU"); else None, the backbone's default (SDPA)."""
    if requested:
        return requested
    return "eager" if trains_on.type == "cpu" else None


# The demo's training budget (full fine-tuning on 2 CPU cores); every value is a `DHRDTrainingArguments` flag, and
# with `--seed 0/1/2` the demo's runs are the reference file's runs (`demo_reference.json`: same data, order and
# settings).
# `lm_loss_scope="rationale"`: modelling the synthetic inputs' random names and numbers (the paper's "all") cost a
# 60-step budget accuracy in our runs (docs/RESULTS.md).
DEMO_TRAINING_DEFAULTS = {
    "output_dir": "outputs/demo",
    "max_steps": 100,
    "per_device_train_batch_size": 8,
    "per_device_eval_batch_size": 32,
    "learning_rate": 1e-4,
    "lr_scheduler_type": "linear",
    "warmup_steps": 0.1,
    "weight_decay": 0.0,
    "lm_weight": 1.0,
    "lm_loss_scope": "rationale",
    "logging_steps": 10,
    "save_strategy": "no",
    "report_to": "none",
    "seed": 0,
    "max_input_length": 256,
    "max_length": 512,
    "dataloader_num_workers": 0,
    "bf16": native_bf16(),
    "use_cpu": not torch.cuda.is_available() and native_bf16(),  # transformers asks for it with bf16 on a CPU
}


# What must equal the study's settings for its spread to apply (the training values are `DEMO_TRAINING_DEFAULTS`').
REFERENCE_SETTING = {
    "task": "synthetic_multistep",
    "model": None,
    "train_rows": DEMO_TRAIN_ROWS,
    "eval_rows": 300,
    **{
        key: DEMO_TRAINING_DEFAULTS[key]
        for key in (
            "max_steps",
            "per_device_train_batch_size",
            "learning_rate",
            "lr_scheduler_type",
            "warmup_steps",
            "weight_decay",
            "lm_weight",
            "lm_loss_scope",
            "max_input_length",
            "max_length",
        )
    },
}  # not the precision: each reference arm records its own (bf16 or float32 moves a seed's score less than seeds do)
# The measured spread of the demo's setting over three seeds: a data file (docs/RESULTS.md, "Demo", cites it), so
# no measured number lives in code.
REFERENCE_FILE = Path(__file__).with_name("demo_reference.json")


def reference_runs() -> dict:
    """The reference file: per arm, the held-out accuracy of seeds 0, 1, 2 and where it was measured."""
    return json.loads(REFERENCE_FILE.read_text(encoding="utf-8"))


def reference_spread(results: dict) -> dict[str, tuple[float, float]] | None:
    """{arm: (mean, std)} of the reference seeds when the demo ran the reference setting, else None (other
    settings have no measured spread to show)."""
    settings = results["settings"]
    if any(settings.get(key) != value for key, value in REFERENCE_SETTING.items()):
        return None
    arms = reference_runs()["arms"]
    return {key: (statistics.mean(arm["accuracy"]), statistics.stdev(arm["accuracy"])) for key, arm in arms.items()}


def reference_verdict(first: str, second: str, question: str) -> str:
    """What the three reference seeds say about `first` − `second` (`question` in words), in one line."""
    arms = reference_runs()["arms"]
    deltas = [100 * (a - b) for a, b in zip(arms[first]["accuracy"], arms[second]["accuracy"])]
    mean, std = statistics.mean(deltas), statistics.stdev(deltas)
    ahead = sum(d > 0 for d in deltas)
    beyond = ahead == len(deltas) and mean - std > 0
    verdict = "a gain beyond the seed spread" if beyond else "not a gain beyond the seed spread"
    return f"{question}: over 3 seeds {mean:+.1f} ± {std:.1f} points ({ahead}/{len(deltas)} seeds ahead): {verdict}"
