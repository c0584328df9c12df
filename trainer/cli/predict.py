"""`dhrd predict`: class probabilities for every row of a dataset or file, from a DHRD checkpoint, an exported
classifier or a Hub id on this machine, or from a vLLM pooling server that serves the export (`--server_url`: the
way past one machine, with vLLM's data/tensor parallelism).

The output (`.jsonl` or `.parquet`, by extension) has one record per input row, in input order: the row id (the
data's id column, or `idx` = the row's position), then by the model's problem type: `label` (the top class) and
`probs` (every class's probability); multi-label: `labels` (every class above 0.5) and `probs` (each class's
sigmoid); regression: `score`; multiple choice (an option scorer, `--options_column`): `option` (the chosen
option's text), `option_index` and `probs` (each option's probability, in option order).
Work is resumable: each finished batch is appended to `<output>.parts/` (fsynced); a rerun skips what is there, so a
kill loses at most the batch in flight. The output file is written atomically at the end and the parts removed.
"""

import logging
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import torch

from modeling_dhrd.atomic import atomic_file, atomic_write_jsonl

from ..dataset_args import DatasetArguments
from ..inference import (
    classifier_data,
    classify_batches,
    load_classifier,
    max_input_length,
)
from ..option_scoring import choice_record, score_options
from ..options import option_name
from ..progress import progress_bar
from ..retry import call_with_retries, http_client
from ..shards import ShardedResults
from ..targets import REGRESSION, SINGLE_LABEL, activations, prediction_record
from .checks import model_argument, require_client_limits, require_positive

logger = logging.getLogger(__name__)

OUTPUT_FORMATS = (".jsonl", ".parquet")


@dataclass
class PredictArguments:
    model: str = model_argument("DHRD checkpoint, exported classifier or Hub id (labels, tokenizer).")
    output_file: str = field(
        metadata={"help": "Predictions: .jsonl or .parquet (id + label/probs, labels/probs or score)."}
    )
    split: str = field(default="test", metadata={"help": "Split to predict: train, validation or test."})
    limit: int | None = field(default=None, metadata={"help": "Only the first N rows."})
    max_input_length: int | None = field(
        default=None, metadata={"help": "Input truncation. Default: what the model was trained with."}
    )
    max_batch_tokens: int | None = field(
        default=None,
        metadata={
            "help": "Padded tokens per batch (rows x longest row) over length-sorted inputs. Default: 4096 on the CPU "
            "(measured best, docs/RESULTS.md), 16384 on an accelerator."
        },
    )
    batch_size: int = field(default=256, metadata={"help": "Rows per batch at most."})
    bf16: bool = field(default=False, metadata={"help": "Run the model in bfloat16 (probabilities in float32)."})
    overwrite: bool = field(default=False, metadata={"help": "Replace an existing output file."})
    server_url: str | None = field(
        default=None, metadata={"help": "A vLLM pooling server (`--runner pooling`) serving the export: its base URL."}
    )
    server_model: str | None = field(default=None, metadata={"help": "Served model name (default: --model)."})
    server_batch_size: int = field(default=64, metadata={"help": "Inputs per /classify request."})
    concurrency: int = field(default=8, metadata={"help": "Server requests in flight."})
    timeout: float = field(default=120.0, metadata={"help": "Seconds per server request."})
    retries: int = field(default=8, metadata={"help": "Retries per server request (transport errors, 429, 5xx)."})
    api_key_env: str = field(default="OPENAI_API_KEY", metadata={"help": "Env variable holding the server token."})

    def __post_init__(self) -> None:
        require_positive(
            self, "limit", "max_input_length", "max_batch_tokens", "batch_size", "server_batch_size", "concurrency"
        )
        require_client_limits(self.retries, self.timeout)
        if Path(self.output_file).suffix.lower() not in OUTPUT_FORMATS:
            raise ValueError(f"--output_file {self.output_file}: use a {' or '.join(OUTPUT_FORMATS)} file name.")
        if Path(self.output_file).is_dir():
            raise ValueError(f"--output_file {self.output_file} is a folder; give a file name.")
        if Path(self.output_file).exists() and not self.overwrite:
            raise FileExistsError(f"{self.output_file} already exists; pass --overwrite to replace it.")


def parts_folder(output_file: str | Path) -> Path:
    output_file = Path(output_file)
    return output_file.with_name(f".{output_file.name}.parts")


def run_predict(args: PredictArguments, data_args: DatasetArguments) -> str:
    record, data = classifier_data(args.model, data_args)
    names = data.expected_label_names
    problem_type = data.problem_type
    if args.server_url and (problem_type != SINGLE_LABEL or data.multiple_choice):
        kind = "multiple choice (an option scorer)" if data.multiple_choice else problem_type
        raise ValueError(f"--server_url predicts single-label classifiers only; this model is {kind}: drop it.")
    rows = data.rows(args.split, limit=args.limit, labelled=False)
    data.label_names  # noqa: B018 - checks a ClassLabel / --label_names / task against the model's labels
    id_column = data.id_column(data.require(args.split)) or "idx"
    ids, texts = rows["idx"], rows["text"]
    if data.multiple_choice:
        options = rows["options"]
        predictor = _local_predictor(args, record, problem_type, options)

        def as_record(position: int, scores: torch.Tensor) -> dict:
            return choice_record(scores, options[position])
    else:
        local = not args.server_url
        predictor = _local_predictor(args, record, problem_type) if local else _server_predictor(args, record)

        def as_record(position: int, activated: torch.Tensor) -> dict:
            return prediction_record(activated.tolist(), problem_type, names)

    store = ShardedResults(parts_folder(args.output_file), key=id_column)
    with store.open() as (done, shard):
        pending = [i for i, key in enumerate(ids) if str(key) not in done]
        if len(pending) < len(ids):
            logger.info(
                "Resuming: %d of %d rows already predicted in %s", len(ids) - len(pending), len(ids), store.folder
            )
        for positions, activated in predictor(pending, texts):
            shard.write({id_column: ids[p], **as_record(p, row)} for p, row in zip(positions, activated))
        results = [done[str(key)] for key in ids]
    _write_predictions(results, Path(args.output_file))
    shutil.rmtree(store.folder, ignore_errors=True)
    summary = _summary(results, names, "multiple_choice" if data.multiple_choice else problem_type)
    return f"wrote {len(results)} predictions to {args.output_file} ({summary})"


def _summary(results: list[dict], names: list[str], problem_type: str) -> str:
    """Rows per predicted label (rows carrying each label, for multi-label; per chosen option position, for multiple
    choice), or the range of predicted scores."""
    if problem_type == "multiple_choice":
        counts = Counter(result["option_index"] for result in results)
        return ", ".join(f"{option_name(index)} {counts[index]}" for index in sorted(counts))
    if problem_type == REGRESSION:
        scores = [result["score"] for result in results]
        return f"score min {min(scores):.4g}, mean {sum(scores) / len(scores):.4g}, max {max(scores):.4g}"
    counts = {name: 0 for name in names}
    for result in results:
        for name in result.get("labels", [result.get("label")]):
            counts[name] += 1
    return ", ".join(f"{name} {count}" for name, count in counts.items())


Predictor = Callable[[list[int], Sequence[str]], Iterator[tuple[list[int], torch.Tensor]]]


def _local_predictor(
    args: PredictArguments, record: dict, problem_type: str, options: Sequence[Sequence[str]] | None = None
) -> Predictor:
    """The model loaded now (a failure leaves nothing on disk); batches of `(positions, activations)` later
    (probabilities, or regression values), or with `options` (an option scorer) of each row's option scores."""
    model, tokenizer = load_classifier(args.model, bf16=args.bf16)
    length = max_input_length(args.max_input_length, record, tokenizer)
    budget = {
        "max_batch_tokens": args.max_batch_tokens or (4096 if model.device.type == "cpu" else 16384),
        "max_batch_size": args.batch_size,
        "desc": "Predicting",
    }

    def predict(pending: list[int], texts: Sequence[str]) -> Iterator[tuple[list[int], torch.Tensor]]:
        logger.info("Predicting %d rows locally (truncation: %s tokens)", len(pending), length or "none")
        inputs = [texts[i] for i in pending]
        if options is not None:
            batches = score_options(model, tokenizer, inputs, [options[i] for i in pending], length, **budget)
        else:
            batches = (
                (positions, activations(logits, problem_type))
                for positions, logits in classify_batches(model, tokenizer, inputs, length, **budget)
            )
        for positions, values in batches:
            yield [pending[p] for p in positions], values

    return predict


def _server_predictor(args: PredictArguments, record: dict) -> Predictor:
    """Chunks of `server_batch_size` inputs sent to `/classify`, `concurrency` in flight, each yielded as it ends."""
    client = ClassifyClient(args)
    length = max_input_length(args.max_input_length, record)  # else the server's --max-model-len applies

    def predict(pending: list[int], texts: Sequence[str]) -> Iterator[tuple[list[int], torch.Tensor]]:
        chunks = [pending[i : i + args.server_batch_size] for i in range(0, len(pending), args.server_batch_size)]
        with (
            ThreadPoolExecutor(max_workers=args.concurrency) as pool,
            progress_bar(len(pending), f"Predicting via {args.server_url}", unit="row") as bar,
        ):
            futures = {pool.submit(client.classify, [texts[i] for i in chunk], length): chunk for chunk in chunks}
            try:
                for future in as_completed(futures):
                    bar.update(len(futures[future]))
                    yield futures[future], future.result()
            finally:
                for future in futures:
                    future.cancel()

    return predict


class ClassifyClient:
    """vLLM's `/classify` (pooling runner): `{"model", "input": [texts], "truncate_prompt_tokens"}` -> `probs`."""

    def __init__(self, args: PredictArguments) -> None:
        token = os.environ.get(args.api_key_env)
        self.url = args.server_url.rstrip("/").removesuffix("/v1") + "/classify"
        self.model = args.server_model or args.model
        self.retries = args.retries
        self.client = http_client(args.timeout, {"Authorization": f"Bearer {token}"} if token else {})

    def classify(self, texts: list[str], max_input_length: int | None) -> torch.Tensor:
        body = {"model": self.model, "input": texts}
        if max_input_length:
            body["truncate_prompt_tokens"] = max_input_length

        def request() -> torch.Tensor:
            response = self.client.post(self.url, json=body)
            response.raise_for_status()
            data = sorted(response.json()["data"], key=lambda item: item["index"])
            if len(data) != len(texts):
                raise ValueError(f"{self.url} answered {len(data)} results for {len(texts)} inputs.")
            return torch.tensor([item["probs"] for item in data], dtype=torch.float32)

        return call_with_retries(request, self.retries, 1.0, f"prediction server {self.url}")


def _write_predictions(results: list[dict], path: Path) -> None:
    """The whole output at once, atomically (a crash leaves the previous file or none, never half of one)."""
    if path.suffix.lower() == ".jsonl":
        atomic_write_jsonl(path, results)
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    with atomic_file(path, "wb") as handle:
        pq.write_table(pa.Table.from_pylist(results), handle)
