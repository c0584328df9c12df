"""Early stopping: transformers' callback on the problem type's metric, ending on the best checkpoint (the one saved
and exported); refused in one line without a validation split."""

import json

import pytest
from conftest import make_tokenizer, tiny_dhrd, write_rows
from datasets import Dataset

from trainer import DHRDTrainer, DHRDTrainingArguments
from trainer.cli import main
from trainer.kinds.registry import get_kind

WORDS = "sun rain wind snow cloud storm fog hail frost heat".split()


def _rows(n: int, seed: int) -> list[dict]:
    return [
        {
            "text": " ".join(WORDS[(i * 7 + k * seed) % 10] for k in range(4)),
            "label": (i * seed) % 3,
            "rationale": "so",
        }
        for i in range(n)
    ]


def test_training_stops_when_the_metric_stalls_and_ends_on_the_best_checkpoint(tmp_path):
    args = DHRDTrainingArguments(
        output_dir=str(tmp_path / "run"), max_steps=40, per_device_train_batch_size=4, learning_rate=0.5, optim="sgd",
        lr_scheduler_type="constant", eval_strategy="steps", eval_steps=1, early_stopping_patience=2, report_to=[],
        use_cpu=True, seed=0, disable_tqdm=True,
    )  # fmt: skip
    assert (args.save_strategy, args.load_best_model_at_end) == ("steps", True)  # one schedule, best kept
    trainer = DHRDTrainer(
        model=tiny_dhrd("qwen2", num_labels=3), args=args, train_dataset=Dataset.from_list(_rows(16, 3)),
        eval_dataset=Dataset.from_list(_rows(12, 5)), processing_class=make_tokenizer(),
    )  # fmt: skip
    assert (args.metric_for_best_model, args.greater_is_better) == ("macro_f1", True)
    trainer.train()
    scores = [log["eval_macro_f1"] for log in trainer.state.log_history if "eval_macro_f1" in log]
    assert trainer.state.global_step < 40  # stopped early
    best = max(scores)
    assert trainer.state.best_metric == best
    assert len(scores) > 2 and max(scores[-2:]) <= max(scores[:-2])  # the last `patience` evaluations stalled
    assert trainer.evaluate()["eval_macro_f1"] == pytest.approx(best)  # the model it ends with is the best one


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("single_label_classification", ("macro_f1", True)),
        ("multi_label_classification", ("micro_f1", True)),
        ("regression", ("mse", False)),
        ("multiple_choice", ("accuracy", True)),
    ],
)
def test_the_metric_follows_the_problem_kind(kind, expected):
    assert get_kind(kind).best_metric == expected


def test_a_chosen_metric_is_kept(tmp_path):
    args = DHRDTrainingArguments(
        output_dir=str(tmp_path), early_stopping_patience=1, metric_for_best_model="accuracy", report_to=[]
    )
    DHRDTrainer(
        model=tiny_dhrd("qwen2", num_labels=3), args=args, train_dataset=Dataset.from_list(_rows(4, 3)),
        eval_dataset=Dataset.from_list(_rows(4, 5)), processing_class=make_tokenizer(),
    )  # fmt: skip
    assert args.metric_for_best_model == "accuracy"


def test_dhrd_train_refuses_early_stopping_without_validation_before_loading(tmp_path, tiny_backbone_dir, capsys):
    write_rows(tmp_path / "rows.jsonl", 6, ("wet", "dry"))
    code = main(["train", "--model_name_or_path", str(tiny_backbone_dir), "--train_file", str(tmp_path / "rows.jsonl"),
                 "--output_dir", str(tmp_path / "run"), "--early_stopping_patience", "2"])  # fmt: skip
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert code != 0 and "give a validation split" in line, line
    assert not (tmp_path / "run").exists()
    code = main(["train", "--train_file", str(tmp_path / "rows.jsonl"), "--output_dir", str(tmp_path / "run"),
                 "--early_stopping_patience", "0"])  # fmt: skip
    assert code != 0 and "positive integer" in capsys.readouterr().err


def test_dhrd_train_exports_the_best_checkpoint(tmp_path, tiny_backbone_dir, capsys):
    write_rows(tmp_path / "train.jsonl", 16, ("wet", "dry"), seed=1)
    write_rows(tmp_path / "valid.jsonl", 8, ("wet", "dry"), seed=2)
    code = main(["train", "--model_name_or_path", str(tiny_backbone_dir), "--validation_file",
                 str(tmp_path / "valid.jsonl"), "--train_file", str(tmp_path / "train.jsonl"),
                 "--output_dir", str(tmp_path / "run"),
                 "--num_train_epochs", "6", "--per_device_train_batch_size", "8", "--learning_rate", "0.05",
                 "--early_stopping_patience", "1", "--report_to", "none"])  # fmt: skip
    assert code == 0, capsys.readouterr().err[-2000:]
    state = json.loads(max((tmp_path / "run").glob("checkpoint-*/trainer_state.json")).read_text())
    record = json.loads((tmp_path / "run" / "dhrd_training.json").read_text())
    assert record["eval_metrics"]["macro_f1"] == pytest.approx(state["best_metric"])  # the saved model is the best
