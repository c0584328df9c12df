"""CommonsenseQA as option rows for `dhrd compare` (or `dhrd train`): the accuracy study's `cqa` protocol written as
two JSONL files a user's data would be.

    python examples/cqa_choice_files.py --data-dir ../shared/data --output-dir W
    dhrd compare --train_file W/cqa_train.jsonl --test_file W/cqa_test.jsonl --split test \\
        --text_column text --options_column options --label_column label --id_column id ...

`cqa_train.jsonl`: a fixed random subsample (`random.Random(0)`) of the train questions with the PaLM-540B CoT joined
as `rationale` (every question has one; 77% agree with the gold answer); `cqa_test.jsonl`: the first `--test-rows`
dev questions, without rationales. Each row: `id`, `text` (the question), `options` (the five answers), `label` (the
gold option's index). The data folder's README says where the files come from (Hub ids).
"""

import argparse
import json
import random
from pathlib import Path

from modeling_dhrd.atomic import atomic_write_text
from trainer.tasks import get_task
from trainer.tasks.rationale_sets import join_palm_cqa


def choice_rows(rows, rationale: bool) -> str:
    lines = []
    for row in rows:
        line = {"id": str(row["idx"]), "text": row["context"], "options": row["options"], "label": row["label"]}
        if rationale:
            line["rationale"] = row["rationale"]
        lines.append(json.dumps(line) + "\n")
    return "".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="the folder with rationales/palm_cqa (see its README)")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--train-rows", type=int, default=1600)
    parser.add_argument("--test-rows", type=int, default=600)
    args = parser.parse_args()
    data, out = Path(args.data_dir), Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    task = get_task("commonsense_qa")
    full = task.load("train", str(data))
    with_cot, report = join_palm_cqa(full, "train", data / "rationales" / "palm_cqa")
    subset = sorted(random.Random(0).sample(range(len(full)), args.train_rows))  # the accuracy study's subsample
    test = task.load("test", str(data))
    atomic_write_text(out / "cqa_train.jsonl", choice_rows(with_cot.select(subset), rationale=True))
    atomic_write_text(out / "cqa_test.jsonl", choice_rows(test.select(range(min(args.test_rows, len(test)))), False))
    print(f"{report}\nwrote {out / 'cqa_train.jsonl'} and {out / 'cqa_test.jsonl'}")


if __name__ == "__main__":
    main()
