"""Train DHRD (or the pooled baseline) on user files: the logic behind `examples/train_dhrd.py` and `dhrd train`.

Single process, `torchrun --nproc_per_node N` or `accelerate launch` all run this same code: the Trainer picks the
distributed setting up from the launcher's environment.
"""

import copy
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from datasets import Dataset, load_dataset
from transformers import AutoTokenizer, set_seed

from modeling_dhrd import DHRDForSequenceClassification, resolve_backbone
from modeling_dhrd.atomic import atomic_write_text
from modeling_dhrd.embedded import BACKBONE_HELP, base_model_id

from .dhrd_trainer import DHRDTrainer, paper_lora_config
from .training_args import DHRDTrainingArguments

logger = logging.getLogger(__name__)

DATA_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": BACKBONE_HELP},
    )
    gguf_file: str | None = field(default=None, metadata={"help": "GGUF file inside model_name_or_path."})
    pooling: str = field(default="last", metadata={"help": "'last' (input's last token) or 'mean'."})
    head: str = field(default="linear", metadata={"help": "'linear' (native-exportable) or 'mlp' (paper)."})
    lora_r: int = field(default=0, metadata={"help": "LoRA rank on q,k,v,o,gate,up,down (alpha = 2r); 0 = full."})
    torch_dtype: str | None = field(default=None, metadata={"help": "Backbone dtype: float32, bfloat16, ..."})


@dataclass
class DataArguments:
    task: str | None = field(
        default=None, metadata={"help": "A built-in task (labels, and its splits when no files are given)."}
    )
    data_dir: str | None = field(default=None, metadata={"help": "Local task data folder (else $DHRD_DATA_DIR)."})
    train_file: str | None = field(
        default=None, metadata={"help": "Training rows (.jsonl/.json/.csv/.parquet), e.g. `dhrd rationales` output."}
    )
    eval_file: str | None = field(default=None, metadata={"help": "Evaluation rows (same columns)."})
    labels: str | None = field(
        default=None,
        metadata={"help": "Comma-separated label names in index order. Default: sorted distinct training labels."},
    )


def load_table(path: str) -> Dataset:
    """Load one csv/jsonl/parquet file as a `Dataset`, with an error that names the file."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"No such data file: {path}")
    fmt = DATA_FORMATS.get(file.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unsupported format {file.suffix!r}; use one of {sorted(DATA_FORMATS)}.")
    return load_dataset(fmt, data_files=str(file), split="train")


def label_names(dataset: Dataset, column: str, explicit: str | None) -> list[str]:
    if explicit:
        return [name.strip() for name in explicit.split(",") if name.strip()]
    if column not in dataset.column_names:
        raise KeyError(f"Label column {column!r} not found; the dataset has {dataset.column_names}.")
    values = sorted(set(dataset[column]), key=lambda v: (isinstance(v, str), v))
    if all(isinstance(v, (int, bool)) for v in values):
        return [str(i) for i in range(int(max(values)) + 1)]
    return [str(v) for v in values]


def training_data(data_args: DataArguments, label_column: str) -> tuple[Dataset, Dataset | None, list[str]]:
    """Training rows, evaluation rows and label names, from files and/or a built-in task."""
    task = None
    if data_args.task:
        from .tasks import get_task

        task = get_task(data_args.task)
    if data_args.train_file is None and task is None:
        raise ValueError("Give --train_file or --task.")
    train = load_table(data_args.train_file) if data_args.train_file else task.load("train", data_args.data_dir)
    if data_args.eval_file:
        evaluation = load_table(data_args.eval_file)
    else:
        evaluation = task.load("val", data_args.data_dir) if task else None
    names = list(task.label_names) if task else label_names(train, label_column, data_args.labels)
    return train, evaluation, names


def run_training(model_args: ModelArguments, data_args: DataArguments, args: DHRDTrainingArguments) -> DHRDTrainer:
    set_seed(args.seed)
    train, evaluation, names = training_data(data_args, args.label_column)
    backbone = resolve_backbone(model_args.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(backbone, gguf_file=model_args.gguf_file)
    model = DHRDForSequenceClassification.from_backbone(
        backbone,
        id2label=dict(enumerate(names)),
        gguf_file=model_args.gguf_file,
        dtype=model_args.torch_dtype,
        pooling=model_args.pooling,
        head=model_args.head,
    )
    peft_config = (
        paper_lora_config(r=model_args.lora_r, lora_alpha=2 * model_args.lora_r) if model_args.lora_r else None
    )
    trainer = DHRDTrainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=evaluation,
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    metrics = trainer.evaluate() if evaluation is not None else {}
    if metrics:
        trainer.log_metrics("eval", metrics)
    save_trained_model(trainer, tokenizer, args.output_dir)
    if trainer.is_world_process_zero():
        record = {
            "base_model": base_model_id(model_args.model_name_or_path),
            "task": data_args.task,
            "datasets": [f"super_glue/{data_args.task}"] if data_args.task else [],
            "train_file": data_args.train_file,
            "training": {
                "lora_r": model_args.lora_r,
                "lm_loss_scope": args.lm_loss_scope,
                "max_input_length": args.max_input_length,
                "learning_rate": args.learning_rate,
                "steps": trainer.state.global_step,
                "seed": args.seed,
            },
            "preparation": {name: asdict(report) for name, report in trainer.preparation_reports.items()},
            "eval_metrics": {
                k.removeprefix("eval_"): v
                for k, v in metrics.items()
                if k.startswith("eval_") and isinstance(v, float) and "runtime" not in k and "per_second" not in k
            },
        }
        atomic_write_text(Path(args.output_dir) / "dhrd_training.json", json.dumps(record, indent=2) + "\n")
    return trainer


def save_trained_model(trainer: DHRDTrainer, tokenizer, output_dir: str) -> None:
    """A full DHRD checkpoint in `output_dir`; LoRA runs also keep their adapter in `output_dir/adapter`."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    if not hasattr(model, "merge_and_unload"):
        trainer.save_model(output_dir)  # handles DDP / FSDP / DeepSpeed state dicts, saves the tokenizer
        return
    if trainer.is_world_process_zero():
        model.save_pretrained(Path(output_dir) / "adapter")
        copy.deepcopy(model).merge_and_unload().save_pretrained(output_dir)
        tokenizer.save_pretrained(output_dir)
