"""The paper-scale check for one GPU, no downloads: real Llama architectures with random weights at the shapes of
Llama-3.2-3B and Llama-3.1-8B (`backbone_shapes.py`). Prints JSON; about 6 minutes on one H100-class GPU.

1. Training: LoRA (the paper's: r=16 on q,k,v,o,gate,up,down) with the joint DHRD loss through `DHRDTrainer`,
   bf16, gradient checkpointing: tokens/s over the steps after the first, peak GPU memory.
2. Export of the `--serve-shape` model (adapter merged, reasoning head dropped), bf16.
3. Batch prediction on a length-skewed mix (75% short inputs, 25% long ones, cut at 512 tokens): `dhrd predict`
   (token-budget batches, `--device cuda --dtype bfloat16`) against the best batch size of
   `pipeline("text-classification")` on the same export, rows/s; target: predict >= 2x the pipeline.
4. The paper's inference comparison: the pooled classifier's QPS against CoT decoding QPS with the same backbone
   (batch 64, a fixed number of new tokens: random weights never stop by themselves).

    python examples/gpu_check.py --output gpu_check.json
    python examples/gpu_check.py --device cpu --shapes tiny --serve-shape tiny --quick   # the script's smoke run
"""

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import torch
from backbone_shapes import a_tokenizer, llama_config, parameter_count

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

LABELS = ("calm", "stormy", "mixed")
WORDS = "sun rain wind snow cloud storm fog hail frost heat dry wet cold warm grey clear".split()


def sentence(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(low, high)))


def training_rows(count: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [
        {"text": sentence(rng, 150, 250), "label": rng.randrange(len(LABELS)), "rationale": sentence(rng, 60, 90)}
        for _ in range(count)
    ]


def skewed_mix(count: int, seed: int = 1) -> list[str]:
    """75% short inputs (8-40 words), 25% long ones (200-400 words), shuffled: a user's mixed data."""
    rng = random.Random(seed)
    texts = [sentence(rng, 200, 400) if i % 4 == 0 else sentence(rng, 8, 40) for i in range(count)]
    rng.shuffle(texts)
    return texts


def peak_memory_gib(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**30, 2)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def dhrd_model(shape: str, tokenizer, device: torch.device):
    from modeling_dhrd import DHRDConfig, DHRDForSequenceClassification

    config = DHRDConfig(text_config=llama_config(shape, tokenizer), id2label=dict(enumerate(LABELS)))
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            return DHRDForSequenceClassification(config)
    finally:
        torch.set_default_dtype(previous)


def train(shape: str, tokenizer, device: torch.device, args, work: Path):
    from datasets import Dataset
    from transformers import TrainerCallback

    from trainer import DHRDTrainer, DHRDTrainingArguments, paper_lora_config

    class StepClock(TrainerCallback):
        def __init__(self):
            self.times = []

        def on_step_end(self, *_, **__):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            self.times.append(time.perf_counter())

    reset_peak(device)
    model = dhrd_model(shape, tokenizer, device)
    clock = StepClock()
    training = DHRDTrainingArguments(
        output_dir=str(work / f"run-{shape}"), per_device_train_batch_size=args.batch_size, max_steps=args.steps,
        learning_rate=1e-4, bf16=True, activation_checkpointing=True, max_input_length=512, max_length=768,
        logging_steps=args.steps, save_strategy="no", report_to=[], use_cpu=device.type == "cpu", disable_tqdm=True,
    )  # fmt: skip
    trainer = DHRDTrainer(
        model=model, args=training, train_dataset=Dataset.from_list(training_rows(args.steps * args.batch_size)),
        processing_class=tokenizer, peft_config=paper_lora_config(), callbacks=[clock],
    )  # fmt: skip
    tokens = sum(len(ids) for ids in trainer.train_dataset["input_ids"])
    trainer.train()
    timed = clock.times[-1] - clock.times[0]  # the steps after the first (which pays for kernel selection)
    result = {
        "parameters": parameter_count(shape),
        "steps": args.steps,
        "batch_size": args.batch_size,
        "tokens_per_step": round(tokens / args.steps),
        "tokens_per_second": round(tokens * (args.steps - 1) / args.steps / timed, 1),
        "seconds_per_step": round(timed / (args.steps - 1), 3),
        "peak_gpu_memory_gib": peak_memory_gib(device),
    }
    return trainer, result


def export(trainer, tokenizer, folder: Path) -> dict:
    from modeling_dhrd import export_classifier

    start = time.perf_counter()
    exported = export_classifier(trainer.model, folder, tokenizer, overwrite=True)
    return {"architecture": exported.architecture, "native": exported.native, "seconds": time.perf_counter() - start}


def predict_rows_per_second(folder: Path, texts_file: Path, rows: int, device: torch.device, work: Path) -> float:
    from trainer.cli.predict import PredictArguments, run_predict
    from trainer.data.description import DatasetArguments
    from trainer.device import DeviceArguments

    dtype = "bfloat16" if device.type != "cpu" else "float32"  # the pipeline below runs in the same precision
    arguments = PredictArguments(
        model=str(folder), output_file=str(work / "predictions.jsonl"), max_input_length=512, overwrite=True
    )
    start = time.perf_counter()
    run_predict(arguments, DatasetArguments(test_file=str(texts_file)), DeviceArguments(str(device), dtype))
    return rows / (time.perf_counter() - start)


def pipeline_rows_per_second(folder: Path, texts: list[str], batch_size: int, device: torch.device) -> float:
    from transformers import pipeline

    dtype = torch.bfloat16 if device.type != "cpu" else torch.float32
    classifier = pipeline("text-classification", model=str(folder), device=device, dtype=dtype)
    classifier(texts[:batch_size], batch_size=batch_size, truncation=True, max_length=512)  # warm-up
    start = time.perf_counter()
    classifier(texts, batch_size=batch_size, truncation=True, max_length=512, top_k=None)
    seconds = time.perf_counter() - start
    del classifier
    return len(texts) / seconds


def cot_qps(shape: str, tokenizer, texts: list[str], device: torch.device, new_tokens: int) -> float:
    from transformers import AutoModelForCausalLM

    from trainer.inference.cot import cot_decode

    with torch.device(device):
        lm = AutoModelForCausalLM.from_config(llama_config(shape, tokenizer), dtype=torch.bfloat16).eval()
    cot_decode(lm, tokenizer, texts[:2], LABELS, batch_size=2, max_new_tokens=4, min_new_tokens=4)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    cot_decode(
        lm, tokenizer, texts, LABELS, batch_size=len(texts), max_new_tokens=new_tokens, min_new_tokens=new_tokens
    )
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return len(texts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--shapes", default="llama-3.2-3b,llama-3.1-8b", help="Shapes trained with LoRA.")
    parser.add_argument("--serve-shape", default="llama-3.2-3b", help="The shape exported and served.")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--predict-rows", type=int, default=4096)
    parser.add_argument("--pipeline-batch-sizes", default="8,32,128")
    parser.add_argument("--cot-rows", type=int, default=64)
    parser.add_argument("--cot-new-tokens", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="A smoke run: 3 steps, few rows, short decoding.")
    parser.add_argument("--output")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.batch_size, args.predict_rows, args.cot_rows, args.cot_new_tokens = 3, 2, 64, 4, 8
        args.pipeline_batch_sizes = "8"
    from trainer.device import resolve_device

    device = resolve_device(args.device)
    tokenizer = a_tokenizer()
    report: dict = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else str(device),
        "torch": torch.__version__,
        "training": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for shape in args.shapes.split(","):
            trainer, report["training"][shape] = train(shape, tokenizer, device, args, work)
            print(shape, report["training"][shape], file=sys.stderr, flush=True)
            if shape == args.serve_shape:
                report["export"] = export(trainer, tokenizer, work / "export")
            del trainer
            if device.type == "cuda":
                torch.cuda.empty_cache()
        texts = skewed_mix(args.predict_rows)
        texts_file = work / "mix.jsonl"
        texts_file.write_text("".join(json.dumps({"text": text}) + "\n" for text in texts))
        predict = predict_rows_per_second(work / "export", texts_file, len(texts), device, work)
        pipelines = {
            int(size): pipeline_rows_per_second(work / "export", texts, int(size), device)
            for size in args.pipeline_batch_sizes.split(",")
        }
        best = max(pipelines, key=pipelines.get)
        report["predict"] = {
            "rows": len(texts),
            "dhrd_predict_rows_per_second": round(predict, 1),
            "pipeline_rows_per_second": {str(size): round(value, 1) for size, value in pipelines.items()},
            "best_pipeline_batch_size": best,
            "speedup_over_best_pipeline": round(predict / pipelines[best], 2),
        }
        cot = cot_qps(args.serve_shape, tokenizer, texts[: args.cot_rows], device, args.cot_new_tokens)
        report["paper_inference"] = {
            "pooled_classifier_qps": round(predict, 1),
            "cot_qps": round(cot, 2),
            "cot_batch": args.cot_rows,
            "cot_new_tokens": args.cot_new_tokens,
            "classifier_over_cot": round(predict / cot, 1),
        }
    print(json.dumps(report, indent=2))
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
