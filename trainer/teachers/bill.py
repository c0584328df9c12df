"""The teacher's bill before it runs (`dhrd rationales --dry_run`): the rows still to do, their prompt tokens, the
completion tokens they may take, and what that costs at the given prices. Nothing is sent and nothing is written:
the job's manifest is checked (a rerun that would be refused is refused now) and its finished rows are read."""

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from datasets import Dataset

from ..jobs.shards import ShardedResults, complete_records
from ..tasks import Task
from .prompts import build_messages

CHARACTERS_PER_TOKEN = 4  # the usual estimate for English text when the teacher's tokenizer is not at hand


def estimated_tokens(text: str) -> int:
    """The tokens of `text` at ~4 characters a token (rounded up): what a server's prompt is billed as before the run,
    and what a server that reports no `usage` is counted as during it, so `--max_total_tokens` still stops it."""
    return -(-len(text) // CHARACTERS_PER_TOKEN)


def tokens_cost(prompt_tokens: int, completion_tokens: int, input_price: float, output_price: float) -> float:
    """What the tokens cost at prices per million tokens."""
    return (prompt_tokens * input_price + completion_tokens * output_price) / 1e6


def chat_text(messages: list[dict]) -> str:
    """The text of a chat's messages, as the estimate counts it."""
    return "".join(message["content"] for message in messages)


@dataclass
class TeacherBill:
    rows: int
    done: int
    prompt_tokens: int
    prompt_tokens_counted: bool  # by the teacher's own tokenizer; else estimated from characters
    max_completion_tokens: int  # every row to do at the token cap
    expected_completion_tokens: int | None  # at the mean of the rows already finished (None: none finished yet)

    def cost(self, input_price: float, output_price: float, completion_tokens: int) -> float:
        """Prices per million tokens."""
        return tokens_cost(self.prompt_tokens, completion_tokens, input_price, output_price)

    def line(
        self, input_price: float | None = None, output_price: float | None = None, heading: str = "dry run"
    ) -> str:
        estimate = f"~{CHARACTERS_PER_TOKEN} characters a token"
        how = "the teacher's tokenizer" if self.prompt_tokens_counted else estimate
        expected = (
            f"~{self.expected_completion_tokens:,} expected (the finished rows' mean), "
            if self.expected_completion_tokens is not None
            else ""
        )
        line = (
            f"{heading}: {self.rows - self.done:,} rows to do ({self.done:,} of {self.rows:,} already done); prompt "
            f"tokens {self.prompt_tokens:,} ({how}); completion tokens {expected}"
            f"at most {self.max_completion_tokens:,}"
        )
        if input_price is not None and output_price is not None:
            most = self.cost(input_price, output_price, self.max_completion_tokens)
            line += f"; cost at {input_price:g} in / {output_price:g} out per million tokens: at most {most:,.2f}"
            if self.expected_completion_tokens is not None:
                line += f", ~{self.cost(input_price, output_price, self.expected_completion_tokens):,.2f} expected"
        return line + "\n" + json.dumps(asdict(self))


def teacher_bill(
    windows: Iterable[Dataset],
    rows: int,
    task: Task,
    output_dir: str | Path,
    *,
    manifest: dict,
    template: str,
    sentinel: str,
    max_new_tokens: int,
    count_tokens: Callable[[list[dict]], int] | None = None,
    id_column: str = "idx",
    overwrite: bool = False,
    each_request: Callable[[str, list[dict]], None] | None = None,
) -> TeacherBill:
    """The bill of generating rationales for the rows of `windows` not yet finished in `output_dir` (with
    `overwrite`, as the run would: every row). `count_tokens(messages)` counts a prompt with the teacher's tokenizer;
    None estimates from characters. `each_request(row id, messages)` is called for every row to do, in order (a batch
    file is written that way: the requests billed are the requests written)."""
    results = ShardedResults(output_dir, manifest=manifest)
    if not overwrite:
        results.check_manifest()
    prompt_tokens = to_do = 0
    with results.reading() as done:
        for window in windows:
            ids = [str(value) for value in window[id_column]]
            for position in range(len(ids)) if overwrite else done.missing(ids):
                messages = build_messages(template, task, window[position], sentinel)
                if each_request is not None:
                    each_request(ids[position], messages)
                to_do += 1
                if count_tokens is not None:
                    prompt_tokens += count_tokens(messages)
                else:
                    prompt_tokens += estimated_tokens(chat_text(messages))
    finished = [] if overwrite else complete_records(Path(output_dir))
    spent = [record.get("completion_tokens", 0) for _, _, record in finished]
    expected = round(sum(spent) / len(spent) * to_do) if spent else None
    return TeacherBill(rows, rows - to_do, prompt_tokens, count_tokens is not None, to_do * max_new_tokens, expected)
