"""Train DHRD (or the pooled baseline) on user files: the logic behind `examples/train_dhrd.py` and `dhrd train`.

Single process, `torchrun --nproc_per_node N` or `accelerate launch` all run this same code: the Trainer picks the
distributed setting up from the launcher's environment.
"""

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from datasets import Dataset
from transformers import AutoTokenizer, set_seed

from modeling_dhrd import DHRDForMultipleChoice, DHRDForSequenceClassification
from modeling_dhrd.atomic import atomic_write_text, give_default_permissions
from modeling_dhrd.configuration_dhrd import Head, Pooling, copy_trained_state
from modeling_dhrd.unwrap import unwrap_dhrd

from ..data.description import DataError, DatasetArguments, dataset_ids
from ..data.labelled import LabelledData
from ..embedded import BACKBONE_HELP, base_model_id, resolve_backbone
from ..inference.classify import check_model_reference
from ..kinds.metrics import eval_scores
from ..training.arguments import DHRDTrainingArguments, require_validation_rows
from ..training.dhrd_trainer import DHRDTrainer, paper_lora_config

logger = logging.getLogger(__name__)


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(default=None, metadata={"help": BACKBONE_HELP, "aliases": ["--model"]})
    gguf_file: str | None = field(default=None, metadata={"help": "GGUF file inside model_name_or_path."})
    pooling: Pooling = field(default="last", metadata={"help": "Input's last token, or the mean."})
    head: Head = field(
        default="linear", metadata={"help": "'linear' (exports as a native classifier) or 'mlp' (the paper's)."}
    )
    lora_r: int = field(default=0, metadata={"help": "LoRA rank on q,k,v,o,gate,up,down (alpha = 2r); 0 = full."})
    dtype: str | None = field(
        default=None, metadata={"help": "Backbone dtype: float32, bfloat16, ...", "aliases": ["--torch_dtype"]}
    )
    attn_implementation: str | None = field(
        default=None,
        metadata={
            "help": "The backbone's attention kernel (transformers' `attn_implementation`): 'sdpa' (default), 'eager' "
            "(trains faster on a CPU when sequences are ~100 tokens, slower and heavier from ~512: docs/RESULTS.md), "
            "or 'flash_attention_2' on a GPU with flash-attn installed. Training only: a saved model loads with "
            "the default."
        },
    )


@dataclass
class TrainCommandArguments(DHRDTrainingArguments):
    """`DHRDTrainingArguments` for `dhrd train`, where `--label_names` is the data description's (the classes), not
    the Trainer's label keys."""

    label_names: list[str] | None = field(default=None, init=False)
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Train into a non-empty output_dir (else refused: files would mix)."}
    )


def training_data(data_args: DatasetArguments) -> tuple[Dataset, Dataset | None, LabelledData]:
    """Training rows, evaluation rows (None when the description has no validation split) and the data."""
    data = LabelledData(data_args)
    train = data.rows("train")  # the description's --max_train_samples / --max_eval_samples apply (`num_rows`)
    evaluation = data.rows("validation") if data.has("validation") else None
    if evaluation is None:
        logger.info("No validation split: training without evaluation.")
    for split, rows in (("train", train), ("validation", evaluation)):
        if rows is not None:
            data.kind.require_batchable(rows, data.source(split))
    return train, evaluation, data


def run_training(
    model_args: ModelArguments,
    data_args: DatasetArguments,
    args: TrainCommandArguments,
    prepare_train: Callable[[Dataset], Dataset] | None = None,
    final_evaluation: bool = True,
) -> DHRDTrainer:
    """Train and save; a run that fails leaves no output folder of its own making behind (an empty one is removed).
    `prepare_train` changes the training rows first (`dhrd compare`'s shuffled control permutes their rationales);
    without `final_evaluation` the validation split is not scored after training (`dhrd compare` scores its own)."""
    _check_output_dir(args)
    if model_args.model_name_or_path and not model_args.gguf_file:
        check_model_reference(model_args.model_name_or_path, bare_names=True)
    output_dir = Path(args.output_dir)
    made_here = not output_dir.exists()
    try:
        return _train(model_args, data_args, args, prepare_train, final_evaluation)
    except BaseException:
        if made_here and output_dir.is_dir() and not any(path.is_file() for path in output_dir.rglob("*")):
            shutil.rmtree(output_dir, ignore_errors=True)
        raise


def _train(
    model_args: ModelArguments,
    data_args: DatasetArguments,
    args: TrainCommandArguments,
    prepare_train: Callable[[Dataset], Dataset] | None = None,
    final_evaluation: bool = True,
) -> DHRDTrainer:
    set_seed(args.seed)
    train, evaluation, data = training_data(data_args)
    if prepare_train is not None:
        train = prepare_train(train)
    require_validation_rows(args, evaluation is not None)
    if not final_evaluation and not args.reads_validation_in_training:
        evaluation = None  # nothing would read the validation rows (`dhrd compare` scores its own): not prepared
    if "rationale" not in train.column_names and args.lm_weight != 0 and args.lm_loss_scope != "input":
        raise DataError(
            f"{data.source('train')}: no rationale column {data_args.rationale_column!r} (--rationale_column): "
            "write one with `dhrd rationales`, train the pooled baseline with --lm_weight 0, or the teacher-free "
            "control (an LM loss on the inputs) with --lm_loss_scope input."
        )
    names = data.label_names
    backbone = resolve_backbone(model_args.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(backbone, gguf_file=model_args.gguf_file)

    def load_base() -> DHRDForSequenceClassification:
        common = {
            "gguf_file": model_args.gguf_file,
            "dtype": model_args.dtype,
            "pooling": model_args.pooling,
            "head": model_args.head,
            "attn_implementation": model_args.attn_implementation,
        }
        if data.kind.scores_options:  # one score per [context, option] row
            return DHRDForMultipleChoice.from_backbone(backbone, **common)
        return DHRDForSequenceClassification.from_backbone(
            backbone, id2label=dict(enumerate(names)), problem_kind=data.kind.name, **common
        )

    model = load_base()
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
        input_format=data_args.input_format(),
    )
    trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    metrics = trainer.evaluate() if evaluation is not None and final_evaluation else {}
    if metrics:
        trainer.log_metrics("eval", metrics)
    save_trained_model(trainer, tokenizer, args.output_dir, load_base)
    if trainer.is_world_process_zero():
        record = {
            "base_model": base_model_id(model_args.model_name_or_path),
            "task": data_args.task,
            "datasets": dataset_ids(data_args),
            "train_file": data_args.train_file,
            "input_format": data_args.input_format(),
            "training": {
                "lora_r": model_args.lora_r,
                "attn_implementation": model_args.attn_implementation,
                **trainer.training_summary(),
            },
            "preparation": {name: asdict(report) for name, report in trainer.preparation_reports.items()},
            "eval_metrics": eval_scores(metrics),
            # the thresholds were tuned on the very rows scored: optimistic, as the card says
            "eval_metrics_on_tuning_rows": bool(metrics) and args.tune_thresholds,
        }
        atomic_write_text(Path(args.output_dir) / "dhrd_training.json", json.dumps(record, indent=2) + "\n")
    _leave_process_group(trainer)
    return trainer


def _leave_process_group(trainer: DHRDTrainer) -> None:
    """All processes wait for rank 0's writes, then leave the process group together: a rank that exits while
    another still holds gloo's threads can abort ("terminate called without an active exception")."""
    trainer.accelerator.wait_for_everyone()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def _check_output_dir(args: TrainCommandArguments) -> None:
    output_dir = Path(args.output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"--output_dir {output_dir} is a file; give a folder.")
    overwrite = args.overwrite_output_dir or args.resume_from_checkpoint
    if output_dir.is_dir() and any(output_dir.iterdir()) and not overwrite:
        raise ValueError(
            f"--output_dir {output_dir} is not empty; pass --overwrite_output_dir to train into it anyway, or "
            "--resume_from_checkpoint to continue a run."
        )


def save_trained_model(
    trainer: DHRDTrainer, tokenizer, output_dir: str, load_base: Callable[[], DHRDForSequenceClassification]
) -> None:
    """A full DHRD checkpoint in `output_dir`; LoRA runs also keep their adapter in `output_dir/adapter`.

    The adapter is saved by `trainer.save_model` on every process (it gathers sharded weights under FSDP and
    ZeRO-3); rank 0 then merges it into a fresh base model (`load_base()`) read from disk, so no process ever needs
    the whole trained model in its own memory.
    """
    model = trainer.accelerator.unwrap_model(trainer.model)
    if not hasattr(model, "merge_and_unload"):
        trainer.save_model(output_dir)  # handles DDP / FSDP / DeepSpeed state dicts, saves the tokenizer
        return
    adapter_dir = Path(output_dir) / "adapter"
    trainer.save_model(str(adapter_dir))
    if trainer.is_world_process_zero():
        from peft import PeftModel

        merged = PeftModel.from_pretrained(load_base(), str(adapter_dir)).merge_and_unload()
        # the fresh base's config has the backbone's defaults: the loss settings, class weights, thresholds and input
        # contract are the run's (also in the adapter's config.json, written by `DHRDTrainer._save`)
        copy_trained_state(unwrap_dhrd(model, "save_trained_model").config, merged.config)
        merged.save_pretrained(output_dir)
        tokenizer.save_pretrained(output_dir)
        give_default_permissions(output_dir)
    trainer.accelerator.wait_for_everyone()
