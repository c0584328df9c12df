"""The seven SuperGLUE tasks of the paper. Each reader accepts the original jsonl release and the Hub's
`aps/super_glue` layout (flattened MultiRC and WSC, integer CB / RTE labels)."""

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from datasets import Dataset

from .base import Task

BOOL_LABELS = ("no", "yes")


def _row(record: Mapping[str, Any], text: str, label: int, group: Any = None) -> dict:
    idx = record.get("idx", 0)
    idx = idx if isinstance(idx, int) else str(idx)
    return {"idx": idx, "text": text, "label": label, "group": str(group if group is not None else idx)}


def boolq_rows(record: Mapping[str, Any]) -> Iterable[dict]:
    question = record["question"].strip().rstrip("?")
    text = f"Passage: {record['passage']}\nQuestion: {question}?"
    yield _row(record, text, int(record["label"]))


def cb_rows(record: Mapping[str, Any]) -> Iterable[dict]:
    text = f"Premise: {record['premise']}\nHypothesis: {record['hypothesis']}"
    yield _row(record, text, CB.label_index(record["label"]))


def rte_rows(record: Mapping[str, Any]) -> Iterable[dict]:
    text = f"Premise: {record['premise']}\nHypothesis: {record['hypothesis']}"
    yield _row(record, text, RTE.label_index(record["label"]))


def copa_rows(record: Mapping[str, Any]) -> Iterable[dict]:
    """Both forms: `text` lists the options for a 2-way classifier; `context` + `options` score each option
    (`DHRDForMultipleChoice`)."""
    relation = "cause" if record["question"] == "cause" else "effect"
    context = f"Premise: {record['premise']}\nQuestion: What was the {relation}?"
    text = f"{context}\nOption 1: {record['choice1']}\nOption 2: {record['choice2']}"
    row = _row(record, text, int(record["label"]))
    yield {**row, "context": context, "options": [record["choice1"], record["choice2"]]}


def wic_rows(record: Mapping[str, Any]) -> Iterable[dict]:
    text = (
        f"Sentence 1: {record['sentence1']}\nSentence 2: {record['sentence2']}\n"
        f"Question: Is the word '{record['word']}' used with the same meaning in both sentences?"
    )
    yield _row(record, text, int(record["label"]))


def wsc_rows(record: Mapping[str, Any]) -> Iterable[dict]:
    """One row per (pronoun, candidate) pair, as released; the pronoun and candidate columns let
    `wsc_choice_items` regroup the pairs into multiple-choice items."""
    target = record.get("target", record)
    text = (
        f"Passage: {record['text']}\n"
        f"Question: In the passage above, does the pronoun '{target['span2_text']}' refer to "
        f"'{target['span1_text']}'?"
    )
    row = _row(record, text, int(record["label"]))
    yield {
        **row,
        "passage": record["text"],
        "pronoun": target["span2_text"],
        "pronoun_index": int(target["span2_index"]),
        "candidate": target["span1_text"],
    }


def wsc_choice_items(rows: Dataset, num_options: int = 2) -> tuple[Dataset, dict[str, int]]:
    """WSC in multiple-choice form: the rows of one pronoun (same passage and position) become one item whose
    options are their candidate referents and whose gold option is the one labelled true.

    SuperGLUE releases WSC as yes/no pairs; only pronouns with exactly one true candidate and `num_options`
    candidates form an item (a batch needs one option count). Every other pronoun is counted in the report by
    reason, never dropped silently: on the train split, 214 of 307 pronouns have two candidates and one referent.
    """
    groups: dict[tuple[str, int], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["passage"], row["pronoun_index"]), []).append(row)
    items, report = [], Counter()
    for (passage, _), members in groups.items():
        candidates = list(dict.fromkeys(member["candidate"] for member in members))
        gold = {member["candidate"] for member in members if member["label"] == 1}
        if len(gold) != 1:
            report[f"pronouns with {len(gold)} true candidates"] += 1
            continue
        if len(candidates) != num_options:
            report[f"pronouns with {len(candidates)} candidates"] += 1
            continue
        pronoun = members[0]["pronoun"]
        items.append(
            {
                "idx": members[0]["idx"],
                "context": f"Passage: {passage}\nQuestion: In the passage above, who or what does the pronoun "
                f"'{pronoun}' refer to?",
                "options": candidates,
                "label": candidates.index(gold.pop()),
                "group": members[0]["group"],
            }
        )
    return Dataset.from_list(items), {"items": len(items), **report}


def multirc_rows(record: Mapping[str, Any]) -> Iterable[dict]:
    """One row per candidate answer; `group` is the question, the unit of exact match."""
    if "passage" not in record:  # Hub layout: already one row per answer
        ids = record["idx"]
        text = (
            f"Paragraph: {record['paragraph']}\nQuestion: {record['question']}\nCandidate answer: {record['answer']}"
        )
        group = f"{ids['paragraph']}-{ids['question']}"
        yield {"idx": f"{group}-{ids['answer']}", "text": text, "label": int(record["label"]), "group": group}
        return
    paragraph = record["passage"]["text"]
    for question in record["passage"]["questions"]:
        group = f"{record['idx']}-{question['idx']}"
        for answer in question["answers"]:
            text = f"Paragraph: {paragraph}\nQuestion: {question['question']}\nCandidate answer: {answer['text']}"
            yield {"idx": f"{group}-{answer['idx']}", "text": text, "label": int(answer["label"]), "group": group}


def _local(folder: str) -> dict[str, str]:
    return {"train": f"superglue/{folder}/train.jsonl", "val": f"superglue/{folder}/val.jsonl"}


BOOLQ = Task(
    "boolq",
    BOOL_LABELS,
    boolq_rows,
    local_files={"val": "superglue/BoolQ/val.jsonl", "train_fewglue32": "superglue/BoolQ/train_fewglue32.jsonl"},
    hub=("aps/super_glue", "boolq"),
    description="a yes/no question about a passage",
)
CB = Task(
    "cb",
    ("entailment", "contradiction", "neutral"),
    cb_rows,
    metric="accuracy_macro_f1",
    local_files=_local("CB"),
    hub=("aps/super_glue", "cb"),
    description="a premise and a hypothesis (does the premise entail the hypothesis?)",
)
COPA = Task(
    "copa",
    ("Option 1", "Option 2"),
    copa_rows,
    local_files=_local("COPA"),
    hub=("aps/super_glue", "copa"),
    description="a choice of plausible alternatives (which option is the more plausible cause or effect?)",
)
MULTIRC = Task(
    "multirc",
    ("false", "true"),
    multirc_rows,
    metric="multirc",
    local_files=_local("MultiRC"),
    hub=("aps/super_glue", "multirc"),
    description="a candidate answer to a question about a paragraph (is it true?)",
)
RTE = Task(
    "rte",
    ("entailment", "not_entailment"),
    rte_rows,
    local_files=_local("RTE"),
    hub=("aps/super_glue", "rte"),
    description="a premise and a hypothesis (does the premise entail the hypothesis?)",
)
WIC = Task(
    "wic",
    BOOL_LABELS,
    wic_rows,
    local_files=_local("WiC"),
    hub=("aps/super_glue", "wic"),
    description="a word in two sentences (is it used with the same meaning in both?)",
)
WSC = Task(
    "wsc",
    BOOL_LABELS,
    wsc_rows,
    local_files=_local("WSC"),
    hub=("aps/super_glue", "wsc.fixed"),
    description="a pronoun in a passage (does it refer to the given noun phrase?)",
)

SUPERGLUE_TASKS = (BOOLQ, CB, COPA, MULTIRC, RTE, WIC, WSC)
