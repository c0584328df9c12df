"""Accuracy study: pooled baseline (lm_weight=0) against DHRD, same backbone, budget and seeds, on real rationales.

One command per table; every condition of a study runs for every seed with the same steps, learning rate and data
order, and the table reports mean ± std over seeds:

    python examples/accuracy_study.py --study synthetic --seeds 0,1,2   # mechanism check (programmatic teacher)
    python examples/accuracy_study.py --study synthetic_multistep --eval-split test  # the harder mechanism check
    python examples/accuracy_study.py --study esnli --train-rows 100,200,400 --shuffled  # a data-efficiency curve
    python examples/accuracy_study.py --study esnli --seeds 0,1,2       # PaLM-540B CoT and human explanations
    python examples/accuracy_study.py --study copa --seeds 0,1,2        # COPA-SSE; COPA val + 500 COPA-SSE test items
    python examples/accuracy_study.py --study cqa --seeds 0,1,2         # CommonsenseQA with PaLM-540B CoT
    python examples/accuracy_study.py --study rte --seeds 0,1,2         # embedded-teacher rationales (cached)
    python examples/accuracy_study.py --study cb --seeds 0,1,2

Conditions: `pooled` (lm_weight 0), `dhrd` (lm_weight 1, the paper's weight), `dhrd_a0.3` (an alpha ablation),
`dhrd_shuffled` (rationales permuted across rows: the paper's control, should not help), `input_lm` (the LM loss on
the input alone, no teacher: `--lm_loss_scope input`), and per study the other
rationale source where there is one (`dhrd_human` for e-SNLI, `dhrd_cos_e` for CommonsenseQA).
Results go to `--output-dir` as `<name>.json` and `<name>.md` (`--name`, default the study), rewritten after every
run so an interrupted study keeps what it finished. `--cot-eval N` also decodes N evaluation rows with each DHRD
run's trained reasoning head (`[x, reason marker]` -> rationale -> answer): the CoT accuracy of the same
fine-tuned backbone, at the cost DHRD avoids.

Several `--train-rows` (`100,200,400`) make a data-efficiency curve: each size trains on the first rows of the same
training set (nested subsets) with the same `--steps`, so every point has the same compute and differs only in how
many distinct rows it is drawn from; `examples/plot_curves.py` draws it. `--resume` keeps the runs an earlier
invocation with the same `--name` finished (a study can span sessions). The synthetic studies choose settings on
`--eval-split val` and score the held-out `test` split once per final setting.
"""

import argparse
import json
import random
import statistics
import time
from pathlib import Path

from datasets import Dataset
from transformers import AutoTokenizer, set_seed

from modeling_dhrd import DHRDForMultipleChoice, DHRDForSequenceClassification
from modeling_dhrd.atomic import atomic_write_text
from trainer import DHRDTrainer, DHRDTrainingArguments, paper_lora_config
from trainer.embedded import BACKBONE_HELP, resolve_backbone
from trainer.inference.reasoning_decode import reasoning_head_decode
from trainer.jobs.progress import quiet_library_bars
from trainer.tasks import get_task
from trainer.tasks import rationale_sets as joins
from trainer.tasks.rationale_sets import shuffled_rationales as shuffled


def _rationale_root(args) -> Path:
    return Path(args.data_dir) / "rationales"


def study_data(args, n: int) -> tuple[object, Dataset, dict[str, Dataset], dict[str, Dataset]]:
    """(task, `n` train rows without rationale, {source: train rows with rationale}, {eval name: rows})."""
    if args.study.startswith("synthetic"):
        task = get_task(args.study)
        train = task.load("train", limit=n)
        evaluation = task.load(args.eval_split, limit=min(args.eval_rows, 500))
        return task, train.remove_columns("rationale"), {"programmatic": train}, {args.eval_split: evaluation}
    if args.study == "esnli":
        task = get_task("esnli")
        rows = task.load("val", args.data_dir)
        evaluation = rows.select(range(len(rows) - args.eval_rows, len(rows)))  # a fixed held-out tail
        train = rows.select(range(n))
        palm, _ = joins.join_palm_esnli(train, _rationale_root(args) / "palm_esnli")
        human, _ = joins.join_palm_esnli(train, _rationale_root(args) / "palm_esnli", source="human")
        return task, train, {"palm": palm, "human": human}, {"heldout": evaluation}
    if args.study == "copa":
        task = get_task("copa")
        train = task.load("train", args.data_dir)
        sse, _ = joins.join_copa_sse(train, "train", _rationale_root(args) / "copa_sse")
        evaluations = {
            "val": task.load("val", args.data_dir),
            "sse_test": get_task("copa_sse").load("test", args.data_dir),
        }
        return task, train, {"copa_sse": sse}, evaluations
    if args.study == "cqa":
        task = get_task("commonsense_qa")
        full = task.load("train", args.data_dir)
        palm_full, _ = joins.join_palm_cqa(full, "train", _rationale_root(args) / "palm_cqa")
        subset = sorted(random.Random(0).sample(range(len(full)), n))  # a fixed random subsample of train
        cos_e, _ = joins.join_cos_e(full.select(subset), "train", _rationale_root(args) / "cos_e_v1.11")
        evaluation = task.load("test", args.data_dir)
        evaluation = evaluation.select(range(min(args.eval_rows, len(evaluation))))
        return task, full.select(subset), {"palm": palm_full.select(subset), "cos_e": cos_e}, {"test": evaluation}
    if args.study in ("rte", "cb"):
        from trainer.teachers import LocalTeacher, generate_rationales

        task = get_task(args.study)
        train = task.load("train", args.data_dir)
        train = train.select(sorted(random.Random(0).sample(range(len(train)), min(n, len(train)))))
        teacher = LocalTeacher(batch_size=8, max_new_tokens=96)
        cache = Path(args.teacher_cache) / args.study  # holds task text: kept out of docs/ and out of git
        generated, summary = generate_rationales(train, task, teacher, cache)
        print(f"teacher: {summary}")
        return task, train, {"smollm2_teacher": generated}, {"val": task.load("val", args.data_dir)}
    raise ValueError(f"unknown study {args.study!r}")


def conditions(args, sources: dict[str, Dataset]) -> list[tuple[str, float, str | None, bool, str]]:
    """(name, lm_weight, rationale source, shuffled, lm_loss_scope)."""
    main = next(iter(sources))
    weight, scope = args.lm_weight, args.lm_loss_scope
    result = [
        ("pooled", 0.0, None, False, scope),
        ("dhrd", weight, main, False, scope),
        ("dhrd_a0.3", 0.3, main, False, scope),
        ("input_lm", weight, None, False, "input"),  # the teacher-free control: the LM loss on the input alone
    ]
    result += [(f"dhrd_{name}", weight, name, False, scope) for name in list(sources)[1:]]
    if args.shuffled:
        result.append(("dhrd_shuffled", weight, main, True, scope))
    return [c for c in result if not args.only or c[0] in args.only.split(",")]


def as_choice_rows(rows: Dataset) -> Dataset:
    """A task's multiple-choice form as the trainer reads it: the context as `text`, with its `options`."""
    return rows.remove_columns([c for c in ("text",) if c in rows.column_names]).rename_column("context", "text")


def run_one(
    args,
    task,
    train: Dataset,
    evaluations: dict,
    lm_weight: float,
    seed: int,
    backbone: str,
    tokenizer,
    label: str,
    lm_loss_scope: str,
):
    set_seed(seed)
    if args.multiple_choice:  # one score per [context, option]; the rationale rides on the gold option's row
        model = DHRDForMultipleChoice.from_backbone(backbone, attn_implementation=args.attn_implementation)
        train, evaluations = as_choice_rows(train), {name: as_choice_rows(rows) for name, rows in evaluations.items()}
    else:
        model = DHRDForSequenceClassification.from_backbone(
            backbone, id2label=task.id2label, attn_implementation=args.attn_implementation
        )
    training_args = DHRDTrainingArguments(
        output_dir=str(Path(args.output_dir) / "runs"),
        num_train_epochs=args.epochs,
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=32,
        learning_rate=args.lr,
        lr_scheduler_type="linear",
        warmup_steps=0.1,
        weight_decay=0.0,
        lm_weight=lm_weight,
        lm_loss_scope=lm_loss_scope,
        logging_steps=25,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=seed,
        data_seed=seed,
        max_input_length=args.max_input_length,
        max_length=args.max_length,
        bf16=args.bf16,
        disable_tqdm=True,
        run_name=label,
    )
    trainer = DHRDTrainer(
        model=model,
        args=training_args,
        train_dataset=train,
        processing_class=tokenizer,
        peft_config=paper_lora_config() if args.lora else None,
    )
    trainer.train()
    scores = {}
    for name, rows in evaluations.items():
        prediction = trainer.predict(rows, metric_key_prefix=name)
        predicted = prediction.predictions.argmax(-1).tolist()
        scores[name] = task.score_rows(predicted, rows)
        # the predicted label ids as one string: lets runs be compared item by item (agreement, label bias)
        scores[name]["predictions"] = "".join(str(p) for p in predicted) if task.num_labels <= 10 else None
    if args.cot_eval and lm_weight > 0 and not args.multiple_choice:
        name, rows = next(iter(evaluations.items()))
        rows = rows.select(range(min(args.cot_eval, len(rows))))
        decoded = reasoning_head_decode(
            trainer.model, tokenizer, rows["text"], task.id2label, batch_size=16, max_new_tokens=args.cot_tokens
        )
        scores[f"{name}_cot"] = {**task.score_rows(decoded.predictions, rows), **decoded.stats()}
    return scores


def summarise(runs: list[dict]) -> dict:
    """{row: {evaluation/metric: mean, std, n}}; a row is a condition, or on a curve (runs at several sizes) a
    condition at a size (`dhrd@100`)."""
    curve = len({run["train_rows"] for run in runs}) > 1
    table = {}
    for run in runs:
        for evaluation, scores in run["scores"].items():
            for metric, value in scores.items():
                if not isinstance(value, (int, float)):
                    continue  # e.g. the predictions string
                key = f"{run['condition']}@{run['train_rows']}" if curve else run["condition"]
                table.setdefault(key, {}).setdefault(f"{evaluation}/{metric}", []).append(value)
    return {
        condition: {
            key: {"mean": statistics.mean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0, "n": len(v)}
            for key, v in metrics.items()
        }
        for condition, metrics in table.items()
    }


def markdown(summary: dict) -> str:
    columns = sorted({key for metrics in summary.values() for key in metrics})
    lines = ["| condition | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for condition, metrics in summary.items():
        cells = [
            f"{metrics[c]['mean']:.3f} ± {metrics[c]['std']:.3f} (n={metrics[c]['n']})" if c in metrics else "—"
            for c in columns
        ]
        lines.append(f"| {condition} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    studies = ["synthetic", "synthetic_multistep", "synthetic_multistep_worked", "esnli", "copa", "cqa", "rte", "cb"]
    parser.add_argument("--study", default="synthetic", choices=studies)
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--only", default=None, help="comma-separated conditions to run")
    parser.add_argument("--shuffled", action="store_true", help="add the shuffled-rationale control")
    parser.add_argument("--train-rows", default="1000", help="rows, or several (100,200,400) for a curve")
    parser.add_argument("--eval-rows", type=int, default=1000)
    parser.add_argument("--eval-split", default="val", choices=["val", "test"], help="synthetic studies: scored split")
    parser.add_argument("--lm-weight", type=float, default=1.0, help="lm_weight of the DHRD conditions (paper: 1)")
    parser.add_argument("--resume", action="store_true", help="keep the finished runs of an earlier --name report")
    parser.add_argument("--steps", type=int, default=-1, help="optimizer steps (-1: use --epochs)")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--lora", action="store_true", help="LoRA r=16 alpha=32 (paper) instead of full fine-tuning")
    parser.add_argument("--lm-loss-scope", default="all")
    parser.add_argument("--max-input-length", type=int, default=256)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--attn-implementation", default=None, help="backbone attention: sdpa (default), eager, ...")
    parser.add_argument("--model", default=None, help=BACKBONE_HELP)
    parser.add_argument("--output-dir", default="docs/results")
    parser.add_argument("--teacher-cache", default="outputs/teacher-rationales", help="embedded-teacher output")
    parser.add_argument("--name", default=None, help="output file stem (default: the study)")
    parser.add_argument("--cot-eval", type=int, default=0, help="rows decoded with the trained reasoning head")
    parser.add_argument("--cot-tokens", type=int, default=128, help="new-token cap for --cot-eval")
    parser.add_argument(
        "--multiple-choice",
        action="store_true",
        help="copa / cqa: score each option (DHRDForMultipleChoice) instead of one head over the listed options",
    )
    parser.add_argument("--smoke", action="store_true", help="synthetic, 2 steps, 1 seed (CI, under a minute)")
    args = parser.parse_args()
    if args.smoke:
        args.study, args.seeds, args.only, args.steps, args.train_rows, args.eval_rows = (
            "synthetic",
            "0",
            "pooled,dhrd",
            2,
            "16",
            16,
        )
        args.cot_eval, args.cot_tokens = 4, 4
    Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    quiet_library_bars()  # a study's log is a file: plain lines, no redrawn bars
    backbone = resolve_backbone(args.model)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    sizes = [int(size) for size in args.train_rows.split(",")]
    stem = Path(args.output_dir) / (args.name or args.study)
    earlier = report_path(stem, ".json")
    resumed = json.loads(earlier.read_text()) if args.resume and earlier.exists() else {"runs": [], "cpu_seconds": 0}
    runs = resumed["runs"]
    finished = {(run["condition"], run["seed"], run.get("train_rows")) for run in runs}
    start = time.time() - resumed["cpu_seconds"]  # a resumed report counts its earlier sessions' time too
    for size in sizes:
        task, plain, sources, evaluations = study_data(args, size)
        for seed in [int(s) for s in args.seeds.split(",")]:
            for name, lm_weight, source, shuffle, scope in conditions(args, sources):
                if (name, seed, len(plain)) in finished:
                    continue
                train = plain if source is None else (shuffled(sources[source], seed) if shuffle else sources[source])
                began = time.time()
                label = f"{name} seed {seed}" + (f" {size} rows" if len(sizes) > 1 else "")
                scores = run_one(args, task, train, evaluations, lm_weight, seed, backbone, tokenizer, label, scope)
                runs.append(
                    {
                        "condition": name,
                        "seed": seed,
                        "lm_weight": lm_weight,
                        "source": source,
                        "lm_loss_scope": scope,
                        "train_rows": len(plain),
                        "seconds": round(time.time() - began),
                        "scores": scores,
                    }
                )
                print(json.dumps(runs[-1]), flush=True)
                write_report(args, stem, evaluations, runs, time.time() - start)
    print(markdown(summarise(runs)))


def write_report(args, stem: Path, evaluations: dict, runs: list[dict], seconds: float) -> None:
    """The JSON record and the markdown table, written atomically after every run."""
    summary = summarise(runs)
    report = {
        "study": args.study,
        "settings": vars(args),
        "train_rows": sorted({run["train_rows"] for run in runs}),
        "eval_rows": {k: len(v) for k, v in evaluations.items()},
        "cpu_seconds": round(seconds),
        "runs": runs,
        "summary": summary,
    }
    atomic_write_text(report_path(stem, ".json"), json.dumps(report, indent=2) + "\n")
    atomic_write_text(report_path(stem, ".md"), markdown(summary) + "\n")


def report_path(stem: Path, suffix: str) -> Path:
    """`stem` + `suffix`; not `with_suffix`, which would read `w0.3` in a name as a suffix to replace."""
    return stem.with_name(stem.name + suffix)


if __name__ == "__main__":
    main()
