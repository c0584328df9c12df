"""Built-in synthetic reasoning tasks with a programmatic teacher: the demo's data and the mechanism check.

Two people gain and lose apples in a few steps; the question is who has more at the end. The label depends on an
arithmetic computation that the rationale spells out ("Ana has 3 + 4 - 2 = 5 apples ..."), so a reasoning head that
learns the rationale gets a signal the label alone does not carry: DHRD should beat the pooled baseline here. The
data is deterministic in the seed and needs no download.

`synthetic` (two steps each, the sum in one line) is learnt by both methods at 250 steps (~0.9). The four-step
versions are harder: one bit of label per example teaches five-term sums slowly, while the rationale carries the
intermediate values: `synthetic_multistep` opens with both final totals, `synthetic_multistep_worked` writes every
running total ("7 + 3 = 10, 10 - 4 = 6, ...").
"""

import random
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Literal

from datasets import Dataset

from .base import Task

NAMES = ("Ana", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jade", "Kai", "Lena", "Milo", "Nia")
LABELS = ("first", "second")


def _person(rng: random.Random, steps: int, running: bool = False) -> tuple[str, int, str]:
    """(story, final total, worked arithmetic): `3 + 4 - 2 = 5`, or with `running` every partial result
    (`3 + 4 = 7, 7 - 2 = 5`). The random draws do not depend on `running`."""
    start = rng.randint(2, 12)
    text, formula, total, partials = f"starts with {start} apples", f"{start}", start, []
    for _ in range(steps):
        amount = rng.randint(1, 9)
        sign = "+" if rng.random() < 0.5 or total - amount < 0 else "-"
        text += f", gets {amount} more" if sign == "+" else f", gives away {amount}"
        formula += f" {sign} {amount}"
        after = total + amount if sign == "+" else total - amount
        partials.append(f"{total} {sign} {amount} = {after}")
        total = after
    return text, total, ", ".join(partials) if running else f"{formula} = {total}"


def _pairs(seed: int, steps: int, running: bool = False) -> Iterator[tuple[str, str, str, int, str, str, int, str]]:
    """Endless `(first, second, text_a, total_a, work_a, text_b, total_b, work_b)` with unequal totals."""
    rng = random.Random(seed)
    while True:
        first, second = rng.sample(NAMES, 2)
        text_a, total_a, work_a = _person(rng, steps, running)
        text_b, total_b, work_b = _person(rng, steps, running)
        if total_a != total_b:
            yield first, second, text_a, total_a, work_a, text_b, total_b, work_b


RationaleStyle = Literal["sum", "running", "totals_first"]


def synthetic_rows(n: int, seed: int = 0, steps: int = 2, rationale_style: RationaleStyle = "sum") -> list[dict]:
    """`n` examples with `text`, `label` (0: the first person has more, 1: the second), `rationale`, `idx`.

    `rationale_style`: `sum` writes one sum per person (`Ana has 3 + 4 - 2 = 5 apples.`); `running` every partial
    result (`3 + 4 = 7, 7 - 2 = 5`); `totals_first` opens with both final totals (`Ana ends with 5 apples and Ben
    with 9: 5 is fewer than 9.`), so the first rationale tokens the reasoning head predicts, right after the input,
    need the same computation from the input as the label does (the later tokens of the other styles are computed
    from the rationale's own earlier tokens)."""
    rows = []
    running = rationale_style == "running"
    for first, second, text_a, total_a, work_a, text_b, total_b, work_b in islice(_pairs(seed, steps, running), n):
        label = 0 if total_a > total_b else 1
        comparison = "more" if total_a > total_b else "fewer"
        text = f"{first} {text_a}. {second} {text_b}. Who has more apples now, the first person or the second?"
        if rationale_style == "totals_first":
            rationale = (
                f"{first} ends with {total_a} apples and {second} with {total_b}: "
                f"{total_a} is {comparison} than {total_b}."
            )
        else:
            rationale = (
                f"{first} has {work_a} apples. {second} has {work_b} apples. {total_a} is {comparison} than {total_b}."
            )
        rows.append({"idx": len(rows), "text": text, "label": label, "group": str(len(rows)), "rationale": rationale})
    return rows


# The same story for transformers' other problem types (the `dhrd` command line's multi-label and regression
# example, `examples/problem_types_example.py`): labels and rationales written by the same programmatic teacher.
MULTI_LABELS = ("first_over_10", "second_over_10", "first_has_more")


def synthetic_multi_label_rows(n: int, seed: int = 0, steps: int = 2) -> list[dict]:
    """`label`: the names of `MULTI_LABELS` that hold (any subset, possibly none)."""
    rows = []
    for first, second, text_a, total_a, work_a, text_b, total_b, work_b in islice(_pairs(seed, steps), n):
        holds = {"first_over_10": total_a > 10, "second_over_10": total_b > 10, "first_has_more": total_a > total_b}
        text = f"{first} {text_a}. {second} {text_b}."
        rationale = (
            f"{first} has {work_a} apples, {'more' if total_a > 10 else 'not more'} than 10. {second} has {work_b} "
            f"apples, {'more' if total_b > 10 else 'not more'} than 10. {total_a} is "
            f"{'more' if total_a > total_b else 'fewer'} than {total_b}."
        )
        labels = [name for name in MULTI_LABELS if holds[name]]
        rows.append({"idx": len(rows), "text": text, "label": labels, "rationale": rationale})
    return rows


def synthetic_regression_rows(n: int, seed: int = 0, steps: int = 3) -> list[dict]:
    """`label`: how many apples the person has at the end (a number)."""
    rng = random.Random(seed)
    rows = []
    for idx in range(n):
        name = rng.choice(NAMES)
        text, total, work = _person(rng, steps)
        rows.append(
            {
                "idx": idx,
                "text": f"{name} {text}. How many apples does {name} have now?",
                "label": float(total),
                "rationale": f"{name} has {work} apples.",
            }
        )
    return rows


@dataclass(frozen=True)
class SyntheticTask(Task):
    """`load(split)` generates the rows: train, val and test use different seeds.

    Args:
        steps: gains or losses per person.
        rationale_style: what the programmatic teacher writes (see `synthetic_rows`).
    """

    steps: int = 2
    rationale_style: RationaleStyle = "sum"

    def load(self, split: str, data_dir=None, limit: int | None = None) -> Dataset:
        seeds = {"train": 0, "val": 1, "validation": 1, "test": 2}
        if split not in seeds:
            raise ValueError(f"{self.name}: no split {split!r}; use train, val or test.")
        n = limit or {"train": 2000}.get(split, 500)
        rows = synthetic_rows(n, seed=1000 + seeds[split], steps=self.steps, rationale_style=self.rationale_style)
        return Dataset.from_list(rows)


_DESCRIPTION = "a question about who has more apples after some steps"


def _one_row(record: dict) -> list[dict]:
    return [record]


SYNTHETIC = SyntheticTask("synthetic", LABELS, _one_row, description=_DESCRIPTION)
# The same four-step questions (identical inputs and labels) with two teachers: the worked running totals were tried
# first and lost to the pooled baseline (docs/RESULTS.md, "The mechanism check"); the totals-first teacher is the one
# the demo uses.
SYNTHETIC_MULTISTEP = SyntheticTask(
    "synthetic_multistep", LABELS, _one_row, description=_DESCRIPTION, steps=4, rationale_style="totals_first"
)
SYNTHETIC_MULTISTEP_WORKED = SyntheticTask(
    "synthetic_multistep_worked", LABELS, _one_row, description=_DESCRIPTION, steps=4, rationale_style="running"
)
