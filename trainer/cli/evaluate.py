"""`dhrd evaluate`: metrics of a DHRD checkpoint or an exported classifier on any labelled split, or of CoT decoding
with a causal LM (`--method cot`) or with a DHRD checkpoint's own reasoning head (`--method reasoning_head`)."""

import json
import time
from dataclasses import dataclass, field
from typing import Literal

import torch

from modeling_dhrd.atomic import atomic_write_text

from ..data.description import DatasetArguments
from ..data.labelled import LabelledData
from ..device import DeviceArguments
from ..inference.classify import (
    ATTENTION_HELP,
    PADDING_FREE_HELP,
    check_model_reference,
    classifier_data,
    classify,
    load_classifier,
    load_pretrained,
    max_input_length,
)
from ..inference.cot import CoTResult
from ..inference.option_scoring import score_options
from ..jobs.ranks import launched
from .checks import model_argument, require_positive


@dataclass
class EvaluateArguments:
    model: str = model_argument("DHRD checkpoint, exported classifier, Hub id, or (--method cot) a causal LM.")
    split: str = field(default="validation", metadata={"help": "Split to score: train, validation or test."})
    method: Literal["classifier", "cot", "reasoning_head"] = field(
        default="classifier",
        metadata={
            "help": "'classifier' (pooled head), 'cot' (prompted CoT decoding with a causal LM) or 'reasoning_head' "
            "(a DHRD checkpoint decodes [x, reason marker] -> rationale -> answer with its trained LM head)."
        },
    )
    limit: int | None = field(default=None, metadata={"help": "Only the first N rows."})
    batch_size: int = field(default=16, metadata={"help": "Inputs per batch (at most)."})
    padding_free: bool = field(default=False, metadata={"help": PADDING_FREE_HELP})
    attn_implementation: str | None = field(default=None, metadata={"help": ATTENTION_HELP})
    max_input_length: int | None = field(
        default=None, metadata={"help": "Input truncation. Default: what the model was trained with."}
    )
    max_new_tokens: int = field(default=500, metadata={"help": "CoT decoding cap (the paper's 500)."})
    output_file: str | None = field(default=None, metadata={"help": "Write metrics (and timing) as JSON here."})

    def __post_init__(self) -> None:
        require_positive(self, "limit", "batch_size", "max_input_length", "max_new_tokens")


def run_evaluate(args: EvaluateArguments, data_args: DatasetArguments, device: DeviceArguments | None = None) -> str:
    """The metrics of `args.method` on the split. Under `torchrun` / `accelerate launch` each rank scores every N-th
    row on its own device and rank 0 computes the metrics over all rows (`trainer.jobs.ranks`)."""
    ranks = launched()
    device = device or DeviceArguments()  # a launched rank's own GPU (`LOCAL_RANK`)
    if args.method == "cot":  # a causal LM: the data's own labels, no input contract
        check_model_reference(args.model)
        data, thresholds, contract = LabelledData(data_args), None, None
    else:
        saved, data = classifier_data(args.model, data_args)
        thresholds, contract = saved.label_thresholds, saved.contract
    rows = data.rows(args.split, limit=args.limit)
    kind = data.kind
    if args.method != "classifier":
        kind.require_one_label(f"--method {args.method}", fix=": --method classifier scores it")
    task = data.choice_task(rows["options"]) if kind.scores_options else data.task
    start = time.perf_counter()
    mine = rows.select(ranks.mine(range(len(rows)))) if ranks.several else rows  # this rank's rows
    extra: dict = {}
    if args.method == "classifier":
        model, tokenizer = load_classifier(
            args.model, device.torch_device, device.torch_dtype, contract, args.attn_implementation
        )
        length = max_input_length(args.max_input_length, tokenizer)
        if kind.scores_options:
            budget = {"max_batch_tokens": args.batch_size * 512, "max_batch_size": args.batch_size}
            scored = score_options(
                model, tokenizer, mine["text"], mine["options"], length, **budget, padding_free=args.padding_free
            )
            predictions = torch.tensor([int(row.argmax()) for _, chunk in scored for row in chunk])
        else:
            logits = classify(model, tokenizer, mine["text"], args.batch_size, length, padding_free=args.padding_free)
            predictions = torch.from_numpy(kind.decide(logits.numpy(), thresholds))
    else:
        if args.method == "cot":
            from transformers import AutoModelForCausalLM, AutoTokenizer

            from ..inference.cot import cot_decode

            tokenizer = AutoTokenizer.from_pretrained(args.model)
            model = load_pretrained(AutoModelForCausalLM, args.model, **device.load_kwargs()).eval()
            result = cot_decode(model, tokenizer, mine["text"], task.label_names, args.batch_size, args.max_new_tokens)
        else:
            from ..inference.reasoning_decode import reasoning_head_decode

            model, tokenizer = load_classifier(args.model, device.torch_device, device.torch_dtype, contract)
            length = max_input_length(args.max_input_length, tokenizer)
            result = reasoning_head_decode(
                model, tokenizer, mine["text"], task.id2label, args.batch_size, args.max_new_tokens, length
            )
        predictions = torch.tensor(result.predictions)
        generated_tokens = ranks.gather_rows(result.generated_tokens, len(rows))
    predictions = ranks.gather_rows(predictions.tolist(), len(rows))
    if not ranks.main:
        return f"rank {ranks.rank} of {ranks.world_size}: its rows are scored; rank 0 reports the metrics"
    if args.method != "classifier":  # how the decoding went, over every rank's rows
        extra = CoTResult(predictions, generated_tokens, []).stats()
    seconds = time.perf_counter() - start
    report = {
        "task": data.args.task or task.name,
        "model": args.model,
        "method": args.method,
        "device": str(device.torch_device),
        "dtype": device.precision,
        "split": data.source(args.split),
        "rows": len(rows),
        **task.score_rows(predictions, rows),
        **extra,
        "seconds": round(seconds, 2),
        "qps": round(len(rows) / seconds, 2),
    }
    if args.output_file:
        atomic_write_text(args.output_file, json.dumps(report, indent=2) + "\n")
    return json.dumps(report)
