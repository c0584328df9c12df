"""`dhrd evaluate`: task metrics of a DHRD checkpoint or an exported classifier, or of CoT decoding with a backbone."""

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from datasets import Dataset
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from .run_training import load_table
from .tasks import Task, get_task

HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")


@dataclass
class EvaluateArguments:
    model: str = field(metadata={"help": "DHRD checkpoint, exported classifier, or (with --method cot) a causal LM."})
    task: str | None = field(
        default=None, metadata={"help": "Task whose labels and metric apply (else the model's labels, accuracy/F1)."}
    )
    split: str = field(default="val", metadata={"help": "Task split (ignored with --eval_file)."})
    data_dir: str | None = field(default=None, metadata={"help": "Local task data folder (else $DHRD_DATA_DIR)."})
    eval_file: str | None = field(default=None, metadata={"help": "Rows with text/label columns instead of a split."})
    method: str = field(
        default="classifier",
        metadata={
            "help": "'classifier' (pooled head), 'cot' (prompted CoT decoding with a causal LM) or 'reasoning_head' "
            "(a DHRD checkpoint decodes [x, reason marker] -> rationale -> answer with its trained LM head)."
        },
    )
    limit: int | None = field(default=None, metadata={"help": "Only the first N rows."})
    batch_size: int = field(default=16, metadata={"help": "Inputs per batch."})
    max_input_length: int = field(default=512, metadata={"help": "Input truncation (as in training)."})
    max_new_tokens: int = field(default=500, metadata={"help": "CoT decoding cap (the paper's 500)."})
    output_file: str | None = field(default=None, metadata={"help": "Write metrics (and timing) as JSON here."})


def classify(model, tokenizer, texts: list[str], batch_size: int, max_input_length: int) -> torch.Tensor:
    """Logits of a sequence classifier (DHRD or native), longest inputs first to cut padding."""
    tokenizer.padding_side = "right"
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    logits = [None] * len(texts)
    with torch.no_grad():
        for start in tqdm(range(0, len(texts), batch_size), desc="Classifying", unit="batch"):
            chunk = order[start : start + batch_size]
            batch = tokenizer(
                [texts[i] for i in chunk],
                padding=True,
                truncation=True,
                max_length=max_input_length,
                return_tensors="pt",
            ).to(model.device)
            for i, row in zip(chunk, model(**batch).logits.float()):
                logits[i] = row
    return torch.stack(logits)


def _task_from_model(model: str) -> Task:
    """An ad-hoc task with the model's own labels (for user files): accuracy and macro-F1."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model)
    names = tuple(config.id2label[i] for i in range(config.num_labels))
    return Task("files", names, lambda record: [record], metric="accuracy_macro_f1")


def evaluation_rows(args: EvaluateArguments, task: Task) -> Dataset:
    rows = load_table(args.eval_file) if args.eval_file else task.load(args.split, args.data_dir)
    if args.eval_file and rows.features.get("label") is not None and rows.features["label"].dtype == "string":
        rows = rows.map(lambda row: {"label": task.label_index(row["label"])})
    return rows.select(range(min(args.limit, len(rows)))) if args.limit else rows


def run_evaluate(args: EvaluateArguments) -> str:
    if not Path(args.model).exists() and not HUB_ID.fullmatch(args.model):
        raise FileNotFoundError(f"No such model folder: {args.model}")
    if args.task is None and args.eval_file is None:
        raise ValueError("Give --task or --eval_file.")
    task = get_task(args.task) if args.task else _task_from_model(args.model)
    rows = evaluation_rows(args, task)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    start = time.perf_counter()
    if args.method == "classifier":
        model = AutoModelForSequenceClassification.from_pretrained(args.model).eval()
        if model.config.num_labels != task.num_labels:
            raise ValueError(
                f"{args.model} has {model.config.num_labels} labels; task {task.name} has {task.num_labels}."
            )
        predictions = classify(model, tokenizer, rows["text"], args.batch_size, args.max_input_length).argmax(-1)
        extra = {}
    elif args.method == "cot":
        from .cot import cot_decode

        model = AutoModelForCausalLM.from_pretrained(args.model).eval()
        result = cot_decode(model, tokenizer, rows["text"], task.label_names, args.batch_size, args.max_new_tokens)
    elif args.method == "reasoning_head":
        from .reasoning_decode import reasoning_head_decode

        model = AutoModelForSequenceClassification.from_pretrained(args.model).eval()
        result = reasoning_head_decode(
            model, tokenizer, rows["text"], task.id2label, args.batch_size, args.max_new_tokens, args.max_input_length
        )
    else:
        raise ValueError(f"--method must be 'classifier', 'cot' or 'reasoning_head', got {args.method!r}.")
    if args.method != "classifier":
        predictions = torch.tensor(result.predictions)
        extra = result.stats()
    seconds = time.perf_counter() - start
    scores = task.score_rows(predictions.tolist(), rows)
    report = {
        "task": task.name,
        "model": args.model,
        "method": args.method,
        "rows": len(rows),
        **scores,
        **extra,
        "seconds": round(seconds, 2),
        "qps": round(len(rows) / seconds, 2),
    }
    if args.output_file:
        Path(args.output_file).write_text(json.dumps(report, indent=2) + "\n")
    return json.dumps(report)
