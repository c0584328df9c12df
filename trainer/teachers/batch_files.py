"""The teacher through batch files: OpenAI's Batch API (about half the interactive price) and vLLM's `run-batch` (the
same file format, for a self-hosted teacher on any number of GPUs).

`write_batch_requests` writes one chat-completions request a row still to do (`custom_id` = `<row id>@<job>`: the row
id and a digest of the job's manifest, so answers carry the job they answer; the body is the one the server teacher
would post: `backends.chat_request`) and records each job's manifest by digest beside the rationale shards
(`batch.json`, for naming what differs). `BatchResults` is a teacher that answers from the provider's output file by
row id, only with answers to this job's requests (a file answering another prompt, teacher or data is refused):
`generate_in_windows` cleans, filters and stores its answers exactly as it does a server's, so `rationales.jsonl` and
`summary.json` come out as the online path writes them. Rows the file lacks, or answers with an error, are left to do
and listed (`batch_unanswered.jsonl`): the next `write_batch_requests` writes only them.

The output file is indexed by hashed `custom_id` and byte offset (16 bytes a line), and each answer is read back when
its row comes: memory stays flat on a file of millions of lines.
"""

import hashlib
import json
import os
from collections import Counter
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


def job_digest(manifest: dict) -> str:
    """A short digest of a rationale job's manifest: the part of a request's `custom_id` that ties its answer to the
    job (prompt, teacher, data, settings) it was written for."""
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:12]


def custom_id(row_id: str, digest: str) -> str:
    return f"{row_id}@{digest}"


def request_line(row_id: str, digest: str, body: dict) -> dict:
    """One line of an OpenAI Batch API input file (vLLM `run-batch` reads the same)."""
    return {"custom_id": custom_id(row_id, digest), "method": "POST", "url": ENDPOINT, "body": body}


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
    output_dir, digest = Path(output_dir), job_digest(manifest)
    with atomic_file(path, "w") as handle:

        def write(row_id: str, messages: list[dict]) -> None:
            body = chat_request(model, messages, max_new_tokens)
            handle.write(json.dumps(request_line(row_id, digest, body)) + "\n")

        bill = teacher_bill(
            windows, rows, task, output_dir, manifest=manifest, template=template, sentinel=sentinel,
            max_new_tokens=max_new_tokens, count_tokens=count_tokens, overwrite=overwrite, each_request=write,
        )  # fmt: skip
    output_dir.mkdir(parents=True, exist_ok=True)
    jobs = {**_written_jobs(output_dir), digest: manifest}
    atomic_write_text(output_dir / BATCH_RECORD, json.dumps({"jobs": jobs}, indent=2, sort_keys=True) + "\n")
    return bill


def _written_jobs(output_dir: Path) -> dict[str, dict]:
    """The manifests of the jobs whose requests were written for this folder, by digest."""
    path = output_dir / BATCH_RECORD
    return json.loads(path.read_text(encoding="utf-8")).get("jobs", {}) if path.is_file() else {}


class BatchResults:
    """A teacher whose answers are already written: the output file of a batch job (OpenAI Batch API or vLLM
    `run-batch`), one JSON line a request, matched to rows by `custom_id`.

    Args:
        path: the output file.
        output_dir: the rationale folder (its `batch.json` names what differs when the answers are another job's).
        manifest: this job's (`job_manifest`); answers to another job's requests (prompt, teacher, data, settings)
            are refused.
        model: the served model's name (the teacher's identity, as for the server teacher).
        max_new_tokens: the token cap the requests asked for.
    """

    def __init__(self, path: str | os.PathLike, output_dir: str | os.PathLike, manifest: dict, model: str,
                 max_new_tokens: int) -> None:  # fmt: skip
        self.path, self.output_dir = Path(path), Path(output_dir)
        self.name, self.max_new_tokens = model, max_new_tokens
        self.unanswered: dict[str, str] = {}  # row id -> why it is still to do
        self.digest = job_digest(manifest)
        self._index = _ResultsIndex(self.path)
        if self.digest not in self._index.digests:
            self._index.close()
            raise _another_job(self.path, self._index.digests, _written_jobs(self.output_dir), manifest)

    def complete_rows(self, ids: Sequence[str], chats: Sequence[list[dict]]) -> Iterator[list[tuple[int, Completion]]]:
        """`[(position, completion)]` for the rows the file answers; the others are noted in `unanswered`."""
        answered = []
        for position, row_id in enumerate(ids):
            key = custom_id(row_id, self.digest)
            if key not in self._index:
                self.unanswered[row_id] = "not in the results file"
                continue
            line = self._index[key]
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
        user is told."""
        path = self.output_dir / UNANSWERED
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


def _another_job(path: Path, digests: Counter, written: dict[str, dict], manifest: dict) -> JobMismatch:
    """The refusal of a results file that answers none of this job's requests, naming what differs when the job it
    answers was written here."""
    if not digests:
        return JobMismatch(f"--read_batch {path}: holds no result lines.")
    answered = digests.most_common(1)[0][0]
    if answered in written:
        differences = describe_differences(written[answered], manifest)
        return JobMismatch(
            f"--read_batch {path}: answers requests written for another job ({differences}): read it with the "
            "settings its requests were written with, or write the batch again."
        )
    return JobMismatch(
        f"--read_batch {path}: answers none of this job's requests (no custom_id ends in @{job_digest(manifest)}): "
        "the results of another batch, or of requests written elsewhere with other settings?"
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
    """A `ShardIndex` over one results file, keyed by `custom_id` (the first line of an id wins); `digests` counts the
    lines of each job digest."""

    def __init__(self, path: Path) -> None:
        super().__init__(path.parent, "custom_id")
        self.path, self.digests = path, Counter()
        offset = 0
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        key = str(json.loads(line)["custom_id"])
                        self.add(key, 0, offset)
                        self.digests[key.rsplit("@", 1)[1] if "@" in key else None] += 1
                    except (json.JSONDecodeError, KeyError, TypeError):
                        raise ValueError(
                            f"--read_batch {path}: line {number} is not a batch result (JSON with a custom_id)."
                        ) from None
                offset += len(line)

    def shard_path(self, folder: Path, number: int) -> Path:  # one "shard": the results file
        return self.path
