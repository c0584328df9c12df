"""How many teacher rationales the label-consistency filter removes, and whether it removes good ones.

On e-SNLI validation (9,842 rows), PaLM-540B's few-shot CoT rationales are read against the *gold* label, as
`dhrd rationales` reads a teacher's. PaLM also states its own label after each rationale, so every removal can be
checked: a rationale removed where PaLM's label differs from gold argued for another label (a right removal); one
removed where PaLM agreed with gold is a good rationale lost. The three human explanations of each row explain the
gold label by construction: every one removed is a good one lost. Prints JSON, with a sample of removals to read.

    python examples/label_consistency_study.py [--data_dir ../shared/data] [--sample 12]
"""

import argparse
import json
import random
from collections import Counter
from pathlib import Path

from trainer.tasks.rationale_sets import ESNLI_LABELS, _palm_outputs, parse_palm_esnli, read_json_lines
from trainer.teachers.generate import clean_rationale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--sample", type=int, default=12)
    args = parser.parse_args()
    root = Path(args.data_dir) / "rationales" / "palm_esnli"
    rows = list(read_json_lines(root / "esnli_valid.json"))
    outputs = _palm_outputs(root / "llm", "valid")
    statuses, removed = Counter(), []
    disagreeing = caught = 0
    for index, (row, raw) in enumerate(zip(rows, outputs)):
        rationale, palm_label = parse_palm_esnli(raw)
        gold = ESNLI_LABELS[row["label"]]
        others = [name for name in ESNLI_LABELS if name != gold]
        _, status = clean_rationale(rationale + " [END]", gold, "[END]", 150, False, others)
        statuses[status] += 1
        agrees = palm_label == gold
        disagreeing += not agrees
        if status == "label_contradicted":
            caught += not agrees
            removed.append({"row": index, "gold": gold, "palm_label": palm_label, "rationale": rationale})
    wrongly = [item for item in removed if item["palm_label"] == item["gold"]]
    human_removed, human_total = [], 0
    for index, row in enumerate(rows):
        gold = ESNLI_LABELS[row["label"]]
        others = [name for name in ESNLI_LABELS if name != gold]
        for key in ("explanation_1", "explanation_2", "explanation_3"):
            text = (row.get(key) or "").strip()
            if not text:
                continue
            human_total += 1
            if clean_rationale(text + " [END]", gold, "[END]", 150, False, others)[1] == "label_contradicted":
                human_removed.append({"row": index, "gold": gold, "explanation": text})
    report = {
        "rows": len(outputs),
        "statuses": dict(statuses),
        "label_contradicted": len(removed),
        "removed_where_palm_disagrees_with_gold": len(removed) - len(wrongly),
        "removed_where_palm_agrees_with_gold": len(wrongly),
        "palm_disagrees_with_gold": disagreeing,
        "share_of_disagreements_caught": round(caught / disagreeing, 4) if disagreeing else None,
        "sample_removed": random.Random(0).sample(removed, min(args.sample, len(removed))),
        "removed_where_palm_agrees": wrongly[: args.sample],
        "human_explanations": human_total,
        "human_explanations_removed": len(human_removed),
        "sample_human_removed": human_removed[: args.sample],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
