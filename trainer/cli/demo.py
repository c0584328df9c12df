"""`dhrd demo` / `make demo`: the whole DHRD story on the embedded SmolLM2-135M-Instruct, on a laptop CPU.

1. trains the pooled baseline (`lm_weight=0`) and DHRD with the same budget and seed, with `--shuffled_control`
   DHRD on the same rationales shuffled across rows (the paper's control: what DHRD gains from the LM objective
   alone) and with `--input_lm_control` the LM loss on the input alone (no teacher); without the flags the table
   shows each control's 3-seed reference, which keeps `make demo` near 8 minutes on 2 CPU cores;
2. evaluates them on held-out data, next to the same setting's spread over three seeds (docs/RESULTS.md);
3. exports the DHRD classifier (reasoning head dropped) and reloads it in a fresh process with plain
   `AutoModelForSequenceClassification` (no remote code);
4. measures inference QPS of the exported classifier against CoT decoding with the same backbone;
5. prints a comparison table and a command to try the exported model on a held-out input, and writes
   `results.json` and `results.png`.

The default data is the built-in synthetic reasoning task with a programmatic teacher (no download); `--task copa
--data_dir DIR` runs on COPA with COPA-SSE human explanations instead.
"""

import json
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed

from modeling_dhrd import DHRDForSequenceClassification, export_classifier
from modeling_dhrd.atomic import atomic_write_text
from modeling_dhrd.unwrap import full_precision_forward

from ..device import DeviceArguments
from ..embedded import BACKBONE_HELP, resolve_backbone
from ..inference.classify import classify
from ..inference.cot import cot_decode
from ..tasks import Task, get_task
from ..tasks.rationale_sets import shuffled_rationales
from ..training.arguments import DHRDTrainingArguments
from ..training.arms import ARMS, QUESTIONS, Arm
from ..training.dhrd_trainer import DHRDTrainer
from .demo_setting import (
    DEMO_TRAIN_ROWS,
    DEMO_TRAINING_DEFAULTS,
    demo_attention,
    reference_runs,
    reference_spread,
    reference_verdict,
)


@dataclass
class DemoArguments:
    """What the demo is about. How it trains is `DHRDTrainingArguments` (`--max_steps`, `--learning_rate`,
    `--lm_weight`, `--seed`, `--output_dir`, ...), with the demo's defaults in `DEMO_TRAINING_DEFAULTS`."""

    model: str | None = field(default=None, metadata={"help": BACKBONE_HELP})
    task: str = field(
        default="synthetic_multistep",
        metadata={"help": "'synthetic_multistep' or 'synthetic' (built in), or 'copa' (needs --data_dir)."},
    )
    data_dir: str | None = field(default=None, metadata={"help": "Folder with superglue/ and rationales/."})
    quick: bool = field(default=False, metadata={"help": "A smoke run of about a minute (CI): 2 steps, few rows."})
    train_rows: int | None = field(
        default=DEMO_TRAIN_ROWS,
        metadata={"help": "Training rows of the synthetic tasks (the budget is --max_steps; None: one epoch)."},
    )
    shuffled_control: bool = field(
        default=False,
        metadata={
            "help": "Also train DHRD on shuffled rationales (the paper's control; ~4 more minutes on 2 CPU cores). "
            "Without it the table shows the control's 3-seed reference, marked as not trained in this run."
        },
    )
    input_lm_control: bool = field(
        default=False,
        metadata={
            "help": "Also train the teacher-free control: the LM loss on the input alone, no rationale (~3 more "
            "minutes on 2 CPU cores). Without it the table shows its 3-seed reference, marked as not trained."
        },
    )
    eval_rows: int = field(default=300, metadata={"help": "Held-out rows to evaluate."})
    qps_rows: int = field(default=64, metadata={"help": "Inputs for the classifier QPS measurement."})
    cot_rows: int = field(default=8, metadata={"help": "Inputs for the CoT decoding QPS measurement."})
    cot_new_tokens: int = field(default=128, metadata={"help": "New tokens per CoT answer (fixed, for timing)."})
    attn_implementation: str | None = field(
        default=None,
        metadata={
            "help": "The backbone's attention kernel for training: default 'eager' on a CPU (faster for the "
            "demo's short sequences), else the backbone's default ('sdpa')."
        },
    )

    def __post_init__(self) -> None:
        if self.quick:
            self.eval_rows, self.qps_rows, self.cot_rows, self.cot_new_tokens = 16, 8, 2, 16
            self.train_rows = 16


QUICK_STEPS = 2


def demo_data(args: DemoArguments, training: DHRDTrainingArguments) -> tuple[Task, Dataset, Dataset]:
    """(task, training rows with rationales, held-out rows). The synthetic tasks are scored on their `test` split:
    settings were chosen on `val` (docs/RESULTS.md), so the demo's numbers are held-out ones."""
    task = get_task(args.task)
    if task.name.startswith("synthetic"):
        rows = args.train_rows or training.max_steps * training.per_device_train_batch_size
        return task, task.load("train", limit=rows), task.load("test", limit=args.eval_rows)
    if task.name != "copa" or not args.data_dir:
        raise ValueError(
            "The demo runs on --task synthetic_multistep or synthetic, or on --task copa with --data_dir."
        )
    from ..tasks.rationale_sets import join_copa_sse

    rationales = Path(args.data_dir) / "rationales" / "copa_sse"
    train, _ = join_copa_sse(task.load("train", args.data_dir), "train", rationales)
    evaluation = task.load("val", args.data_dir)
    return task, train, evaluation.select(range(min(args.eval_rows, len(evaluation))))


# The arms the demo shows, in its table's order; a control trains only when its flag asks (else its reference row).
DEMO_ARMS = ("pooled", "dhrd", "input_lm", "shuffled")
CONTROL_FLAGS = {"input_lm": "input_lm_control", "shuffled": "shuffled_control"}


def train_one(
    training: DHRDTrainingArguments,
    backbone: str,
    attention: str | None,
    tokenizer,
    task: Task,
    train,
    evaluation,
    arm: Arm,
) -> tuple[torch.nn.Module, dict]:
    set_seed(training.seed)
    model = DHRDForSequenceClassification.from_backbone(
        backbone, id2label=task.id2label, attn_implementation=attention
    )
    if arm.shuffled:
        train = shuffled_rationales(train, training.seed)
    training_args = replace(
        training,
        output_dir=str(Path(training.output_dir) / f"run-{arm.key}"),
        run_name=arm.title,
        **arm.training_settings(),
    )
    lm_weight = training_args.lm_weight if training_args.lm_weight is not None else 1.0
    trainer = DHRDTrainer(
        model=model, args=training_args, train_dataset=train, eval_dataset=evaluation, processing_class=tokenizer
    )
    weight = f", lm_weight {lm_weight:g}" + (f", LM loss on the {arm.lm_loss_scope}" if arm.lm_loss_scope else "")
    shown = weight if lm_weight else ""
    print(f"\n== {arm.title}: {training.max_steps} steps on {len(train)} rows{shown} ==", flush=True)
    start = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - start
    metrics = trainer.evaluate()
    return trainer.model, {
        "accuracy": metrics["eval_accuracy"],
        "macro_f1": metrics["eval_macro_f1"],
        "train_seconds": round(train_seconds, 1),
        "lm_weight": lm_weight,
        "lm_loss_scope": training_args.lm_loss_scope,
    }


def measure_qps(
    exported_dir: Path,
    backbone: str,
    texts: list[str],
    cot_texts: list[str],
    task: Task,
    args,
    device: DeviceArguments,
) -> dict:
    from transformers import AutoModelForCausalLM

    classifier = AutoModelForSequenceClassification.from_pretrained(exported_dir, **device.load_kwargs()).eval()
    tokenizer = AutoTokenizer.from_pretrained(exported_dir)
    classify(classifier, tokenizer, texts[:8], 8, 256, progress=False)  # warm-up
    start = time.perf_counter()
    classify(classifier, tokenizer, texts, 16, 256, progress=False)
    classifier_qps = len(texts) / (time.perf_counter() - start)

    lm = AutoModelForCausalLM.from_pretrained(backbone, **device.load_kwargs()).eval()
    lm_tokenizer = AutoTokenizer.from_pretrained(backbone)
    start = time.perf_counter()
    cot = cot_decode(
        lm,
        lm_tokenizer,
        cot_texts,
        task.label_names,
        batch_size=len(cot_texts),
        max_new_tokens=args.cot_new_tokens,
        min_new_tokens=args.cot_new_tokens,
    )
    cot_qps = len(cot_texts) / (time.perf_counter() - start)
    return {
        "classifier_qps": round(classifier_qps, 2),
        "cot_qps": round(cot_qps, 3),
        "speedup_vs_cot": round(classifier_qps / cot_qps, 1),
        "precision": device.precision,  # both measured in it (`--dtype`; auto: bf16 where native)
        "cot_new_tokens": args.cot_new_tokens,
        "cot_mean_generated_tokens": sum(cot.generated_tokens) / len(cot.generated_tokens),
    }


RELOAD_SCRIPT = """
import json, sys, torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
folder, texts = sys.argv[1], json.loads(sys.argv[2])
model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
tokenizer = AutoTokenizer.from_pretrained(folder)
with torch.no_grad():
    logits = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits
print(json.dumps({"architecture": type(model).__name__, "logits": logits.tolist()}))
"""


def reload_in_fresh_process(exported_dir: Path, texts: list[str], expected: torch.Tensor) -> dict:
    """Plain transformers in a new interpreter (the project is not imported there)."""
    completed = subprocess.run(
        [sys.executable, "-c", RELOAD_SCRIPT, str(exported_dir), json.dumps(texts)], capture_output=True, text=True
    )
    if completed.returncode != 0:
        raise RuntimeError(f"Reloading the export failed:\n{completed.stderr[-2000:]}")
    reloaded = json.loads(completed.stdout.strip().splitlines()[-1])
    diff = (torch.tensor(reloaded["logits"]) - expected).abs().max().item()
    return {"architecture": reloaded["architecture"], "max_abs_logit_diff": diff, "ok": diff <= 1e-4}


def shown_methods(results: dict, spread: dict | None) -> list[Arm]:
    """The methods this run trained, and those the reference spread covers (shown as not run here)."""
    arms = [ARMS[key] for key in DEMO_ARMS]
    return [arm for arm in arms if arm.key in results["methods"] or (spread and arm.key in spread)]


def plot(results: dict, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    spread = reference_spread(results)
    methods = shown_methods(results, spread)
    names = [
        m.title.replace(" (", "\n(").replace(", ", ",\n")
        + ("" if m.key in results["methods"] else "\n(not run: 3 seeds)")
        for m in methods
    ]
    seed = results["settings"]["seed"]
    left.bar(
        names,
        [results["methods"].get(m.key, {}).get("accuracy", float("nan")) for m in methods],  # no bar: not run
        color=[{"pooled": "#999999", "dhrd": "#d9822b", "input_lm": "#5a9e4b"}.get(m.key, "#4a7ab5") for m in methods],
        label=f"this run (seed {seed})",
    )
    if spread:
        left.errorbar(
            names,
            [spread[m.key][0] for m in methods],
            yerr=[spread[m.key][1] for m in methods],
            fmt="o",
            color="black",
            capsize=4,
            label="3 seeds, mean ± std",
        )
    left.legend(loc="lower right", fontsize=8)
    left.set_ylim(0, 1)
    left.set_title(f"Held-out accuracy ({results['task']})")
    speed = results["speed"]
    right.bar(
        ["DHRD classifier", "CoT decoding"], [speed["classifier_qps"], speed["cot_qps"]], color=["#d9822b", "#4a7ab5"]
    )
    right.set_yscale("log")
    right.set_title(f"Inference QPS ({speed['speedup_vs_cot']}x)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True


def try_it_command(exported: Path, text: str) -> str:
    """A shell command that classifies `text` with the export and plain transformers (no project code)."""
    # JSON string literals are Python string literals in double quotes: the shell's single quotes stay one pair
    target, sample = json.dumps(str(exported)), json.dumps(text)
    code = f'from transformers import pipeline; print(pipeline("text-classification", model={target})({sample}))'

    return f"{_python_command()} -c {shlex.quote(code)}"


def _python_command() -> str:
    """`python` when that is this interpreter, else its path (relative when under the current folder, as
    `.venv/bin/python` after `make demo`)."""
    here = Path(sys.executable)
    on_path = shutil.which("python")
    if on_path and Path(on_path).resolve() == here.resolve():
        return "python"
    try:
        return str(here.relative_to(Path.cwd()))
    except ValueError:
        return str(here)


def run_demo(args: DemoArguments, training: DHRDTrainingArguments, device: DeviceArguments | None = None) -> str:
    """Train, export and measure; `device` places the measurements, and `--device cpu` keeps training on the CPU
    too (otherwise the Trainer takes every GPU it sees)."""
    start = time.perf_counter()
    device = device or DeviceArguments()
    if args.quick:
        training = replace(training, max_steps=QUICK_STEPS, logging_steps=1)
    if device.torch_device.type == "cpu" and not training.use_cpu:
        training = replace(training, use_cpu=True)
    args = replace(args, attn_implementation=demo_attention(args.attn_implementation, training.device))
    output_dir = Path(training.output_dir)
    backbone = resolve_backbone(args.model)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    task, train, evaluation = demo_data(args, training)
    settings = {
        key: getattr(training, key) for key in DEMO_TRAINING_DEFAULTS if key not in ("output_dir", "report_to")
    }
    results: dict = {
        "task": task.name,
        "backbone": args.model or "SmolLM2-135M-Instruct (embedded)",
        "device": str(device.torch_device),
        "settings": {**asdict(args), **settings},
        "train_rows": len(train),
        "eval_rows": len(evaluation),
        "reference": reference_runs(),
        "methods": {},
    }
    for key in DEMO_ARMS:
        if key in CONTROL_FLAGS and not getattr(args, CONTROL_FLAGS[key]):
            continue
        model, results["methods"][key] = train_one(
            training, backbone, args.attn_implementation, tokenizer, task, train, evaluation, ARMS[key]
        )
        if key == "dhrd":  # the one exported; the others are dropped as soon as they are scored
            dhrd_model = model

    exported = output_dir / "exported"
    export = export_classifier(dhrd_model, exported, tokenizer, overwrite=True)
    texts = list(evaluation["text"])
    with torch.no_grad():
        tokenizer.padding_side = "right"
        batch = tokenizer(texts[:4], padding=True, return_tensors="pt").to(dhrd_model.device)
        expected = full_precision_forward(dhrd_model)(**batch).logits.float().cpu()  # as the export computes
    results["export"] = {
        "architecture": export.architecture,
        "native": export.native,
        "fresh_process_reload": reload_in_fresh_process(exported, texts[:4], expected),
    }
    results["try_it"] = {
        "command": try_it_command(exported, texts[0]),
        "expected_label": task.id2label[int(expected[0].argmax())],
        "gold_label": task.id2label[int(evaluation[0]["label"])],
    }
    qps_texts = (texts * (args.qps_rows // max(1, len(texts)) + 1))[: args.qps_rows]
    results["speed"] = measure_qps(exported, backbone, qps_texts, texts[: args.cot_rows], task, args, device)
    results["total_seconds"] = round(time.perf_counter() - start, 1)
    atomic_write_text(output_dir / "results.json", json.dumps(results, indent=2) + "\n")
    plotted = plot(results, output_dir / "results.png")
    return (
        report_table(results)
        + f"\nwrote {output_dir / 'results.json'}"
        + (f" and {output_dir / 'results.png'}" if plotted else " (matplotlib not installed: no plot)")
    )


def report_table(results: dict) -> str:
    speed, export = results["speed"], results["export"]
    reload = export["fresh_process_reload"]
    spread = reference_spread(results)
    seed = results["settings"]["seed"]
    shown = shown_methods(results, spread)
    width = max(len(method.title) for method in shown)
    lines = [
        f"DHRD demo on {results['task']} ({results['train_rows']} training rows, {results['eval_rows']} held out, "
        f"seed {seed})",
        f"| {'method':<{width}} | accuracy | macro-F1 | train s | 3 seeds (docs/RESULTS.md) |",
        f"|{'-' * (width + 2)}|----------|----------|---------|---------------------------|",
    ]
    for method in shown:
        trained = method.key in results["methods"]
        reference = f"{spread[method.key][0]:.3f} ± {spread[method.key][1]:.3f}" if spread else "— (other setting)"
        if trained:
            row = results["methods"][method.key]
            accuracy, macro_f1, seconds = f"{row['accuracy']:.3f}", f"{row['macro_f1']:.3f}", row["train_seconds"]
        else:
            accuracy, macro_f1, seconds = "—", "—", "not run"
        lines.append(f"| {method.title:<{width}} | {accuracy:<8} | {macro_f1:<8} | {seconds:>7} | {reference:<25} |")
    if spread:
        lines += [reference_verdict(a, b, question) for a, b, question in QUESTIONS if a in spread and b in spread]
        measured = {arm["measured"] for key, arm in reference_runs()["arms"].items() if key in spread}
        if len(measured) > 1:  # the seeds' spread is what the verdicts read; machines and precisions move less
            lines.append(
                f"(the reference rows were measured on {len(measured)} machines or precisions: "
                "trainer/cli/demo_reference.json says which)"
            )
        lines += [
            f"(the {ARMS[key].title} row was not trained in this run: --{flag} trains it)"
            for key, flag in CONTROL_FLAGS.items()
            if key in spread and key not in results["methods"]
        ]
    try_it = results["try_it"]
    lines += [
        "",
        f"inference: exported classifier {speed['classifier_qps']} inputs/s vs CoT decoding {speed['cot_qps']} "
        f"inputs/s ({speed['cot_new_tokens']} new tokens each): {speed['speedup_vs_cot']}x faster",
        f"export: {export['architecture']} (native: {export['native']}); fresh-process reload with plain "
        f"AutoModelForSequenceClassification: {'OK' if reload['ok'] else 'MISMATCH'} "
        f"(max logit diff {reload['max_abs_logit_diff']:.1e})",
        f"try it on a held-out input (gold: {try_it['gold_label']}, DHRD says: {try_it['expected_label']}):",
        f"  {try_it['command']}",
        f"total time: {results['total_seconds']} s",
    ]
    return "\n".join(lines)
