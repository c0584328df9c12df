"""Existing rationale sets as teachers: attach real human or PaLM-540B rationales to task rows.

Every joiner returns the rows with a `rationale` column (None where nothing matched) and a `JoinReport` of how
many rows matched, so that nothing is dropped silently.
"""

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset

from .base import read_json_lines
from .reasoning import CQA_LETTERS, ESNLI_LABELS


@dataclass
class JoinReport:
    source: str
    rows: int
    matched: int
    extra: dict = field(default_factory=dict)


def _normalise(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def _attach(rows: Dataset, rationale_of: Callable[[dict], list[str]], source: str, all_rows: bool = False):
    """Add `rationale` (first candidate) or, with `all_rows`, one row per candidate; count the matches."""
    out, matched = [], 0
    for row in rows:
        candidates = [c.strip() for c in rationale_of(row) if c and c.strip()]
        matched += bool(candidates)
        if all_rows and candidates:
            out.extend({**row, "rationale": candidate} for candidate in candidates)
        else:
            out.append({**row, "rationale": candidates[0] if candidates else None})
    return Dataset.from_list(out), JoinReport(source, len(rows), matched)


def join_copa_sse(rows: Dataset, split: str, copa_sse_dir: str | Path, all_explanations: bool = False):
    """COPA <- COPA-SSE human explanations: the best-rated one per item, or all of them (one row each).

    SuperGLUE COPA train `idx` i is COPA-SSE id i+1, validation `idx` i is id i+401; COPA-SSE may swap the two
    alternatives, so the gold answer text must agree (checked, counted in `extra["answer_mismatch"]`).
    """
    offset = {"train": 1, "val": 401, "validation": 401, "test": 0}[split]
    items = {}
    for name in ("dev-explained.jsonl", "test-explained.jsonl"):
        for item in read_json_lines(Path(copa_sse_dir) / name):
            items[int(item["id"])] = item
    mismatches = 0

    def explanations(row: dict) -> list[str]:
        nonlocal mismatches
        item = items.get(int(row["idx"]) + offset)
        if item is None:
            return []
        sse_answer = item["a1"] if item["most-plausible-alternative"] == "1" else item["a2"]
        gold = row["text"].split(f"Option {row['label'] + 1}: ")[1].split("\n")[0]
        if _normalise(sse_answer) != _normalise(gold):
            mismatches += 1
            return []
        ranked = sorted(item["human-explanations"], key=lambda e: -float(e.get("filtered-avg-rating") or 0))
        return [e["text"] for e in ranked]

    joined, report = _attach(rows, explanations, "copa_sse", all_rows=all_explanations)
    report.extra["answer_mismatch"] = mismatches
    return joined, report


def join_winowhy(rows: Dataset, winowhy_dir: str | Path):
    """WSC <- WinoWhy's human reasons rated valid, matched on the passage text.

    WinoWhy explains which noun phrase the pronoun refers to; the rationale says so and gives the reason.
    """
    by_text = {}
    for item in json.loads((Path(winowhy_dir) / "winowhy.json").read_text()):
        text = item["text"]
        passage = f"{text['txt1']} {text['pron']} {text['txt2']}"
        correct = item["answers"][0 if item["correctAnswer"].strip().upper().startswith("A") else 1]
        reasons = [r[0] for r in item["reasons"] if r[3] == "Valid" and r[1] == "human"]
        by_text[_normalise(passage)] = (text["pron"], correct, reasons)

    def reasons_for(row: dict) -> list[str]:
        passage = row["text"].split("\n")[0].removeprefix("Passage: ")
        found = by_text.get(_normalise(passage))
        if not found:
            return []
        pronoun, correct, reasons = found
        return [
            f"The pronoun '{pronoun}' refers to {correct.strip()} because {r.strip().rstrip('.')}." for r in reasons
        ]

    return _attach(rows, reasons_for, "winowhy")


def parse_palm_cqa(raw: str) -> tuple[str, str | None]:
    """PaLM CoT text -> (rationale, answer letter). Text after the next few-shot `\\n\\nQ:` is not PaLM's."""
    text = raw.split("\n\nQ:")[0]
    rationale, _, answer = text.partition("So the answer is")
    letter = re.search(r"\(([a-e])\)", answer)
    return rationale.strip(), letter.group(1) if letter else None


def _palm_outputs(llm_dir: Path, split: str) -> list[str]:
    files = sorted(llm_dir.glob(f"{split}_CoT_*.json"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    outputs: list[str] = []
    for file in files:
        outputs.extend(json.loads(file.read_text()))
    return outputs


def join_palm_cqa(rows: Dataset, split: str, palm_cqa_dir: str | Path):
    """CommonsenseQA <- PaLM-540B CoT (aligned by index with `cqa_<split>.json`); `teacher_agrees` flags rows
    where PaLM's answer is the gold one (~74% on train)."""
    outputs = _palm_outputs(Path(palm_cqa_dir) / "llm", split)
    if len(outputs) < len(rows):
        raise ValueError(f"PaLM CQA {split}: {len(outputs)} outputs for {len(rows)} rows; files are incomplete.")
    rationales, agrees = [], []
    for row, raw in zip(rows, outputs):
        rationale, letter = parse_palm_cqa(raw)
        rationales.append(rationale or None)
        agrees.append(letter is not None and letter == CQA_LETTERS[row["label"]])
    joined = rows.add_column("rationale", rationales).add_column("teacher_agrees", agrees)
    report = JoinReport("palm_cqa", len(rows), sum(r is not None for r in rationales), {"teacher_agrees": sum(agrees)})
    return joined, report


def join_cos_e(rows: Dataset, split: str, cos_e_dir: str | Path):
    """CommonsenseQA <- CoS-E human open-ended explanations, joined on the question id."""
    name = {"train": "cose_train_v1.11_processed.jsonl", "test": "cose_dev_v1.11_processed.jsonl"}[split]
    by_id = {item["id"]: item["explanation"]["open-ended"] for item in read_json_lines(Path(cos_e_dir) / name)}
    return _attach(rows, lambda row: [by_id.get(row["idx"], "")], "cos_e")


def parse_palm_esnli(raw: str) -> tuple[str, str | None]:
    """PaLM e-SNLI text -> (rationale, label): the rationale precedes `\\nAnswer:`, PaLM's label follows it."""
    rationale, _, rest = raw.partition("\nAnswer:")
    label = rest.strip().split("\n")[0].strip().lower() if rest else None
    return rationale.strip(), label if label in ESNLI_LABELS else None


def join_palm_esnli(rows: Dataset, palm_esnli_dir: str | Path, source: str = "palm"):
    """e-SNLI <- PaLM-540B CoT (`source="palm"`, aligned by row number) or the first human explanation
    (`source="human"`, read from the rows' own file)."""
    directory = Path(palm_esnli_dir)
    if source == "human":
        records = list(read_json_lines(directory / "esnli_valid.json"))
        return _attach(rows, lambda row: [records[int(row["idx"])].get("explanation_1", "")], "esnli_human")
    outputs = _palm_outputs(directory / "llm", "valid")
    rationales, agrees = [], []
    for row in rows:
        rationale, label = parse_palm_esnli(outputs[int(row["idx"])]) if int(row["idx"]) < len(outputs) else ("", None)
        rationales.append(rationale or None)
        agrees.append(label == ESNLI_LABELS[row["label"]])
    joined = rows.add_column("rationale", rationales).add_column("teacher_agrees", agrees)
    matched = sum(r is not None for r in rationales)
    return joined, JoinReport("palm_esnli", len(rows), matched, {"teacher_agrees": sum(agrees)})


def shuffled_rationales(rows: Dataset, seed: int) -> Dataset:
    """The paper's control: the same rationales, permuted across rows (rows without one keep none). Whatever DHRD
    gains with these comes from the LM objective on in-domain text, not from what a rationale says about its row."""
    rationales = list(rows["rationale"])
    present = [i for i, rationale in enumerate(rationales) if rationale]
    permuted = [rationales[i] for i in present]
    random.Random(1000 + seed).shuffle(permuted)
    for i, rationale in zip(present, permuted):
        rationales[i] = rationale
    return rows.remove_columns("rationale").add_column("rationale", rationales)
