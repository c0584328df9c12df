"""Pieces of the accuracy study (`examples/accuracy_study.py`) that decide what a table means."""

import importlib.util

from conftest import PROJECT_ROOT
from datasets import Dataset

_spec = importlib.util.spec_from_file_location("accuracy_study", PROJECT_ROOT / "examples" / "accuracy_study.py")
study = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(study)


def test_shuffled_control_permutes_rationales_only_among_rows_that_have_one():
    rationales = [f"because {i}" if i % 3 else None for i in range(30)]
    rows = Dataset.from_dict({"text": [f"x{i}" for i in range(30)], "label": [0] * 30, "rationale": rationales})

    control = study.shuffled(rows, seed=0)

    assert control["text"] == rows["text"]
    assert [r is None for r in control["rationale"]] == [r is None for r in rationales]
    assert sorted(r for r in control["rationale"] if r) == sorted(r for r in rationales if r)
    assert sum(a == b for a, b in zip(control["rationale"], rationales) if a) < 5  # really permuted
    assert control["rationale"] == study.shuffled(rows, seed=0)["rationale"]  # the same control for a seed
    assert control["rationale"] != study.shuffled(rows, seed=1)["rationale"]  # another seed, another control
