"""The teacher through batch files: OpenAI's Batch API (about half the interactive price) and vLLM's `run-batch` (the
same file format, for a self-hosted teacher on any number of GPUs).

`write_batch_requests` writes one chat-completions request a row still to do (`custom_id` = the row id, the body the
server teacher would post: `backends.chat_request`) and records, beside the rationale shards, the job the requests
were written for (`batch.json`). `BatchResults` is a teacher that answers from the provider's output file by row id:
`generate_in_windows` cleans, filters and stores its answers exactly as it does a server's, so `rationales.jsonl` and
`summary.json` come out as the online path writes them. Rows the file lacks, or answers with an error, are left to do
and listed (`batch_unanswered.jsonl`): the next `write_batch_requests` writes only them.

The output file is indexed by hashed `custom_id` and byte offset (16 bytes a line), and each answer is read back when
its row comes: memory stays flat on a file of millions of lines.
"""

import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from datasets import Dataset

from modeling_dhrd.atomic import atomic_file, atomic_write_text

from ..jobs.shards import JobMismatch, ShardIndex, describe_differences
from ..tasks import Task
from .backends import Completion, chat_completion, chat_request
from .bill import TeacherBill, teacher_bill

ENDPOINT = "/v1/chat/completions"
BATCH_RECORD = "batch.json"  # in the rationale folder: the job the last requests file was written for
UNANSWERED = "batch_unanswered.jsonl"


def request_line(row_id: str, body: dict) -> dict:
    """One line of an OpenAI Batch API input file (vLLM `run-batch` reads the same)."""
    return {"custom_id": row_id, "method": "POST", "url": ENDPOINT, "body": body}


def write_batch_requests(
    path: str | os.PathLike,
    windows: Iterable[Dataset],
    rows: int,
    task: Task,
    output_dir: str | os.PathLike,
    *,
    manifest: dict,
    template: str,
    sentinel: str,
    model: str,
    max_new_tokens: int,
    count_tokens: Callable[[list[dict]], int] | None = None,
    overwrite: bool = False,
) -> TeacherBill:
    """Write the requests of the rows of `windows` still to do in `output_dir` (every row with `overwrite`) to `path`,
    atomically; return their bill, as `--dry_run` counts it. `manifest` is the rationale job's (`job_manifest`): it is
    recorded in `output_dir/batch.json`, and `BatchResults` refuses to read answers for any other job."""
    output_dir = Path(output_dir)
    with atomic_file(path, "w") as handle:

        def write(row_id: str, messages: list[dict]) -> None:
            handle.write(json.dumps(request_line(row_id, chat_request(model, messages, max_new_tokens))) + "\n")

        bill = teacher_bill(
            windows, rows, task, output_dir, manifest=manifest, template=template, sentinel=sentinel,
            max_new_tokens=max_new_tokens, count_tokens=count_tokens, overwrite=overwrite, each_request=write,
        )  # fmt: skip
    output_dir.mkdir(parents=True, exist_ok=True)
    record = {"requests": str(path), "rows": bill.rows - bill.done, "manifest": manifest}
    atomic_write_text(output_dir / BATCH_RECORD, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return bill


class BatchResults:
    """A teacher whose answers are already written: the output file of a batch job (OpenAI Batch API or vLLM
    `run-batch`), one JSON line a request, matched to rows by `custom_id`.

    Args:
        path: the output file.
        output_dir: the rationale folder `write_batch_requests` wrote `batch.json` to.
        manifest: this job's (`job_manifest`); another job's requests (prompt, teacher, data, settings) are refused.
        model: the served model's name (the teacher's identity, as for the server teacher).
        max_new_tokens: the token cap the requests asked for.
    """

    def __init__(self, path: str | os.PathLike, output_dir: str | os.PathLike, manifest: dict, model: str,
                 max_new_tokens: int) -> None:  # fmt: skip
        self.path, self.output_dir = Path(path), Path(output_dir)
        self.name, self.max_new_tokens = model, max_new_tokens
        self.unanswered: dict[str, str] = {}  # row id -> why it is still to do
        self.answered_lines = 0
        _require_same_job(self.output_dir, manifest)
        self._index = _ResultsIndex(self.path)
        if not len(self._index):
            raise ValueError(f"--read_batch {self.path}: holds no result lines.")

    def complete_rows(self, ids: Sequence[str], chats: Sequence[list[dict]]) -> Iterator[list[tuple[int, Completion]]]:
        """`[(position, completion)]` for the rows the file answers; the others are noted in `unanswered`."""
        answered = []
        for position, row_id in enumerate(ids):
            if row_id not in self._index:
                self.unanswered[row_id] = "not in the results file"
                continue
            self.answered_lines += 1
            line = self._index[row_id]
            problem = _error(line)
            if problem:
                self.unanswered[row_id] = problem
                continue
            try:
                answered.append((position, chat_completion(line["response"]["body"], chats[position])))
            except (KeyError, IndexError, TypeError, AttributeError) as error:
                self.unanswered[row_id] = f"not a chat completion ({type(error).__name__}: {error})"
        if answered:
            yield answered

    def finish(self) -> str:
        """List the rows still to do in `batch_unanswered.jsonl` (removed once every row is answered); return what a
        user is told. A file that answers none of the job's rows is refused: it is another job's."""
        path = self.output_dir / UNANSWERED
        if self.answered_lines == 0 and self.unanswered:
            raise JobMismatch(
                f"--read_batch {self.path}: answers none of the {len(self.unanswered)} rows to do (its custom_id "
                f"values are not this data's row ids): the results of another batch?"
            )
        if not self.unanswered:
            path.unlink(missing_ok=True)
            return ""
        with atomic_file(path, "w") as handle:
            for row_id, reason in self.unanswered.items():
                handle.write(json.dumps({"id": row_id, "reason": reason}) + "\n")
        return (
            f"{len(self.unanswered)} rows without an answer in {self.path} (listed in {path}); `--write_batch` "
            "writes requests for only them"
        )

    def close(self) -> None:
        self._index.close()


def _require_same_job(output_dir: Path, manifest: dict) -> None:
    record_path = output_dir / BATCH_RECORD
    if not record_path.is_file():
        raise ValueError(
            f"{output_dir} has no {BATCH_RECORD}: write the requests with --write_batch into this --output_dir first "
            "(it records which job the results answer)."
        )
    written = json.loads(record_path.read_text(encoding="utf-8"))["manifest"]
    if written != manifest:
        differences = describe_differences(written, manifest)
        raise JobMismatch(
            f"the batch requests in {output_dir} were written for another job ({differences}): read the results with "
            "the settings they were written with, or write the batch again."
        )


def _error(line: dict) -> str:
    """Why a result line is no answer ('' when it is one): an `error`, or a response other than 200."""
    response = line.get("response") or {}
    if line.get("error"):
        error = line["error"]
        message = (error.get("error") or error).get("message") if isinstance(error, dict) else error
        return f"error: {message}"
    if response.get("status_code", 200) != 200 or not response.get("body"):
        return f"error: status {response.get('status_code')}"
    return ""


class _ResultsIndex(ShardIndex):
    """A `ShardIndex` over one results file, keyed by `custom_id` (the first line of an id wins)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path.parent, "custom_id")
        self.path = path
        offset = 0
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        self.add(str(json.loads(line)["custom_id"]), 0, offset)
                    except (json.JSONDecodeError, KeyError, TypeError):
                        raise ValueError(
                            f"--read_batch {path}: line {number} is not a batch result (JSON with a custom_id)."
                        ) from None
                offset += len(line)

    def shard_path(self, folder: Path, number: int) -> Path:  # one "shard": the results file
        return self.path
