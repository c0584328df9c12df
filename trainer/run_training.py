"""Train DHRD (or the pooled baseline) on user files: the logic behind `examples/train_dhrd.py` and `dhrd train`.

Single process, `torchrun --nproc_per_node N` or `accelerate launch` all run this same code: the Trainer picks the
distributed setting up from the launcher's environment.
"""

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset, load_dataset
from transformers import AutoTokenizer, set_seed

from modeling_dhrd import DHRDForSequenceClassification, embedded_backbone_path

from .dhrd_trainer import DHRDTrainer, paper_lora_config
from .training_args import DHRDTrainingArguments

logger = logging.getLogger(__name__)

DATA_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Causal LM backbone: Hub id or local folder. Default: the embedded SmolLM2-135M-Instruct."},
    )
    gguf_file: str | None = field(default=None, metadata={"help": "GGUF file inside model_name_or_path."})
    pooling: str = field(default="last", metadata={"help": "'last' (input's last token) or 'mean'."})
    head: str = field(default="linear", metadata={"help": "'linear' (native-exportable) or 'mlp' (paper)."})
    lora_r: int = field(default=0, metadata={"help": "LoRA rank on q,k,v,o,gate,up,down (alpha = 2r); 0 = full."})
    torch_dtype: str | None = field(default=None, metadata={"help": "Backbone dtype: float32, bfloat16, ..."})


@dataclass
class DataArguments:
    train_file: str | None = field(default=None, metadata={"help": "Training rows: .jsonl, .json, .csv or .parquet."})
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


def run_training(model_args: ModelArguments, data_args: DataArguments, args: DHRDTrainingArguments) -> DHRDTrainer:
    if data_args.train_file is None:
        raise ValueError("--train_file is required.")
    set_seed(args.seed)
    train = load_table(data_args.train_file)
    evaluation = load_table(data_args.eval_file) if data_args.eval_file else None
    names = label_names(train, args.label_column, data_args.labels)
    backbone = model_args.model_name_or_path or str(embedded_backbone_path())
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
    if evaluation is not None:
        trainer.log_metrics("eval", trainer.evaluate())
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:
        logger.info("Preparation: %s", trainer.preparation_reports)
    trainer.save_model(args.output_dir)
    return trainer
