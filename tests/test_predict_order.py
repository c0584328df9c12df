"""`DHRDTrainer.predict` returns one row per input, in input order, whatever the training sampler: transformers
groups evaluation rows by length under `train_sampling_strategy="group_by_length"` (its metrics travel with
`label_ids`), but a caller that lines predictions up with its rows (`dhrd compare`'s paired differences, a user's
`dataset.add_column`) would read each prediction against another row's label."""

import random

import numpy as np
import torch
from conftest import tiny_dhrd
from datasets import Dataset

from trainer import DHRDTrainer, DHRDTrainingArguments

WORDS = "the red green blue sky grass sea apple leaf berry".split()


def test_predictions_come_back_in_input_order_under_group_by_length(tmp_path, tokenizer):
    rng = random.Random(0)
    # lengths from 1 to 24 words in random order: a length-grouped sampler would reorder them
    rows = [{"text": " ".join(rng.choices(WORDS, k=rng.randint(1, 24))), "label": rng.randrange(3)} for _ in range(40)]
    torch.manual_seed(0)
    model = tiny_dhrd("qwen2", num_labels=3).eval()
    logits = {}
    for strategy in ("sequential", "group_by_length"):
        args = DHRDTrainingArguments(
            output_dir=str(tmp_path / strategy), per_device_eval_batch_size=4, report_to=[], use_cpu=True,
            train_sampling_strategy=strategy, max_input_length=64, seed=3,
        )  # fmt: skip
        trainer = DHRDTrainer(model=model, args=args, processing_class=tokenizer)
        output = trainer.predict(Dataset.from_list(rows))
        logits[strategy] = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
        assert output.label_ids.tolist() == [row["label"] for row in rows]
    np.testing.assert_allclose(logits["group_by_length"], logits["sequential"], atol=1e-5)
    # and input order is the rows' order: the longest row scored alone gives that row's logits
    longest = max(range(len(rows)), key=lambda i: len(rows[i]["text"]))
    alone = trainer.predict(Dataset.from_list(rows[longest : longest + 1])).predictions
    alone = alone[0] if isinstance(alone, tuple) else alone
    np.testing.assert_allclose(logits["group_by_length"][longest], alone[0], atol=1e-4)
