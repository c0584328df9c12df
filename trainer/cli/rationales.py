"""`dhrd rationales`: label-aware teacher rationales for any labelled dataset (a Hub id, a local folder, data files or
a built-in task), or a built-in task joined with an existing rationale set.

The output `rationales.jsonl` holds the split's rows as given (every column, the id column kept, or `idx` added as
the row's position) plus `rationale` and `rationale_status`, so `dhrd train --train_file .../rationales.jsonl` with
the same dataset description trains on it."""

import itertools
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset

from modeling_dhrd.atomic import atomic_file, atomic_write_jsonl

from ..data.description import DataError, DatasetArguments, canonical_split
from ..data.labelled import LabelledData
from ..data.options import teacher_listing
from ..device import DeviceArguments
from ..jobs.fingerprint import data_identity, model_identity
from ..jobs.ranks import launched, launched_processes
from ..tasks import rationale_sets as joins
from ..tasks.base import data_dir_or_env
from .checks import check_prices, require_client_limits, require_positive

logger = logging.getLogger(__name__)


@dataclass
class RationaleArguments:
    output_dir: str = field(metadata={"help": "Folder for shards, summary.json, filtered.jsonl, rationales.jsonl."})
    split: str = field(default="train", metadata={"help": "Split to explain: train, validation or test."})
    limit: int | None = field(default=None, metadata={"help": "Only the first N rows."})
    join: str | None = field(
        default=None,
        metadata={
            "help": "Attach an existing rationale set to its built-in task instead of generating: "
            "copa_sse, copa_sse_all, winowhy, palm_cqa, cos_e, palm_esnli, esnli_human."
        },
    )
    teacher_model: str | None = field(default=None, metadata={"help": "Local teacher (default: embedded SmolLM2)."})
    server_url: str | None = field(default=None, metadata={"help": "OpenAI-compatible base URL, e.g. .../v1."})
    server_model: str | None = field(default=None, metadata={"help": "Model name on the server."})
    api_key_env: str = field(default="OPENAI_API_KEY", metadata={"help": "Env variable holding the API token."})
    batch_size: int = field(default=8, metadata={"help": "Local teacher batch size."})
    concurrency: int = field(default=8, metadata={"help": "Server requests in flight."})
    timeout: float = field(default=120.0, metadata={"help": "Seconds per server request."})
    retries: int = field(default=8, metadata={"help": "Retries per server request (exponential backoff)."})
    max_new_tokens: int = field(default=128, metadata={"help": "Token cap per rationale."})
    max_words: int = field(default=150, metadata={"help": "Longer rationales are filtered as too_long."})
    prompt_template_file: str | None = field(default=None, metadata={"help": "Text file with a prompt template."})
    overwrite: bool = field(
        default=False, metadata={"help": "Start over: remove the results an earlier job left in --output_dir."}
    )
    dry_run: bool = field(
        default=False,
        metadata={
            "help": "Print the bill instead of running: rows still to do, their prompt tokens (the local teacher's "
            "tokenizer; ~4 characters a token for a server), completion tokens (at most, and expected once rows "
            "are done) and, with --input_price / --output_price, the cost. Calls no teacher, writes nothing."
        },
    )
    max_total_tokens: int | None = field(
        default=None,
        metadata={
            "help": "Stop cleanly once this run has spent this many prompt + completion tokens (checked before each "
            "chunk of 32 rows; what finished is kept, and a rerun continues)."
        },
    )
    write_batch: str | None = field(
        default=None,
        metadata={
            "help": "Instead of calling a teacher, write one request a row still to do to this file, in the OpenAI "
            "Batch API format (custom_id = the row id, the body the server teacher would send, --server_model as the "
            "model); vLLM's run-batch reads the same file. Billed as --dry_run bills. Read the answers back with "
            "--read_batch and the same --output_dir and settings."
        },
    )
    read_batch: str | None = field(
        default=None,
        metadata={
            "help": "Read the teacher's answers from a batch output file (OpenAI Batch API, vLLM run-batch) for the "
            "requests --write_batch wrote: cleaned, filtered and counted as the online path does. Rows missing or "
            "errored in the file are listed and stay to do (--write_batch again writes only them)."
        },
    )
    input_price: float | None = field(
        default=None, metadata={"help": "Price per million prompt tokens (dry run, --write_batch)."}
    )
    output_price: float | None = field(
        default=None, metadata={"help": "Price per million completion tokens (dry run, --write_batch)."}
    )

    def __post_init__(self) -> None:
        require_positive(self, "limit", "batch_size", "concurrency", "max_new_tokens", "max_words", "max_total_tokens")
        check_prices(self.input_price, self.output_price)
        if self.join and (self.dry_run or self.max_total_tokens):
            raise ValueError("--dry_run / --max_total_tokens price a teacher; --join attaches an existing set.")
        require_client_limits(self.retries, self.timeout)
        if launched_processes() > 1:
            self._check_launched()
        if self.join and self.join not in JOINERS:
            raise ValueError(f"Unknown --join {self.join!r}; choose from {sorted(JOINERS)}.")
        if self.server_url and not self.server_model:
            raise ValueError("--server_model is required with --server_url (the name the server serves).")
        self._check_batch_files()

    def _check_launched(self) -> None:
        """Under torchrun / accelerate launch the ranks share the local teacher's rows; the rest is one process's."""
        for flag, given in (("--server_url", self.server_url), ("--write_batch", self.write_batch),
                            ("--read_batch", self.read_batch), ("--dry_run", self.dry_run), ("--join", self.join),
                            ("--max_total_tokens", self.max_total_tokens)):  # fmt: skip
            if given:
                raise ValueError(
                    f"{flag} runs in one process (a server has its own concurrency); launch it without torchrun, or "
                    "drop it to share the local teacher's rows among the processes."
                )

    def _check_batch_files(self) -> None:
        flag = "--write_batch" if self.write_batch else "--read_batch" if self.read_batch else None
        if flag is None:
            return
        if self.write_batch and self.read_batch:
            raise ValueError("--write_batch and --read_batch are two steps: write requests, then read results.")
        if not self.server_model:
            raise ValueError(f"{flag} needs --server_model: the model the provider serves (the requests' model).")
        for other, given in (("--server_url", self.server_url), ("--dry_run", self.dry_run), ("--join", self.join),
                             ("--max_total_tokens", self.max_total_tokens)):  # fmt: skip
            if given:
                raise ValueError(f"{flag} calls no teacher itself; drop {other}.")


def run_rationales(
    args: RationaleArguments, data_args: DatasetArguments, device: DeviceArguments | None = None
) -> str:
    """Write `output_dir/rationales.jsonl` (the rows with a `rationale` column); return a summary line. Rows are read,
    sent to the teacher and written back in windows, so memory stays flat however many rows there are."""
    ranks = launched()
    device = device or DeviceArguments()  # a launched rank's own GPU (`LOCAL_RANK`)
    data = LabelledData(data_args)
    output_dir = Path(args.output_dir)
    if args.join:
        return _run_join(args, data, output_dir)
    from ..teachers import finished_records, generate_in_windows, summary_line, template_for

    raw = data.require(args.split)
    count = data.num_rows(args.split, args.limit)  # --limit, or the description's cap for the split
    raw = raw.select(range(count)) if count < len(raw) else raw
    for column in (data_args.rationale_column, "rationale_status"):
        if column in raw.column_names:
            raise DataError(
                f"{data.source(args.split)} already has a column {column!r}; write the teacher's rationales to "
                "another one with --rationale_column NAME."
            )
    template = _read_template(args.prompt_template_file)
    windows = data.row_windows(args.split, limit=args.limit)
    first = next(windows)  # checks the columns, labels and ids before a teacher loads
    if data.kind.scores_options:  # the teacher sees the context with the options listed, and the gold option's text
        task = data.choice_task(_widest_options(data, args))
        windows = (_listed(window) for window in itertools.chain([first], windows))
    else:
        task = data.task
        windows = itertools.chain([first], windows)
    template_for(
        task.name, template, task.problem_kind
    )  # a template without its fields fails before a teacher is loaded
    manifest = {
        "teacher": _teacher_identity(args),
        "dtype": None if args.server_model else device.precision,  # a served teacher's precision is the server's
        "data": data_identity(data, args.split),
    }
    if args.dry_run:
        return _bill(args, windows, len(raw), task, template, manifest).line(args.input_price, args.output_price)
    if args.write_batch:
        return _write_batch(args, windows, len(raw), task, template, manifest)
    teacher = _teacher(args, device, _job(args, task, template, manifest))
    if args.overwrite and ranks.main:  # an earlier job's output must not stand beside this job's summary
        (output_dir / "rationales.jsonl").unlink(missing_ok=True)

    def row_ids() -> Iterator:
        return data.row_ids(args.split, args.limit)

    try:
        summary = generate_in_windows(
            windows, len(raw), row_ids, task, teacher, output_dir, prompt_template=template,
            max_words=args.max_words, manifest=manifest, overwrite=args.overwrite,
            max_total_tokens=args.max_total_tokens, ranks=ranks,
        )  # fmt: skip
        unanswered = teacher.finish() if args.read_batch else ""
    finally:
        if args.read_batch:
            teacher.close()
    if not ranks.main:
        return f"rank {ranks.rank} of {ranks.world_size}: {summary.generated} rows explained; rank 0 writes the rest"
    if summary.left:  # the rows left have no rationale yet: rationales.jsonl waits for the rerun
        return "\n".join(filter(None, (summary_line(summary), unanswered)))
    records = finished_records(output_dir, (str(key) for key in row_ids()))
    add_idx = data.id_column(raw) is None
    with atomic_file(output_dir / "rationales.jsonl", "w") as handle:
        for position, (row, record) in enumerate(zip(raw, records)):  # the rows as given, then the teacher's
            if add_idx:
                row["idx"] = position
            row[data_args.rationale_column] = record["rationale"] if record["status"] == "kept" else None
            row["rationale_status"] = record["status"]
            handle.write(json.dumps(row) + "\n")
    return f"{summary_line(summary)}\nwrote {output_dir / 'rationales.jsonl'}"


def _job(args: RationaleArguments, task, template: str | None, manifest: dict) -> dict:
    """The rationale job's manifest, as `generate_in_windows` records it (the teacher's identity is `manifest`'s)."""
    from ..teachers import SENTINEL, job_manifest, template_for

    resolved = template_for(task.name, template, task.problem_kind)
    return job_manifest("", task, resolved, SENTINEL, args.max_words, args.max_new_tokens, manifest)


def _bill(args: RationaleArguments, windows, rows: int, task, template: str | None, manifest: dict):
    """The teacher's bill for this job (`--dry_run`): prompt tokens by the local teacher's tokenizer (its files only
    are read), or estimated for a served model."""
    from ..teachers import SENTINEL, render_prompt, teacher_bill, template_for

    count_tokens = None
    if not args.server_model:
        from transformers import AutoTokenizer

        from ..embedded import resolve_backbone

        tokenizer = AutoTokenizer.from_pretrained(resolve_backbone(args.teacher_model))

        def count_tokens(messages: list[dict]) -> int:
            return len(tokenizer(render_prompt(tokenizer, messages), add_special_tokens=False)["input_ids"])

    return teacher_bill(
        windows, rows, task, args.output_dir, manifest=_job(args, task, template, manifest),
        template=template_for(task.name, template, task.problem_kind), sentinel=SENTINEL,
        max_new_tokens=args.max_new_tokens, count_tokens=count_tokens, overwrite=args.overwrite,
    )  # fmt: skip


def _write_batch(args: RationaleArguments, windows, rows: int, task, template: str | None, manifest: dict) -> str:
    """`--write_batch`: the requests of the rows still to do, and their bill (prompt tokens estimated)."""
    from ..teachers import SENTINEL, template_for
    from ..teachers.batch_files import write_batch_requests

    bill = write_batch_requests(
        args.write_batch, windows, rows, task, args.output_dir, manifest=_job(args, task, template, manifest),
        template=template_for(task.name, template, task.problem_kind), sentinel=SENTINEL, model=args.server_model,
        max_new_tokens=args.max_new_tokens, overwrite=args.overwrite,
    )  # fmt: skip
    heading = f"wrote {bill.rows - bill.done:,} requests to {args.write_batch} (OpenAI Batch API format)"
    return bill.line(args.input_price, args.output_price, heading=heading)


def _widest_options(data: LabelledData, args: RationaleArguments) -> list[list[str]]:
    """The options of the row with the most (the teacher's task lists that many option names)."""
    widest: list[str] = []
    for window in data.row_windows(args.split, limit=args.limit):
        widest = max([widest, *window["options"]], key=len)
    return [widest]


def _listed(window: Dataset) -> Dataset:
    listed = [teacher_listing(context, options) for context, options in zip(window["text"], window["options"])]
    return window.remove_columns("text").add_column("text", listed)


def _run_join(args: RationaleArguments, data: LabelledData, output_dir: Path) -> str:
    joiner = JOINERS[args.join]
    if data.preset is None or data.preset.name not in joiner.tasks:
        raise ValueError(
            f"--join {args.join} explains the task(s) {list(joiner.tasks)}; pass --task {joiner.tasks[0]}."
        )
    data_dir = data_dir_or_env(data.args.data_dir)
    if data_dir is None:
        raise ValueError("--join reads the rationale files from --data_dir (or $DHRD_DATA_DIR).")
    rows = data.rows(args.split, limit=args.limit)
    split = {"validation": "val"}.get(canonical_split(args.split), canonical_split(args.split))
    joined, report = joiner.join(rows, split, Path(data_dir) / "rationales" / joiner.folder)
    joined = _with_task_columns(joined, data.require(args.split).select(range(len(rows))))
    output_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_jsonl(output_dir / "rationales.jsonl", joined)
    line = f"{report.source}: {report.matched}/{report.rows} rows matched {report.extra or ''}".strip()
    return f"{line}\nwrote {output_dir / 'rationales.jsonl'}"


def _with_task_columns(joined: Dataset, raw: Dataset) -> Dataset:
    """The joined rows with the task's other columns (e.g. `context` and `options`, for training the task per
    option with `--options_column`), matched by `idx` (a join may give one row per explanation)."""
    by_id = {str(key): position for position, key in enumerate(raw["idx"])}
    positions = [by_id[str(key)] for key in joined["idx"]]
    for column in raw.column_names:
        if column not in joined.column_names:
            values = raw[column]
            joined = joined.add_column(column, [values[position] for position in positions])
    return joined


def _read_template(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"--prompt_template_file {path}: cannot be read ({error}).") from None


def _teacher_identity(args: RationaleArguments) -> dict:
    """The teacher a job's rationales come from: the served model's name, or the local model's files. Not the server's
    address: a server restarted on another port (or reached through a proxy) serves the same teacher."""
    if args.server_model:  # a server, or batch files for a served model
        return {"served_model": args.server_model}
    from ..embedded import resolve_backbone

    return model_identity(resolve_backbone(args.teacher_model))


def _teacher(args: RationaleArguments, device: DeviceArguments, job: dict):
    from ..teachers import LocalTeacher, ServerTeacher

    if args.read_batch:
        from ..teachers.batch_files import BatchResults

        return BatchResults(args.read_batch, args.output_dir, job, args.server_model, args.max_new_tokens)
    if args.server_url:
        return ServerTeacher(
            args.server_url,
            args.server_model,
            api_key_env=args.api_key_env,
            max_concurrency=args.concurrency,
            timeout=args.timeout,
            max_retries=args.retries,
            max_new_tokens=args.max_new_tokens,
        )
    logger.info("Local teacher on %s", device.describe())
    return LocalTeacher(
        args.teacher_model,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        dtype=device.torch_dtype,
        device=device.torch_device,
    )


@dataclass(frozen=True)
class Joiner:
    """An existing rationale set: the tasks it explains, its folder under `<data_dir>/rationales`, and the join."""

    tasks: tuple[str, ...]
    folder: str
    join: Callable[[Dataset, str, Path], tuple[Dataset, joins.JoinReport]]


JOINERS: dict[str, Joiner] = {
    "copa_sse": Joiner(("copa",), "copa_sse", lambda rows, split, root: joins.join_copa_sse(rows, split, root)),
    "copa_sse_all": Joiner(
        ("copa",), "copa_sse", lambda rows, split, root: joins.join_copa_sse(rows, split, root, all_explanations=True)
    ),
    "winowhy": Joiner(("wsc",), "winowhy", lambda rows, split, root: joins.join_winowhy(rows, root)),
    "palm_cqa": Joiner(("commonsense_qa",), "palm_cqa", joins.join_palm_cqa),
    "cos_e": Joiner(("commonsense_qa",), "cos_e_v1.11", joins.join_cos_e),
    "palm_esnli": Joiner(("esnli",), "palm_esnli", lambda rows, split, root: joins.join_palm_esnli(rows, root)),
    "esnli_human": Joiner(
        ("esnli",), "palm_esnli", lambda rows, split, root: joins.join_palm_esnli(rows, root, source="human")
    ),
}
