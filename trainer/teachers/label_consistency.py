"""Does a teacher rationale conclude with another label than the gold one?

A small teacher told the gold label still argues for another one at times ("...so the premise entails the
hypothesis" on a row labelled neutral). Trained on, such a rationale teaches the reasoning head the wrong
conclusion. The check reads only the conclusion (the last sentence) and only label names that can be read in prose:
a one-word name of five letters or more by its stem (entailment: entail, entails, entailed), a longer name as its
phrase ("Option 2"). Short names (yes, no) are too common to read. A negated mention ("does not entail") names
nothing, and a conclusion that also names the gold label is not counted as contradicting it.
"""

import re
from collections.abc import Sequence

SUFFIXES = ("ment", "ion", "ing", "ed", "s")
NEGATIONS = {"not", "no", "never", "neither", "nor", "cannot", "without", "hardly"}
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _stem(word: str) -> str:
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 5:
            return word[: -len(suffix)]
    return word


def label_pattern(name: str) -> re.Pattern | None:
    """How prose names the label `name` (None: a name too short to read, such as yes or no)."""
    name = name.strip().lower()
    if len(name) < 4:
        return None
    if " " in name or not name.isalpha():
        return re.compile(rf"\b{re.escape(name)}\b")
    return re.compile(rf"\b{re.escape(_stem(name))}\w*")


def _named(pattern: re.Pattern | None, sentence: str) -> bool:
    """`sentence` names the label without a negation among the three words before the mention."""
    if pattern is None:
        return False
    for match in pattern.finditer(sentence):
        before = re.findall(r"[a-z']+", sentence[: match.start()])[-3:]
        if not any(word in NEGATIONS or word.endswith("n't") for word in before):
            return True
    return False


def conclusion(rationale: str) -> str:
    sentences = [part for part in SENTENCE_END.split(rationale.strip().lower()) if part.strip()]
    return sentences[-1] if sentences else ""


def contradicted_label(rationale: str, gold: str, others: Sequence[str]) -> str | None:
    """The other label the rationale's conclusion names (the first, in label order), or None when it names none, or
    names the gold label too."""
    last = conclusion(rationale)
    if _named(label_pattern(gold), last):
        return None
    return next((other for other in others if _named(label_pattern(other), last)), None)
