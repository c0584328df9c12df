"""`dhrd compare`: does the teacher pay on my data? Trains several arms on the same rows, seeds and budget, scores
them on the same held-out rows, and answers with paired differences:

- `pooled`: the pooled classifier (`lm_weight 0`), what DHRD must beat;
- `input_lm`: the LM loss on the input alone (`lm_loss_scope input`), the teacher-free control;
- `shuffled`: DHRD on the rationales permuted across rows, what the LM objective gives without a rationale's content;
- `dhrd`: DHRD on the rationales.

Every (arm, seed) run is one finished record in `output_dir/runs/` (its metrics and its per-row predictions,
which the paired intervals need), written once, so a killed compare reruns only what did not finish; the folder's
manifest (data and its content, backbone, training flags, split) refuses a rerun of another job. The report is
`compare.json`, `compare.md` and `compare.png`.
"""

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
from datasets import Dataset

from modeling_dhrd.atomic import atomic_write_text

from ..data.description import ROW_CAPS, DatasetArguments
from ..data.labelled import LabelledData
from ..embedded import resolve_backbone
from ..inference.classify import check_model_reference
from ..jobs.fingerprint import data_identity, model_identity
from ..jobs.ranks import launched_processes
from ..jobs.shards import ShardedResults, dataclass_defaults
from ..kinds.base import ProblemKind
from ..kinds.paired import metric_scale, paired_difference
from ..tasks.rationale_sets import shuffled_rationales
from ..teachers.bill import tokens_cost
from ..training.arms import ARMS, QUESTIONS, Arm
from .checks import check_prices
from .train import ModelArguments, TrainCommandArguments, run_training

logger = logging.getLogger(__name__)


# Training flags that differ between runs by design: not part of the job's identity. (`lm_weight` and
# `lm_loss_scope` are: the dhrd and shuffled arms train with the values given.)
PER_RUN_FLAGS = ("output_dir", "seed", "run_name", "logging_dir", "overwrite_output_dir")


@dataclass
class CompareArguments:
    arms: str = field(
        default="pooled,input_lm,shuffled,dhrd",
        metadata={"help": f"Comma-separated arms to train, of {', '.join(ARMS)} (see `dhrd compare` in the README)."},
    )
    seeds: str = field(default="0,1,2", metadata={"help": "Comma-separated seeds; every arm trains once per seed."})
    split: Literal["validation", "test"] = field(
        default="validation",
        metadata={"help": "The split every run is scored on (held out from training; choose settings on validation)."},
    )
    metric: str | None = field(
        default=None,
        metadata={
            "help": "The metric the differences and verdicts use. Default: the kind's first (accuracy for "
            "single-label and multiple choice, micro_f1 for multi-label, mse for regression, mae for ordered classes)."
        },
    )
    bootstrap_draws: int = field(default=2000, metadata={"help": "Draws of the seeds-and-rows bootstrap interval."})
    keep_models: bool = field(
        default=False,
        metadata={"help": "Keep each run's export (runs/<arm>-seed<k>/export); else only metrics and predictions."},
    )
    input_price: float | None = field(default=None, metadata={"help": "Teacher price per million prompt tokens."})
    output_price: float | None = field(
        default=None, metadata={"help": "Teacher price per million completion tokens (the bill beside the gain)."}
    )
    overwrite: bool = field(default=False, metadata={"help": "Start over in an output_dir that holds another job."})
    report_only: bool = field(
        default=False,
        metadata={
            "help": "Train nothing: report the seeds whose every arm has finished (where a long compare stands; safe "
            "from another shell while it runs)."
        },
    )

    def __post_init__(self) -> None:
        check_prices(self.input_price, self.output_price)
        if self.report_only and self.overwrite:
            raise ValueError("--report_only reads the finished runs; --overwrite would remove them. Give one.")

    def arm_list(self) -> list[Arm]:
        keys = [key.strip() for key in self.arms.split(",") if key.strip()]
        unknown = [key for key in keys if key not in ARMS]
        if unknown or not keys:
            problem = f"unknown {unknown}" if unknown else "none given"
            raise ValueError(f"--arms {self.arms!r}: {problem}; choose from {', '.join(ARMS)}.")
        return [ARMS[key] for key in dict.fromkeys(keys)]

    def seed_list(self) -> list[int]:
        try:
            seeds = [int(seed) for seed in self.seeds.split(",") if seed.strip()]
        except ValueError:
            raise ValueError(f"--seeds {self.seeds!r}: give integers separated by commas, e.g. 0,1,2.") from None
        if not seeds:
            raise ValueError("--seeds: give at least one seed, e.g. 0,1,2.")
        return list(dict.fromkeys(seeds))


def run_compare(
    args: CompareArguments, model_args: ModelArguments, data_args: DatasetArguments, training: TrainCommandArguments
) -> str:
    arms, seeds = args.arm_list(), args.seed_list()
    if launched_processes() > 1:
        raise ValueError(
            "dhrd compare runs in one process (its runs one after another); launch it without torchrun, or give "
            "each run's `dhrd train` the processes."
        )
    _refuse_flags_that_break_the_comparison(args, arms, training)
    data = LabelledData(data_args)
    if not data.has(args.split):
        raise ValueError(f"dhrd compare scores the {args.split} split; the data description has none (give one).")
    if any(arm.uses_rationales for arm in arms) and "rationale" not in data.rows("train").column_names:
        raise ValueError(
            f"{data.source('train')}: no rationale column {data_args.rationale_column!r}: the arms "
            f"{[a.key for a in arms if a.uses_rationales]} train on rationales (write them with `dhrd rationales`)."
        )
    kind = data.kind
    metric = args.metric or next(iter(kind.metric_directions))
    if metric not in kind.metric_directions:
        raise ValueError(f"--metric {metric!r}: the {kind.name} metrics are {', '.join(kind.metric_directions)}.")
    scored = data.rows(args.split)
    kind.require_batchable(scored, data.source(args.split))  # each run scores in the training batches' shape
    labels = np.asarray(scored["label"])
    output_dir = Path(training.output_dir)
    manifest = _manifest(data, args, model_args, training)
    # a folder an older version began resumes when the flags added since are at their defaults (as the manifest
    # writes them: a default-built instance's flags, after transformers has normalised them)
    unset = TrainCommandArguments(output_dir=training.output_dir, use_cpu=training.use_cpu)  # no other device set up
    defaults = {
        "model": dataclass_defaults(ModelArguments),
        "training": _training_flags(unset),
        "row_caps": dict.fromkeys(ROW_CAPS.values()),  # no cap: every row, as before a cap existed
        # not recorded before: an older folder is taken at its word
        "labels": manifest["labels"],
        "backbone": manifest["backbone"],
    }
    runs = ShardedResults(output_dir / "runs", manifest=manifest, defaults=defaults)
    todo = [(arm, seed) for seed in seeds for arm in arms]
    so_far = None
    if args.report_only:
        finished, seeds, so_far = _finished_so_far(runs, arms, seeds)
    else:
        with runs.open(args.overwrite) as (done, shard):
            if args.overwrite:  # the job started over: the exports the earlier one kept go with its records
                for stale in [path for path in runs.folder.iterdir() if path.is_dir()]:
                    shutil.rmtree(stale)
            pending = [todo[i] for i in done.missing([_run_id(arm, seed) for arm, seed in todo])]
            if len(pending) < len(todo):
                already = len(todo) - len(pending)
                logger.info("%d of %d runs already finished in %s: training the rest", already, len(todo), output_dir)
            for number, (arm, seed) in enumerate(pending, 1):
                print(f"\n== compare {number}/{len(pending)}: {arm.title}, seed {seed} ==", flush=True)
                shard.write([_one_run(arm, seed, args, model_args, data_args, training, scored, kind, metric)])
        finished = runs.load()
    report = _report(arms, seeds, finished, kind, labels, metric, args, data_args)
    # a report over some runs goes beside the compare's own, never over it (which it would race while runs finish)
    name = "compare"
    if so_far is not None:
        report["so_far"], name = so_far, "compare_so_far"
    atomic_write_text(output_dir / f"{name}.json", json.dumps(report, indent=2) + "\n")
    markdown = _markdown(report)
    atomic_write_text(output_dir / f"{name}.md", markdown)
    plotted = _plot(report, output_dir / f"{name}.png")
    written = f"{name}.json, {name}.md" + (f", {name}.png" if plotted else " (matplotlib not installed: no plot)")
    return f"{markdown}\nwrote {written} in {output_dir}"


def _refuse_flags_that_break_the_comparison(
    args: CompareArguments, arms: list[Arm], training: TrainCommandArguments
) -> None:
    """The training flags a compare cannot honour: each would make the arms or their scores something else than
    what the report says they are."""
    if training.chooses_on_validation and args.split == "validation":
        raise ValueError(
            "--early_stopping_patience / --load_best_model_at_end / --tune_thresholds / a reduce_lr_on_plateau or "
            "greedy scheduler choose on the validation rows, so scoring them would be optimistic: score the test "
            "split (--split test, with --test_file or the dataset's test split)."
        )
    # the arms train with the LM weight and scope given, each control setting its own
    if training.lm_weight == 0 and (weighted := [arm.key for arm in arms if arm.lm_weight is None]):
        raise ValueError(
            f"--lm_weight 0 is the pooled arm's setting: the {_arms_would_be(weighted)} the pooled arm. Give a "
            "positive weight (the default 1 is the paper's)."
        )
    if training.lm_loss_scope == "input" and (
        scoped := [a.key for a in arms if a.lm_loss_scope is None and a.lm_weight != 0]
    ):
        raise ValueError(
            f"--lm_loss_scope input is the input_lm arm's setting: the {_arms_would_be(scoped)} the input_lm arm. "
            "Give rationale or all (the default)."
        )
    if training.resume_from_checkpoint:
        raise ValueError(
            "--resume_from_checkpoint would start every run from one checkpoint; dhrd compare resumes by itself: "
            "rerun the same command: the finished runs are kept (a run killed midway starts over)."
        )
    # every run scores every row of the split, in order: the paired differences compare the arms row by row
    if training.dataloader_drop_last:
        raise ValueError("--dataloader_drop_last would drop scored rows from each run's last batch: drop the flag.")
    if not training.dataloader_in_order:
        raise ValueError(
            "--dataloader_in_order false would score the rows out of order, and the arms are compared row by row: "
            "drop the flag."
        )
    if training.prediction_loss_only:
        raise ValueError("--prediction_loss_only would keep no predictions to score: drop the flag.")
    if not training.eval_do_concat_batches:
        raise ValueError(
            "--eval_do_concat_batches false would return the scored rows batch by batch, and every run is scored "
            "on all of them at once: drop the flag."
        )


def _arms_would_be(keys: list[str]) -> str:
    """`['dhrd', 'shuffled']` -> 'dhrd and shuffled arms would be' (in a fixed order, whatever --arms said)."""
    names = sorted(keys)
    return f"{', '.join(names[:-1])} and {names[-1]} arms would be" if len(names) > 1 else f"{names[0]} arm would be"


def _finished_so_far(
    runs: ShardedResults, arms: list[Arm], seeds: list[int]
) -> tuple[dict[str, dict], list[int], dict]:
    """`--report_only`: the finished records (read, never written: another process may be adding to them), the seeds
    whose every arm has finished, and how far the compare has come; refused while no seed is complete."""
    runs.check_manifest(reader=True)  # another job's runs are refused here too, without advice to remove them
    finished = runs.load()
    asked = [_run_id(arm, seed) for seed in seeds for arm in arms]
    count = sum(run in finished for run in asked)
    complete = [seed for seed in seeds if all(_run_id(arm, seed) in finished for arm in arms)]
    if not complete:
        raise ValueError(
            f"--report_only: no seed of {seeds} has all its arms finished in {runs.folder} yet ({count} of "
            f"{len(asked)} runs); rerun without --report_only to train them."
        )
    return finished, complete, {"seeds_asked": seeds, "runs_finished": count, "runs_asked": len(asked)}


def _run_id(arm: Arm, seed: int) -> str:
    return f"{arm.key}-seed{seed}"


def _manifest(
    data: LabelledData, args: CompareArguments, model_args: ModelArguments, training: TrainCommandArguments
) -> dict:
    """What every run's result depends on besides its arm and seed."""
    read = {"train", args.split, *(("validation",) if training.reads_validation_in_training else ())}
    # the caps of the splits the runs read: a cap on another split changes nothing they do
    caps = {name: getattr(data.args, name) if split in read else None for split, name in ROW_CAPS.items()}
    return {
        "job": "dhrd compare",
        # the labels' ids come from every split given (the test file's names too, unread with --split validation)
        "labels": {"kind": data.kind.name, "names": data.label_names},
        # the weights behind the name: a folder retrained in place, or a Hub repo updated, is another backbone
        "backbone": _backbone_identity(model_args),
        "train": data_identity(data, "train"),
        "scored": data_identity(data, args.split),
        "validation": data_identity(data, "validation") if data.has("validation") else None,
        "row_caps": caps,
        "model": asdict(model_args),
        "training": _training_flags(training),
    }


def _backbone_identity(model_args: ModelArguments) -> dict:
    """The backbone's identity (`model_identity`); a mistyped folder is named as missing, as `dhrd train` does."""
    name = model_args.model_name_or_path
    if name and not model_args.gguf_file:
        check_model_reference(name, bare_names=True)
    return model_identity(resolve_backbone(name), gguf_file=model_args.gguf_file)


def _training_flags(training: TrainCommandArguments) -> dict:
    """The training flags a manifest records (those the same for every run), as JSON."""
    flags = {key: value for key, value in training.to_dict().items() if key not in PER_RUN_FLAGS}
    return json.loads(json.dumps(flags, default=str))


def _one_run(
    arm: Arm,
    seed: int,
    args: CompareArguments,
    model_args: ModelArguments,
    data_args: DatasetArguments,
    training: TrainCommandArguments,
    scored: Dataset,
    kind: ProblemKind,
    metric: str,
) -> dict:
    """Train one arm with one seed, score it on `scored`, and return its record (the model is removed unless
    `--keep_models`, which keeps its export)."""
    from modeling_dhrd import export_classifier

    folder = Path(training.output_dir) / "runs" / _run_id(arm, seed)
    settings = {"seed": seed, "output_dir": str(folder / "model"), "run_name": f"{arm.key} seed {seed}"}
    settings["overwrite_output_dir"] = True  # a run killed before its record was written starts over
    run_args = replace(training, **settings, **arm.training_settings())
    # `replace` runs `__post_init__` again, where transformers' filled-in metric would now count as given
    run_args.metric_given, run_args.greater_is_better_given = training.metric_given, training.greater_is_better_given
    shutil.rmtree(folder / "model", ignore_errors=True)  # a run killed before its record: its checkpoints go
    start = time.perf_counter()
    shuffle = (lambda rows: shuffled_rationales(rows, seed)) if arm.shuffled else None
    # the validation split serves early stopping and tuned thresholds when the flags ask for them; the score is
    # the compare's own, on --split
    trainer = run_training(model_args, data_args, run_args, prepare_train=shuffle, final_evaluation=False)
    seconds = time.perf_counter() - start
    output = trainer.predict(scored)
    logits = np.asarray(output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions)
    thresholds = trainer._dhrd_config.label_thresholds
    predictions = kind.decide(logits, thresholds)
    scores = kind.scores(predictions, np.asarray(scored["label"]), logits.shape[-1])
    if args.keep_models:
        export_classifier(trainer.model, folder / "export", trainer.processing_class, overwrite=True)
    shutil.rmtree(folder / "model", ignore_errors=True)
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()  # nothing of the run is kept beside its record
    logger.info("%s, seed %d: %s = %.4f (%.0f s)", arm.title, seed, metric, scores[metric], seconds)
    return {
        "id": _run_id(arm, seed),
        "arm": arm.key,
        "seed": seed,
        "metrics": scores,
        "train_seconds": round(seconds, 1),
        "steps": trainer.state.global_step,
        "num_outputs": int(logits.shape[-1]),
        "predictions": predictions.tolist(),
    }


def _report(arms, seeds, finished, kind, labels, metric, args: CompareArguments, data_args) -> dict:
    num_outputs = next(iter(finished.values()))["num_outputs"]
    per_arm = {}
    for arm in arms:
        runs = [finished[_run_id(arm, seed)] for seed in seeds]
        values = {name: [run["metrics"][name] for run in runs] for name in runs[0]["metrics"]}
        per_arm[arm.key] = {
            "title": arm.title,
            "metrics": {
                name: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, "runs": v}
                for name, v in values.items()
            },
            "train_seconds": float(np.mean([run["train_seconds"] for run in runs])),
        }
    predictions = {
        arm.key: [np.asarray(finished[_run_id(arm, seed)]["predictions"]) for seed in seeds] for arm in arms
    }
    keys = {arm.key for arm in arms}
    differences = []
    for first, second, question in QUESTIONS:
        if {first, second} <= keys:
            difference = paired_difference(
                kind, first, second, predictions, labels, num_outputs, metric, draws=args.bootstrap_draws
            )
            differences.append({"question": question, "verdict": difference.verdict(question), **difference.to_dict()})
    return {
        "metric": metric,
        "greater_is_better": kind.metric_directions[metric],
        "split": args.split,
        "rows_scored": int(len(labels)),
        "seeds": seeds,
        "arms": per_arm,
        "differences": differences,
        "interval": "95%, a bootstrap over seeds and rows (paired: the same rows for both arms)",
        "teacher_bill": _teacher_bill(data_args, args),
    }


def _teacher_bill(data_args: DatasetArguments, args: CompareArguments) -> dict | None:
    """What the rationales cost, from the `summary.json` that `dhrd rationales` wrote beside the training file: the
    job's tokens over every finished row (a job finished in several runs spent them all); a summary from before the
    job's totals were kept holds its last run's tokens only, and the bill says so."""
    train_file = data_args.train_file
    summary_path = Path(train_file).parent / "summary.json" if train_file else None
    if summary_path is None or not summary_path.is_file():
        return None
    summary = json.loads(summary_path.read_text())
    whole_job = "job_completion_tokens" in summary
    prefix = "job_" if whole_job else ""
    bill = {
        "summary": str(summary_path),
        "prompt_tokens": summary.get(f"{prefix}prompt_tokens", 0),
        "completion_tokens": summary.get(f"{prefix}completion_tokens", 0),
        "tokens_estimated": summary.get(f"{prefix}tokens_estimated", False),
        "last_run_only": not whole_job,
        "rows_without_prompt_count": summary.get("job_rows_without_prompt_count", 0),
    }
    if args.input_price is not None and args.output_price is not None:
        cost = tokens_cost(bill["prompt_tokens"], bill["completion_tokens"], args.input_price, args.output_price)
        bill["cost"] = round(cost, 4)
    return bill


def _markdown(report: dict) -> str:
    metric = report["metric"]
    factor, unit = metric_scale(metric)
    digits = 1 if factor != 1 else 4
    title = f"# dhrd compare: {metric} on {report['rows_scored']} {report['split']} rows, seeds {report['seeds']}"
    lines = [title, ""]
    so_far = report.get("so_far")
    if so_far:
        lines += [
            f"So far (`--report_only`): the seeds whose every arm has finished, of {so_far['seeds_asked']} asked "
            f"({so_far['runs_finished']} of {so_far['runs_asked']} runs finished).",
            "",
        ]
    lines += [
        f"| arm | {metric} (mean ± std) | per seed | training s |",
        "|---|---|---|---|",
    ]
    for arm in report["arms"].values():
        score = arm["metrics"][metric]
        runs = ", ".join(f"{value * factor:.{digits}f}" for value in score["runs"])
        lines.append(
            f"| {arm['title']} | {score['mean'] * factor:.{digits}f} ± {score['std'] * factor:.{digits}f} | {runs} | "
            f"{arm['train_seconds']:.0f} |"
        )
    lines += ["", *(f"- {difference['verdict']}" for difference in report["differences"])]
    bill = report["teacher_bill"]
    if bill:
        tokens = bill["prompt_tokens"] + bill["completion_tokens"]
        # a lower bound where rows an older version finished recorded no prompt count; estimated where a server
        # reported no usage
        approx = "at least " if bill["rows_without_prompt_count"] else "~" if bill["tokens_estimated"] else ""
        cost = f" ({approx}{bill['cost']:,.2f} at the prices given)" if "cost" in bill else ""
        gain = next((d for d in report["differences"] if d["second"] == "pooled"), None)
        beside = f" for {gain['mean']:+.{digits}f}{unit} over the pooled baseline" if gain else ""
        partial = "; the last `dhrd rationales` run's tokens only (an older summary)" if bill["last_run_only"] else ""
        lines += ["", f"The teacher's bill: {approx}{tokens:,} tokens{cost}{beside} ({bill['summary']}{partial})."]
    lines += ["", f"Intervals: {report['interval']}."]
    return "\n".join(lines) + "\n"


def _plot(report: dict, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    metric = report["metric"]
    factor, unit = metric_scale(metric)
    arms = list(report["arms"].values())
    figure, axis = plt.subplots(figsize=(2 + 1.6 * len(arms), 3.6))
    names = [arm["title"].replace(" (", "\n(").replace(", ", ",\n") for arm in arms]
    means = [arm["metrics"][metric]["mean"] * factor for arm in arms]
    stds = [arm["metrics"][metric]["std"] * factor for arm in arms]
    axis.bar(names, means, yerr=stds, capsize=4, color="#4a7ab5")
    for index, arm in enumerate(arms):
        runs = [value * factor for value in arm["metrics"][metric]["runs"]]
        axis.scatter([index] * len(runs), runs, color="black", s=12, zorder=3)
    axis.set_ylabel(f"{metric}{unit and ' (%)'}")
    axis.set_title(f"{report['split']} rows: mean ± std over seeds {report['seeds']}")
    figure.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(tmp, dpi=120)
    plt.close(figure)
    tmp.replace(path)
    return True
