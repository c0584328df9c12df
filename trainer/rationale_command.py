"""`dhrd rationales`: generate label-aware teacher rationales for a task, or join an existing rationale set."""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset

from modeling_dhrd.atomic import atomic_write_text

from .tasks import get_task
from .tasks import rationale_sets as joins

JOINERS = ("copa_sse", "copa_sse_all", "winowhy", "palm_cqa", "cos_e", "palm_esnli", "esnli_human")


@dataclass
class RationaleArguments:
    task: str = field(metadata={"help": "Task name (copa, rte, cb, boolq, wic, wsc, multirc, commonsense_qa, esnli)."})
    output_dir: str = field(metadata={"help": "Folder for shards, summary.json, filtered.jsonl, rationales.jsonl."})
    split: str = field(default="train", metadata={"help": "Split to explain."})
    data_dir: str | None = field(default=None, metadata={"help": "Local data folder (else $DHRD_DATA_DIR / Hub)."})
    limit: int | None = field(default=None, metadata={"help": "Only the first N rows."})
    join: str | None = field(
        default=None, metadata={"help": f"Attach an existing rationale set instead of generating: {JOINERS}."}
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
    dtype: str | None = field(default=None, metadata={"help": "Local teacher dtype (bfloat16, float32)."})


def run_rationales(args: RationaleArguments) -> str:
    """Write `output_dir/rationales.jsonl` (the task rows with a `rationale` column); return a summary line."""
    task = get_task(args.task)
    data_dir = args.data_dir or os.environ.get("DHRD_DATA_DIR")
    if args.join and args.join not in JOINERS:
        raise ValueError(f"Unknown --join {args.join!r}; choose from {JOINERS}.")
    if args.join and data_dir is None:
        raise ValueError("--join reads the rationale files from --data_dir (or $DHRD_DATA_DIR).")
    rows = task.load(args.split, data_dir, limit=args.limit)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if args.join:
        joined, report = _join(args, rows, Path(data_dir) / "rationales")
        line = f"{report.source}: {report.matched}/{report.rows} rows matched {report.extra or ''}".strip()
    else:
        from .teachers import generate_rationales, summary_line

        template = Path(args.prompt_template_file).read_text() if args.prompt_template_file else None
        joined, summary = generate_rationales(
            rows, task, _teacher(args), output_dir, prompt_template=template, max_words=args.max_words
        )
        line = summary_line(summary)
    _write_jsonl(joined, output_dir / "rationales.jsonl")
    return f"{line}\nwrote {output_dir / 'rationales.jsonl'}"


def _teacher(args: RationaleArguments):
    from .teachers import LocalTeacher, ServerTeacher

    if args.server_url:
        if not args.server_model:
            raise ValueError("--server_model is required with --server_url (the name the server serves).")
        return ServerTeacher(
            args.server_url,
            args.server_model,
            api_key_env=args.api_key_env,
            max_concurrency=args.concurrency,
            timeout=args.timeout,
            max_retries=args.retries,
            max_new_tokens=args.max_new_tokens,
        )
    return LocalTeacher(
        args.teacher_model, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, dtype=args.dtype
    )


def _join(args: RationaleArguments, rows: Dataset, root: Path):
    if args.join.startswith("copa_sse"):
        return joins.join_copa_sse(rows, args.split, root / "copa_sse", all_explanations=args.join == "copa_sse_all")
    if args.join == "winowhy":
        return joins.join_winowhy(rows, root / "winowhy")
    if args.join == "palm_cqa":
        return joins.join_palm_cqa(rows, args.split, root / "palm_cqa")
    if args.join == "cos_e":
        return joins.join_cos_e(rows, args.split, root / "cos_e_v1.11")
    return joins.join_palm_esnli(rows, root / "palm_esnli", source="human" if args.join == "esnli_human" else "palm")


def _write_jsonl(dataset: Dataset, path: Path) -> None:
    atomic_write_text(path, "".join(json.dumps(row) + "\n" for row in dataset))
