"""`dhrd predict`: class probabilities for every row of a dataset or file, from a DHRD checkpoint, an exported
classifier or a Hub id on this machine, or from a vLLM pooling server that serves the export (`--server_url`: the
way past one machine, with vLLM's data/tensor parallelism).

The output (`.jsonl` or `.parquet`, by extension) has one record per input row, in input order: the row id (the
data's id column, or `idx` = the row's position), then by the model's problem type: `label` (the top class) and
`probs` (every class's probability); multi-label: `labels` (every class above 0.5) and `probs` (each class's
sigmoid); regression: `score`; multiple choice (an option scorer, `--options_column`): `option` (the chosen
option's text), `option_index` and `probs` (each option's probability, in option order). A parquet file's columns
are typed by the kind (`ProblemKind.prediction_schema`) and the id column's type in the data, whatever the rows say.
Work is resumable: each finished batch is appended to `<output>.parts/` (fsynced); a rerun of the same job (its
`manifest.json`: model, data, truncation, dtype) skips what is there, so a kill loses at most the batch in flight;
another job's parts are refused, `--overwrite` starts over. The output file is written atomically at the end and
the parts removed.
"""

import itertools
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch
from datasets import Dataset

from modeling_dhrd.atomic import atomic_file
from modeling_dhrd.input_contract import InputContract

from ..data.description import DatasetArguments
from ..data.labelled import WINDOW_ROWS, LabelledData
from ..device import DeviceArguments, default_batch_tokens
from ..inference.classify import (
    ATTENTION_HELP,
    PADDING_FREE_HELP,
    classifier_data,
    classify_batches,
    load_classifier,
    max_input_length,
)
from ..inference.option_scoring import score_options
from ..jobs.bounded import bounded_completions
from ..jobs.fingerprint import data_identity, model_identity
from ..jobs.progress import progress_bar
from ..jobs.ranks import launched
from ..jobs.retry import call_with_retries, http_client
from ..jobs.shards import ShardedResults, ShardIndex
from ..kinds.base import PredictionCounts, ProblemKind
from .checks import model_argument, require_client_limits, require_positive

logger = logging.getLogger(__name__)

OUTPUT_FORMATS = (".jsonl", ".parquet")
Predictor = Callable[[Dataset], Iterator[tuple[list[int], torch.Tensor]]]  # rows -> (positions, outputs) batches
ROW_WINDOW = WINDOW_ROWS  # rows read and predicted at a time (one length sort)
PARQUET_ROW_GROUP = 16384  # rows per parquet row group: its conversion is the output's one transient cost


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
            "(measured best, docs/RESULTS.md), 16384 on an accelerator (--device)."
        },
    )
    batch_size: int = field(default=256, metadata={"help": "Rows per batch at most."})
    padding_free: bool = field(default=False, metadata={"help": PADDING_FREE_HELP})
    attn_implementation: str | None = field(default=None, metadata={"help": ATTENTION_HELP})
    overwrite: bool = field(
        default=False,
        metadata={"help": "Replace an existing output file and start over (an earlier job's parts are removed)."},
    )
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


def run_predict(args: PredictArguments, data_args: DatasetArguments, device: DeviceArguments | None = None) -> str:
    """Predict the split window by window (`LabelledData.row_windows`): rows are read, predicted and stored in
    `ROW_WINDOW`-row windows, and the output is assembled from the parts in input order, so memory stays flat on
    millions of rows."""
    ranks = launched()
    device = device or DeviceArguments()  # a launched rank's own GPU (`LOCAL_RANK`)
    saved, data = classifier_data(args.model, data_args)
    kind = data.kind  # checks a ClassLabel / --label_names / task against the model's labels
    if args.server_url:
        kind.require_one_label("--server_url (a vLLM /classify server)", fix=": drop --server_url")
    windows = data.row_windows(args.split, limit=args.limit, labelled=False, window=ROW_WINDOW)
    first = next(windows)  # checks the columns, the ids and every row of the first window before a model loads
    dataset = data.require(args.split)
    id_column = data.id_column(dataset) or "idx"
    schema = kind.prediction_schema(id_column, _id_type(dataset, id_column), data.label_names)
    store = ShardedResults(parts_folder(args.output_file), key=id_column, manifest=_manifest(args, data, device))
    total, output = data.num_rows(args.split, args.limit), Path(args.output_file)
    # another job's parts: refused before a model loads
    with store.open(overwrite=args.overwrite, ranks=ranks) as (done, shard):
        if len(done):
            logger.info("Resuming: %d of %d rows already predicted in %s", len(done), total, store.folder)
        predictor = (
            _server_predictor(args, saved.contract)
            if args.server_url
            else _local_predictor(args, device, kind, saved.contract)
        )

        def record(values: torch.Tensor, options: list[str] | None) -> dict:
            return kind.record(values.tolist(), data.label_names, saved.label_thresholds, options)

        start = 0
        with progress_bar(ranks.share(total), "Predicting", unit="row") as bar:
            for window in itertools.chain([first], windows):
                ids = window["idx"]
                options = window["options"] if kind.scores_options else [None] * len(ids)
                mine = ranks.in_window(start, len(ids))
                start += len(ids)
                pending = [mine[i] for i in done.missing([str(ids[position]) for position in mine])]
                bar.update(len(mine) - len(pending))
                for positions, values in predictor(window.select(pending)) if pending else ():
                    rows = [pending[position] for position in positions]
                    shard.write({id_column: ids[r], **record(v, options[r])} for r, v in zip(rows, values))
                    bar.update(len(rows))
        if not ranks.several:
            counts = _write_predictions(done, data.row_ids(args.split, args.limit), output, kind, schema)
    if ranks.several:  # once every rank has written its rows and closed (or removed, when empty) its shard
        ranks.barrier()
        if not ranks.main:
            return f"rank {ranks.rank} of {ranks.world_size}: its rows are predicted; rank 0 writes {args.output_file}"
        with store.reading() as every_rank:
            counts = _write_predictions(every_rank, data.row_ids(args.split, args.limit), output, kind, schema)
    shutil.rmtree(store.folder, ignore_errors=True)
    return f"wrote {counts.rows} predictions to {args.output_file} ({kind.summary(counts, data.label_names)})"


def _id_type(dataset: Dataset, id_column: str) -> pa.DataType:
    """The ids' type as the data stores them (row positions where the data has no id column: integers), so the
    output's ids read back as the input's."""
    if id_column in dataset.column_names:
        return dataset.features.arrow_schema.field(id_column).type
    return pa.int64()


def _manifest(args: PredictArguments, data: LabelledData, device: DeviceArguments) -> dict:
    """What the predictions depend on: the model (its files' fingerprint), the served model's name, the rows (how
    they are read, and their content: an edited file is refused, not resumed), truncation and precision. Not
    `--limit` (a partial run's parts serve a larger one), the device, nor the server's address (a restarted server
    on another port, or behind a proxy, serves the same model)."""
    return {
        "job": "dhrd predict",
        "model": model_identity(args.model),
        "served_model": (args.server_model or args.model) if args.server_url else None,
        "data": data_identity(data, args.split),
        "max_input_length": args.max_input_length,
        "dtype": None if args.server_url else device.precision,  # a server's precision is the server's
    }


def _local_predictor(
    args: PredictArguments, device: DeviceArguments, kind: ProblemKind, contract: InputContract | None
) -> Predictor:
    """The model loaded now (a failure leaves nothing on disk); for each window of rows, batches of
    `(positions, activations)` (the kind's: probabilities, values, or each row's option scores)."""
    model, tokenizer = load_classifier(
        args.model, device.torch_device, device.torch_dtype, contract, args.attn_implementation
    )
    length = max_input_length(args.max_input_length, tokenizer)
    budget = {
        "max_batch_tokens": args.max_batch_tokens or default_batch_tokens(device.torch_device),
        "max_batch_size": args.batch_size,
        "progress": False,
        "padding_free": args.padding_free,
    }
    logger.info("Predicting on %s (truncation: %s tokens)", device.describe(), length or "none")

    def predict(rows: Dataset) -> Iterator[tuple[list[int], torch.Tensor]]:
        if kind.scores_options:
            yield from score_options(model, tokenizer, rows["text"], rows["options"], length, **budget)
        else:
            for positions, logits in classify_batches(model, tokenizer, rows["text"], length, **budget):
                yield positions, kind.activations(logits)

    return predict


def _server_predictor(args: PredictArguments, contract: InputContract | None) -> Predictor:
    """Chunks of `server_batch_size` inputs sent to `/classify`, at most `concurrency` in flight (more are sent as
    answers come back, so memory stays bounded), each yielded as it ends. Long inputs are cut by the server, at the
    contract's length and on its side (as `dhrd predict` on this machine cuts them)."""
    side = contract.truncation_side if contract else None  # None: the served tokenizer's own side
    client = ClassifyClient(args, side)
    length = max_input_length(args.max_input_length, contract=contract)  # else the server's --max-model-len applies
    logger.info("Predicting via %s", args.server_url)

    def predict(rows: Dataset) -> Iterator[tuple[list[int], torch.Tensor]]:
        texts, size = rows["text"], args.server_batch_size
        chunks = (list(range(i, min(i + size, len(texts)))) for i in range(0, len(texts), size))

        def send(chunk: list[int]) -> torch.Tensor:
            return client.classify([texts[i] for i in chunk], length)

        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            yield from bounded_completions(pool, send, chunks, args.concurrency)

    return predict


class ClassifyClient:
    """vLLM's `/classify` (pooling runner): `{"model", "input": [texts], "truncate_prompt_tokens", "truncation_side"}`
    -> `probs`."""

    def __init__(self, args: PredictArguments, truncation_side: str | None = None) -> None:
        token = os.environ.get(args.api_key_env)
        self.url = args.server_url.rstrip("/").removesuffix("/v1") + "/classify"
        self.model = args.server_model or args.model
        self.retries = args.retries
        self.truncation_side = truncation_side
        self.client = http_client(args.timeout, {"Authorization": f"Bearer {token}"} if token else {})

    def classify(self, texts: list[str], max_input_length: int | None) -> torch.Tensor:
        body = {"model": self.model, "input": texts}
        if max_input_length:
            body["truncate_prompt_tokens"] = max_input_length
            if self.truncation_side:
                body["truncation_side"] = self.truncation_side

        def request() -> torch.Tensor:
            response = self.client.post(self.url, json=body)
            response.raise_for_status()
            data = sorted(response.json()["data"], key=lambda item: item["index"])
            if len(data) != len(texts):
                raise ValueError(f"{self.url} answered {len(data)} results for {len(texts)} inputs.")
            return torch.tensor([item["probs"] for item in data], dtype=torch.float32)

        return call_with_retries(request, self.retries, 1.0, f"prediction server {self.url}")


def _write_predictions(
    done: ShardIndex, ids: Iterable, path: Path, kind: ProblemKind, schema: pa.Schema, row_group: int | None = None
) -> PredictionCounts:
    """The output in input order, streamed from the parts into a temporary file renamed at the end (a crash leaves
    the previous file or none, never half of one). Parquet has the columns of `schema` (the kind's) in every row group
    of `row_group` rows (default `PARQUET_ROW_GROUP`, read when called), and its writer is closed on an error too:
    one left open would fail again, on the closed file, when collected."""
    counts = PredictionCounts()
    with atomic_file(path, "wb") as handle:
        if path.suffix.lower() == ".jsonl":
            for key in ids:
                line = done.raw(str(key))
                kind.count(counts, json.loads(line))
                handle.write(line)
        else:
            results = (done[str(key)] for key in ids)
            with pq.ParquetWriter(handle, schema) as writer:
                while group := list(itertools.islice(results, row_group or PARQUET_ROW_GROUP)):
                    for result in group:
                        kind.count(counts, result)
                    writer.write_table(pa.Table.from_pylist(group, schema=schema))
    return counts
