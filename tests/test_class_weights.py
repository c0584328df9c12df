"""Class weights: the model's weighted loss is torch's own (cross-entropy `weight`, BCE `pos_weight`), 'balanced'
counts the training rows, and `dhrd train --class_weights` reaches the config and the card; bad weights are one line.
Gradient accumulation with weights: `tests/test_trainer.py::test_gradient_accumulation_matches_the_full_batch`."""

import json

import pytest
import torch
import torch.nn.functional as F
from conftest import make_tokenizer, tiny_dhrd, write_rows
from datasets import Dataset

from trainer import DHRDTrainer, DHRDTrainingArguments
from trainer.cli import main
from trainer.kinds.registry import MULTI_LABEL, MULTIPLE_CHOICE, REGRESSION, SINGLE_LABEL


def test_the_weighted_single_label_loss_is_torchs_weighted_cross_entropy():
    weights = [0.5, 2.0, 3.0]
    model = tiny_dhrd("llama", num_labels=3, class_weights=weights, lm_weight=0.0)
    input_ids = torch.randint(1, 200, (6, 7))
    labels = torch.tensor([0, 2, 2, 1, 0, 2])
    output = model(input_ids=input_ids, labels=labels)
    expected = F.cross_entropy(output.logits, labels, weight=torch.tensor(weights))
    torch.testing.assert_close(output.cls_loss, expected)
    unweighted = tiny_dhrd("llama", num_labels=3, lm_weight=0.0)(input_ids=input_ids, labels=labels).cls_loss
    assert not torch.isclose(unweighted, expected)


def test_the_weighted_multi_label_loss_is_torchs_pos_weight_bce():
    weights = [1.0, 4.0, 0.25]
    model = tiny_dhrd(
        "qwen2", num_labels=3, class_weights=weights, problem_type="multi_label_classification", lm_weight=0.0
    )
    input_ids = torch.randint(1, 200, (5, 6))
    labels = torch.tensor([[1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 0], [0, 1, 0]], dtype=torch.float32)
    output = model(input_ids=input_ids, labels=labels)
    expected = F.binary_cross_entropy_with_logits(output.logits, labels, pos_weight=torch.tensor(weights))
    torch.testing.assert_close(output.cls_loss, expected)


def test_balanced_weights_follow_the_row_counts():
    names = {0: "a", 1: "b"}
    assert SINGLE_LABEL.balanced_class_weights([0, 0, 0, 1], names) == pytest.approx([4 / 6, 4 / 2])
    multi_hot = [[1, 0], [1, 1], [0, 1], [0, 1]]
    assert MULTI_LABEL.balanced_class_weights(multi_hot, names) == pytest.approx([2 / 2, 1 / 3])
    with pytest.raises(ValueError, match=r"label\(s\) \['b'\] have no training rows"):
        SINGLE_LABEL.balanced_class_weights([0, 0], names)
    for kind in (REGRESSION, MULTIPLE_CHOICE):  # no classes to weight
        assert not kind.weights_classes
        with pytest.raises(ValueError, match="has none to weight"):
            kind.balanced_class_weights([0.5], {0: "score"})


@pytest.mark.parametrize(
    ("value", "problem"),
    [("1,-2", "positive numbers"), ("heavy", "positive numbers"), ("1,2,3", "2 positive numbers")],
)
def test_bad_class_weights_are_one_line(value, problem, tmp_path, tiny_backbone_dir, capsys):
    write_rows(tmp_path / "rows.jsonl", 6, ("wet", "dry"))
    code = main(["train", "--model_name_or_path", str(tiny_backbone_dir), "--train_file", str(tmp_path / "rows.jsonl"),
                 "--output_dir", str(tmp_path / "run"), "--max_steps", "1", "--class_weights", value,
                 "--report_to", "none"])  # fmt: skip
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert code != 0 and line.startswith("dhrd train: error: ") and problem in line, line
    assert not (tmp_path / "run").exists()


def test_dhrd_train_balanced_weights_reach_the_config_and_the_card(tmp_path, tiny_backbone_dir, capsys):
    rows = [{"text": f"row {i}", "label": "rare" if i % 4 == 0 else "common", "rationale": "so"} for i in range(12)]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    code = main(["train", "--model_name_or_path", str(tiny_backbone_dir), "--train_file", str(tmp_path / "rows.jsonl"),
                 "--label_names", "common,rare", "--output_dir", str(tmp_path / "run"), "--max_steps", "1",
                 "--class_weights", "balanced", "--report_to", "none", "--save_strategy", "no"])  # fmt: skip
    assert code == 0, capsys.readouterr().err[-2000:]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["class_weights"] == pytest.approx([12 / (2 * 9), 12 / (2 * 3)])
    assert main(["export", "--model", str(tmp_path / "run"), "--output_dir", str(tmp_path / "export")]) == 0
    assert "| class_weights | [0.666" in (tmp_path / "export" / "README.md").read_text()


def test_the_weighted_eval_loss_is_the_weighted_mean_whatever_the_eval_batch_size(tmp_path):
    weights = [0.5, 2.0, 3.0]
    model = tiny_dhrd("qwen2", num_labels=3, class_weights=weights, lm_weight=0.0)
    rows = Dataset.from_list([{"text": "sun " * (i + 1), "label": label} for i, label in enumerate([0, 2, 2, 1, 0])])
    losses = {}
    for batch_size in (1, 2, 5):
        args = DHRDTrainingArguments(
            output_dir=str(tmp_path), per_device_eval_batch_size=batch_size, report_to=[], use_cpu=True
        )
        trainer = DHRDTrainer(model=model, args=args, eval_dataset=rows, processing_class=make_tokenizer())
        losses[batch_size] = trainer.evaluate()["eval_loss"]
    logits = torch.as_tensor(trainer.predict(rows).predictions)
    expected = F.cross_entropy(logits, torch.tensor(rows["label"]), weight=torch.tensor(weights)).item()
    assert losses == pytest.approx(dict.fromkeys(losses, expected), abs=1e-5)
