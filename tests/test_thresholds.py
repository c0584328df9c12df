"""Multi-label thresholds tuned on validation for F1: each label's tuned threshold is as good as any, and
`dhrd train --tune_thresholds` saves them where evaluate, the export, predict and the card use them."""

import json
import random

import numpy as np
import pytest

from trainer.cli import main
from trainer.kinds.thresholds import _f1, decide, tune_thresholds

TAGS = ("rain", "snow", "wind")


def test_each_tuned_threshold_is_the_best_for_its_label():
    rng = np.random.default_rng(0)
    labels = (rng.random((300, 3)) < [0.1, 0.3, 0.6]).astype(int)
    probabilities = np.clip(0.35 * labels + rng.random((300, 3)) * 0.6, 0, 1)
    thresholds = tune_thresholds(probabilities, labels)
    for column, threshold in enumerate(thresholds):
        scores, gold = probabilities[:, column], labels[:, column].astype(bool)
        best = max(_f1(scores > t, gold) for t in np.linspace(0, 1, 2001))
        assert _f1(scores > threshold, gold) >= best - 1e-12
        assert _f1(scores > threshold, gold) >= _f1(scores > 0.5, gold)
    assert decide(probabilities, thresholds).tolist() == (probabilities > np.asarray(thresholds)).astype(int).tolist()
    assert tune_thresholds(probabilities, np.zeros_like(labels)) == [0.5, 0.5, 0.5]  # no positives: 0.5


def _rows(path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    with open(path, "w") as handle:
        for i in range(n):
            tags = [tag for tag, share in zip(TAGS, (0.2, 0.5, 0.7)) if rng.random() < share]
            text = " ".join(rng.choice(["cold", "grey", "windy", "wet", "dark"]) for _ in range(5))
            handle.write(json.dumps({"id": f"r{i}", "text": text, "tags": tags, "rationale": "because"}) + "\n")


def test_tuned_thresholds_reach_evaluate_the_export_predict_and_the_card(tmp_path, tiny_backbone_dir, capsys):
    _rows(tmp_path / "train.jsonl", 24, 0)
    _rows(tmp_path / "valid.jsonl", 30, 1)
    data = ["--train_file", str(tmp_path / "train.jsonl"), "--validation_file", str(tmp_path / "valid.jsonl"),
            "--label_column", "tags", "--label_names", ",".join(TAGS)]  # fmt: skip
    code = main(["train", "--model_name_or_path", str(tiny_backbone_dir), *data, "--output_dir", str(tmp_path / "run"),
                 "--max_steps", "2", "--tune_thresholds", "--report_to", "none", "--save_strategy", "no"])  # fmt: skip
    assert code == 0, capsys.readouterr().err[-2000:]
    thresholds = json.loads((tmp_path / "run" / "config.json").read_text())["label_thresholds"]
    assert len(thresholds) == 3 and thresholds != [0.5, 0.5, 0.5]
    assert main(["export", "--model", str(tmp_path / "run"), "--output_dir", str(tmp_path / "export")]) == 0
    assert json.loads((tmp_path / "export" / "config.json").read_text())["label_thresholds"] == thresholds
    assert "| label_thresholds |" in (tmp_path / "export" / "README.md").read_text()
    # the validation scores were measured at thresholds tuned on the same rows: the record and the card say so
    assert json.loads((tmp_path / "run" / "dhrd_training.json").read_text())["eval_metrics_on_tuning_rows"] is True
    card = (tmp_path / "export" / "README.md").read_text()
    assert "tuned on these validation rows, so these scores are optimistic" in card
    capsys.readouterr()

    output = tmp_path / "predictions.jsonl"
    assert main(["predict", "--model", str(tmp_path / "export"), *data, "--split", "validation", "--id_column", "id",
                 "--output_file", str(output)]) == 0  # fmt: skip
    predicted = [json.loads(line) for line in output.read_text().splitlines()]
    for row in predicted:  # each label decided at its own threshold
        assert row["labels"] == [tag for tag, limit in zip(TAGS, thresholds) if row["probs"][tag] > limit]
    gold = [json.loads(line)["tags"] for line in (tmp_path / "valid.jsonl").read_text().splitlines()]
    true_positive = sum(len(set(p["labels"]) & set(g)) for p, g in zip(predicted, gold))
    micro = 2 * true_positive / (sum(len(p["labels"]) for p in predicted) + sum(len(g) for g in gold))
    capsys.readouterr()
    assert main(["evaluate", "--model", str(tmp_path / "export"), *data]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["micro_f1"] == pytest.approx(micro)


def test_tuning_without_validation_rows_is_refused_before_training(tmp_path, tiny_backbone_dir, capsys):
    _rows(tmp_path / "train.jsonl", 8, 0)
    train = str(tmp_path / "train.jsonl")
    code = main(["train", "--model_name_or_path", str(tiny_backbone_dir), "--train_file", train, "--label_column",
                 "tags", "--label_names", ",".join(TAGS), "--output_dir", str(tmp_path / "run"),
                 "--tune_thresholds"])  # fmt: skip
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert code != 0 and "give a validation split" in line and not (tmp_path / "run").exists(), line


def test_thresholds_are_for_multi_label_models(tmp_path, tiny_backbone_dir, capsys):
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps({"text": f"t{i}", "label": ["a", "b"][i % 2],
                                                             "rationale": "r"}) + "\n" for i in range(6)))  # fmt: skip
    code = main(["train", "--model_name_or_path", str(tiny_backbone_dir), "--train_file", str(tmp_path / "rows.jsonl"),
                 "--validation_file", str(tmp_path / "rows.jsonl"), "--output_dir", str(tmp_path / "run"),
                 "--max_steps", "1", "--tune_thresholds", "--report_to", "none"])  # fmt: skip
    assert code != 0 and "multi-label" in capsys.readouterr().err.strip().splitlines()[-1]
