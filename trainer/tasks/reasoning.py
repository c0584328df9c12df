"""Tasks with real large-teacher rationales beside them: CommonsenseQA and e-SNLI (PaLM-540B CoT, humans), and
the 500 labelled COPA test items of COPA-SSE (a larger COPA evaluation set than the 100 validation items)."""

from collections.abc import Iterable, Mapping
from typing import Any

from .base import Task
from .superglue import copa_rows

CQA_LETTERS = ("a", "b", "c", "d", "e")
ESNLI_LABELS = ("entailment", "neutral", "contradiction")


def cqa_choices(record: Mapping[str, Any]) -> list[str]:
    choices = record["choices"]
    return list(choices["text"]) if isinstance(choices, Mapping) else list(choices)


def cqa_rows(record: Mapping[str, Any]) -> Iterable[dict]:
    """Local PaLM file (`choices` list + `answer` text) or Hub `tau/commonsense_qa` (`choices{label,text}` +
    `answerKey`)."""
    choices = cqa_choices(record)
    lines = "\n".join(f"({letter}) {choice}" for letter, choice in zip(CQA_LETTERS, choices))
    text = f"Question: {record['question']}\nAnswer choices:\n{lines}"
    if "answerKey" in record:
        label = "ABCDE".index(record["answerKey"]) if record["answerKey"] else -1
    else:
        label = choices.index(record["answer"])
    yield {
        "idx": str(record["id"]),
        "text": text,
        "label": label,
        "group": str(record["id"]),
        "context": f"Question: {record['question']}",  # the multiple-choice form: each option scored on its own
        "options": choices,
    }


def esnli_rows(record: Mapping[str, Any]) -> Iterable[dict]:
    text = f"Premise: {record['premise']}\nHypothesis: {record['hypothesis']}"
    idx = record.get("pairID", record["idx"])
    yield {"idx": idx, "text": text, "label": int(record["label"]), "group": str(idx)}


def copa_sse_rows(record: Mapping[str, Any]) -> Iterable[dict]:
    """COPA-SSE items in SuperGLUE's COPA format (`idx` = COPA-SSE id)."""
    copa_record = {
        "premise": record["p"],
        "choice1": record["a1"],
        "choice2": record["a2"],
        "question": record["asks-for"],
        "label": int(record["most-plausible-alternative"]) - 1,
        "idx": int(record["id"]),
    }
    yield from copa_rows(copa_record)


COMMONSENSE_QA = Task(
    "commonsense_qa",
    CQA_LETTERS,
    cqa_rows,
    local_files={"train": "rationales/palm_cqa/cqa_train.json", "test": "rationales/palm_cqa/cqa_test.json"},
    hub=("tau/commonsense_qa", None),
    description="a multiple-choice commonsense question",
)
COPA_SSE = Task(
    "copa_sse",
    ("Option 1", "Option 2"),
    copa_sse_rows,
    local_files={"dev": "rationales/copa_sse/dev-explained.jsonl", "test": "rationales/copa_sse/test-explained.jsonl"},
    description="a choice of plausible alternatives (which option is the more plausible cause or effect?)",
)

ESNLI = Task(
    "esnli",
    ESNLI_LABELS,
    esnli_rows,
    metric="accuracy_macro_f1",
    local_files={"val": "rationales/palm_esnli/esnli_valid.json"},
    description="a premise and a hypothesis (entailment, neutral or contradiction?)",
)
