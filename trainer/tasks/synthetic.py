"""A built-in synthetic reasoning task with a programmatic teacher: the demo's data and the mechanism check.

Two people gain and lose apples in a few steps; the question is who has more at the end. The label depends on an
arithmetic computation that the rationale spells out ("Ana has 3 + 4 - 2 = 5 apples ..."), so a reasoning head that
learns the rationale gets a signal the label alone does not carry: DHRD should beat the pooled baseline here. The
data is deterministic in the seed and needs no download.
"""

import random

from datasets import Dataset

from .base import Task

NAMES = ("Ana", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jade", "Kai", "Lena", "Milo", "Nia")
LABELS = ("first", "second")


def _person(rng: random.Random, steps: int) -> tuple[str, int, str, str]:
    start = rng.randint(2, 12)
    text, formula, total = f"starts with {start} apples", f"{start}", start
    for _ in range(steps):
        amount = rng.randint(1, 9)
        if rng.random() < 0.5 or total - amount < 0:
            text += f", gets {amount} more"
            formula += f" + {amount}"
            total += amount
        else:
            text += f", gives away {amount}"
            formula += f" - {amount}"
            total -= amount
    return text, total, formula, f"{formula} = {total}"


def synthetic_rows(n: int, seed: int = 0, steps: int = 2) -> list[dict]:
    """`n` examples with `text`, `label` (0: the first person has more, 1: the second), `rationale`, `idx`."""
    rng = random.Random(seed)
    rows = []
    while len(rows) < n:
        first, second = rng.sample(NAMES, 2)
        text_a, total_a, _, work_a = _person(rng, steps)
        text_b, total_b, _, work_b = _person(rng, steps)
        if total_a == total_b:
            continue
        label = 0 if total_a > total_b else 1
        comparison = "more" if total_a > total_b else "fewer"
        text = f"{first} {text_a}. {second} {text_b}. Who has more apples now, the first person or the second?"
        rationale = (
            f"{first} has {work_a} apples. {second} has {work_b} apples. {total_a} is {comparison} than {total_b}."
        )
        rows.append({"idx": len(rows), "text": text, "label": label, "group": str(len(rows)), "rationale": rationale})
    return rows


class SyntheticTask(Task):
    """`load(split)` generates the rows: train, val and test use different seeds."""

    def load(self, split: str, data_dir=None, limit: int | None = None) -> Dataset:
        seeds = {"train": 0, "val": 1, "validation": 1, "test": 2}
        if split not in seeds:
            raise ValueError(f"synthetic: no split {split!r}; use train, val or test.")
        return Dataset.from_list(synthetic_rows(limit or {"train": 2000}.get(split, 500), seed=1000 + seeds[split]))


SYNTHETIC = SyntheticTask(
    "synthetic", LABELS, lambda record: [record], description="a question about who has more apples after some steps"
)
