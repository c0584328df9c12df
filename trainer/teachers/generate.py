"""Resumable, exactly-once teacher rationale generation.

Every finished example is appended as one JSON line (flushed and fsynced) to a shard of the current run
(`trainer.jobs.shards`): as each server response arrives, or as each local generation batch ends. A rerun skips the ids
already there, so a crash or Ctrl-C loses at most the requests (or the one local batch) in flight, and no id is ever
written twice.
"""

import json
import logging
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from datasets import Dataset

from modeling_dhrd.atomic import atomic_file, atomic_write_text

from ..jobs.progress import progress_bar
from ..jobs.ranks import Ranks
from ..jobs.shards import ShardedResults, require_unique_ids
from ..tasks import Task
from .bill import CHARACTERS_PER_TOKEN
from .label_consistency import contradicted_label
from .prompts import SENTINEL, build_messages, template_for

logger = logging.getLogger(__name__)

FILTER_REASONS = ("empty", "missing_sentinel", "too_long", "label_restated", "label_contradicted")


@dataclass
class GenerationSummary:
    rows: int
    already_done: int
    generated: int
    kept: int
    filtered: dict[str, int] = field(default_factory=dict)
    completion_tokens: int = 0
    seconds: float = 0.0
    teacher: str = ""
    prompt_tokens: int = 0
    stopped_at_budget: bool = False  # `max_total_tokens` was spent: rows are left for a rerun
    left: int = 0  # rows without a finished record (after a budget stop, or rows a batch results file lacks)
    tokens_estimated: bool = False  # some counts are ~4 characters a token: the server reported no usage
    # The job's bill: the tokens of every finished row, this run's and earlier runs' (a budget stop, a kill, batch
    # files in parts); the fields above count this run only. Estimated where a count was; rows an older version
    # finished recorded no prompt count: their prompts are left out (the prompt total is then a lower bound).
    job_prompt_tokens: int = 0
    job_completion_tokens: int = 0
    job_tokens_estimated: bool = False
    job_rows_without_prompt_count: int = 0


def clean_rationale(
    text: str,
    label_name: str | None,
    sentinel: str = SENTINEL,
    max_words: int = 150,
    finished: bool = False,
    other_labels: Sequence[str] = (),
) -> tuple[str, str]:
    """(rationale, status): the text before the sentinel, or the reason it is filtered out.

    `missing_sentinel`: no sentinel and the output hit the token cap (truncated). An output without the sentinel
    that ended by itself (eos) is complete and kept: small teachers often drop the sentinel.
    `label_restated`: the label (`label_name`; None where the answer names no label) appears verbatim ("the answer
    is yes"; for labels of 4+ characters anywhere as a phrase, e.g. "Option 2", "entailment"), which would let the
    student copy the label instead of the reasoning.
    `label_contradicted`: the conclusion (last sentence) names one of `other_labels` instead of the gold one
    (`label_consistency`): the rationale argues for another label.
    """
    stripped = text.strip()
    if not stripped or stripped.startswith(sentinel):
        return "", "empty"
    if sentinel not in stripped and not finished:
        return stripped, "missing_sentinel"
    rationale = stripped.split(sentinel, 1)[0].strip()
    if not rationale:
        return "", "empty"
    if len(rationale.split()) > max_words:
        return rationale, "too_long"
    if label_name is not None:  # None: the answer names no label (a multi-label row's empty set)
        phrase = re.escape(label_name.strip().lower())
        pattern = rf"\b{phrase}\b" if len(label_name.strip()) >= 4 else rf"\banswer is:?\W*{phrase}\b"
        if re.search(pattern, rationale.lower()):
            return rationale, "label_restated"
    if other_labels and contradicted_label(rationale, label_name, other_labels):
        return rationale, "label_contradicted"
    return rationale, "kept"


def load_results(output_dir: Path) -> dict[str, dict]:
    """Finished records by id, from every shard; lines cut short by a crash are ignored."""
    return ShardedResults(output_dir).load()


def generate_rationales(
    dataset: Dataset, task: Task, teacher, output_dir: str | os.PathLike, *, id_column: str = "idx", **settings
) -> tuple[Dataset, GenerationSummary]:
    """Label-aware rationales for every row of `dataset` (columns `text`, `label`, `id_column`); `settings` are those
    of `generate_in_windows` (`prompt_template`, `sentinel`, `max_words`, `chunk_size`, `progress`).

    Returns the rows with `rationale` (None where filtered) and `rationale_status` columns, and a summary. Filtered
    rows are also listed in `output_dir/filtered.jsonl`; `output_dir/summary.json` holds the summary. For data too
    large for memory, `generate_in_windows` does the same work window by window.
    """
    ids = [str(value) for value in dataset[id_column]]
    summary = generate_in_windows(
        [dataset], len(dataset), lambda: ids, task, teacher, output_dir, id_column=id_column, **settings
    )
    results = list(finished_records(output_dir, ids))
    joined = dataset.add_column("rationale", [r["rationale"] if r["status"] == "kept" else None for r in results])
    return joined.add_column("rationale_status", [r["status"] for r in results]), summary


def generate_in_windows(
    windows: Iterable[Dataset],
    rows: int,
    row_ids: Callable[[], Iterable],
    task: Task,
    teacher,
    output_dir: str | os.PathLike,
    *,
    prompt_template: str | None = None,
    sentinel: str = SENTINEL,
    max_words: int = 150,
    id_column: str = "idx",
    chunk_size: int = 32,
    progress: bool = True,
    manifest: dict | None = None,
    overwrite: bool = False,
    max_total_tokens: int | None = None,
    ranks: Ranks | None = None,
) -> GenerationSummary:
    """`generate_rationales` over `windows` of rows (`rows` in all; `row_ids()` yields their ids again, in order):
    memory is bounded by a window, whatever the data's size. The records stay in the shards of `output_dir`
    (`finished_records` reads them back in order); `filtered.jsonl` and `summary.json` are written from them.

    The shards' manifest holds the teacher, task, prompt template and cleaning settings (and whatever `manifest`
    adds, e.g. the data): a rerun with other ones is refused rather than merged, unless `overwrite` starts over.

    `max_total_tokens` caps the prompt + completion tokens this run spends: once spent, no further chunk of
    `chunk_size` rows is sent (the ones in flight finish and are kept), and the summary says `stopped_at_budget`; a
    rerun continues where it stopped, like after a kill. Counts a server did not report are estimated (the log says
    so once, the summary says `tokens_estimated`): a budget that counted only reported tokens would never stop.

    Under a launcher (`ranks`: `trainer.jobs.ranks.launched`) each rank generates every N-th row into a shard of its
    own; rank 0 writes `filtered.jsonl` and `summary.json` over every rank's rows (the others return their own
    counts). What is done is per row: a rerun with any number of processes resumes."""
    ranks = ranks or Ranks()
    output_dir = Path(output_dir)
    require_unique_ids(row_ids, id_column, "generate_rationales")
    template = template_for(task.name, prompt_template, task.problem_kind)
    start = time.monotonic()
    generated, tokens, prompt_tokens, stopped, estimated = 0, 0, 0, False, False
    manifest = job_manifest(
        getattr(teacher, "name", type(teacher).__name__),
        task,
        template,
        sentinel,
        max_words,
        getattr(teacher, "max_new_tokens", None),
        manifest,
    )
    start_of_window = 0
    with (
        ShardedResults(output_dir, manifest=manifest).open(overwrite, ranks) as (done, shard),
        progress_bar(ranks.share(rows), "Teacher rationales", unit="row", disable=not progress) as bar,
    ):
        for window in windows:
            ids = [str(value) for value in window[id_column]]
            mine = ranks.in_window(start_of_window, len(ids))
            start_of_window += len(ids)
            pending = [mine[i] for i in done.missing([ids[p] for p in mine])]
            bar.update(len(mine) - len(pending))
            for offset in range(0, len(pending), chunk_size):
                if max_total_tokens is not None and tokens + prompt_tokens >= max_total_tokens:
                    stopped = True
                    break
                indices = pending[offset : offset + chunk_size]
                chunk = [window[i] for i in indices]
                labels = [task.kind.restated_answer(row["label"], task.id2label) for row in chunk]
                others = [_other_labels(task, row) for row in chunk]
                chats = [build_messages(template, task, row, sentinel) for row in chunk]
                for finished in _completions(teacher, chats, [ids[i] for i in indices]):
                    records = []
                    for position, completion in finished:
                        rationale, status = clean_rationale(
                            completion.text,
                            labels[position],
                            sentinel,
                            max_words,
                            completion.finished,
                            others[position],
                        )
                        records.append(
                            {
                                "id": ids[indices[position]],
                                "rationale": rationale,
                                "status": status,
                                "raw": completion.text,
                                "completion_tokens": completion.completion_tokens,
                                "prompt_tokens": completion.prompt_tokens,
                                "tokens_estimated": bool(getattr(completion, "estimated", False)),
                            }
                        )
                        tokens += completion.completion_tokens
                        prompt_tokens += completion.prompt_tokens
                        if getattr(completion, "estimated", False) and not estimated:
                            estimated = True
                            logger.warning(
                                "The teacher reports no token usage: its tokens are estimated at ~%d characters a "
                                "token (for --max_total_tokens and summary.json)",
                                CHARACTERS_PER_TOKEN,
                            )
                    shard.write(records)  # durable before the next request: a kill loses only work in flight
                    generated += len(records)
                    bar.update(len(records))
            if stopped:
                break
        ranks.barrier()  # every rank's rationales are in the shards
    if ranks.several:  # the counts of every rank's run
        spent = ranks.all_gather((generated, tokens, prompt_tokens, stopped, estimated))
        generated, tokens, prompt_tokens = (sum(counts[i] for counts in spent) for i in range(3))
        stopped, estimated = any(counts[3] for counts in spent), any(counts[4] for counts in spent)
    if not ranks.main:
        return GenerationSummary(rows, 0, generated, 0, completion_tokens=tokens, prompt_tokens=prompt_tokens)
    statuses: Counter = Counter()
    job_prompt, job_completion, job_estimated, uncounted = 0, 0, False, 0
    with atomic_file(output_dir / "filtered.jsonl", "w") as filtered:
        for record in finished_records(output_dir, (str(key) for key in row_ids()), skip_missing=True):
            statuses[record["status"]] += 1
            job_prompt += record.get("prompt_tokens", 0)
            job_completion += record.get("completion_tokens", 0)
            job_estimated |= record.get("tokens_estimated", False)
            uncounted += "prompt_tokens" not in record
            if record["status"] != "kept":
                filtered.write(json.dumps(record) + "\n")
    finished = sum(statuses.values())
    summary = GenerationSummary(
        rows=rows,
        already_done=finished - generated,
        generated=generated,
        kept=statuses.pop("kept", 0),
        filtered=dict(statuses),
        completion_tokens=tokens,
        seconds=round(time.monotonic() - start, 2),
        teacher=getattr(teacher, "name", type(teacher).__name__),
        prompt_tokens=prompt_tokens,
        stopped_at_budget=stopped,
        left=rows - finished,
        tokens_estimated=estimated,
        job_prompt_tokens=job_prompt,
        job_completion_tokens=job_completion,
        job_tokens_estimated=job_estimated,
        job_rows_without_prompt_count=uncounted,
    )
    atomic_write_text(output_dir / "summary.json", json.dumps(asdict(summary), indent=2) + "\n")
    logger.info("Teacher rationales: %s", summary)
    return summary


def finished_records(output_dir: str | os.PathLike, ids: Iterable[str], skip_missing: bool = False) -> Iterator[dict]:
    """The stored record of each id, in the order given (read from the shards one at a time); with `skip_missing`,
    ids without one are passed over (a run stopped at its token budget)."""
    with ShardedResults(output_dir).reading() as done:
        for key in ids:
            if not skip_missing or key in done:
                yield done[key]


def job_manifest(
    teacher: str,
    task: Task,
    template: str,
    sentinel: str,
    max_words: int,
    max_new_tokens: int | None,
    extra: dict | None,
) -> dict:
    """What a rationale job's results depend on (its shards' manifest; `extra` adds to or replaces entries)."""
    return {
        "teacher": teacher,
        "task": task.name,
        "prompt_template": template,
        "sentinel": sentinel,
        "max_words": max_words,
        "max_new_tokens": max_new_tokens,
        **(extra or {}),
    }


def _other_labels(task: Task, row: Mapping) -> list[str]:
    """The labels a rationale must not conclude with (the kind's `competing_labels`); none for rows with options
    (the teacher is told the option's text, not its name)."""
    return [] if row.get("options") else task.kind.competing_labels(row["label"], task.id2label)


def _completions(teacher, chats: list[list[dict]], ids: list[str]) -> Iterator[list[tuple[int, object]]]:
    """Groups of finished `(position, completion)` pairs, each as soon as the teacher has it: one completion at a
    time from a concurrent server, one generation batch at a time from a local model. A teacher that answers by row
    id (`complete_rows`: a batch results file) may leave rows out: they stay to do."""
    if hasattr(teacher, "complete_rows"):
        yield from teacher.complete_rows(ids, chats)
    elif hasattr(teacher, "complete_iter"):
        yield from teacher.complete_iter(chats)
    else:  # a plain `complete(chats) -> list[Completion]` teacher (e.g. a programmatic one)
        yield list(enumerate(teacher.complete(chats)))


def summary_line(summary: GenerationSummary | Mapping) -> str:
    data = asdict(summary) if isinstance(summary, GenerationSummary) else dict(summary)
    filtered = ", ".join(f"{k} {v}" for k, v in data["filtered"].items()) or "none"
    approx = "~" if data.get("tokens_estimated") else ""  # estimated counts read as such
    line = (
        f"{data['rows']} rows: {data['kept']} kept, filtered: {filtered}; {data['generated']} generated now, "
        f"{data['already_done']} already done; {approx}{data['completion_tokens']} tokens in {data['seconds']} s"
    )
    if approx:
        line += f" (the teacher reports no token usage: estimated at ~{CHARACTERS_PER_TOKEN} characters a token)"
    if data.get("stopped_at_budget"):
        line += (
            f"\nstopped at the token budget ({approx}{data['prompt_tokens'] + data['completion_tokens']} prompt + "
            f"completion tokens): {data['left']} rows left; rerun (with a larger --max_total_tokens) to continue"
        )
    elif data.get("left"):
        line += f"\n{data['left']} rows have no rationale yet"
    if data.get("already_done") and "job_completion_tokens" in data:
        uncounted = data.get("job_rows_without_prompt_count", 0)
        job_approx = "at least " if uncounted else "~" if data.get("job_tokens_estimated") else ""
        line += (
            f"\nthe job in all: {job_approx}{data['job_prompt_tokens'] + data['job_completion_tokens']} tokens "
            f"({data['job_prompt_tokens']} prompt + {data['job_completion_tokens']} completion, every finished row)"
        )
        if uncounted:
            line += f"; {uncounted} rows an older version finished recorded no prompt count"
    return line
