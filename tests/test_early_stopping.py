"""Early stopping: transformers' callback on the problem type's metric, ending on the best checkpoint (the one saved
and exported); refused in one line without a validation split."""

import json
import logging

import numpy as np
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


def _regression_rows(n: int, seed: int) -> list[dict]:
    return [{**row, "label": float((i * seed) % 5) / 2} for i, row in enumerate(_rows(n, seed))]


def _regression_trainer(tmp_path, **overrides) -> DHRDTrainer:
    args = DHRDTrainingArguments(**{
        "output_dir": str(tmp_path / "run"), "max_steps": 12, "per_device_train_batch_size": 4, "learning_rate": 0.3,
        "optim": "sgd", "lr_scheduler_type": "constant", "eval_strategy": "steps", "eval_steps": 2,
        "early_stopping_patience": 2, "metric_for_best_model": "mse", "report_to": [], "use_cpu": True, "seed": 0,
        "disable_tqdm": True, **overrides,
    })  # fmt: skip
    return DHRDTrainer(
        model=tiny_dhrd("qwen2", num_labels=1, problem_type="regression"), args=args,
        train_dataset=Dataset.from_list(_regression_rows(16, 3)),
        eval_dataset=Dataset.from_list(_regression_rows(8, 7)), processing_class=make_tokenizer(),
    )  # fmt: skip


def test_a_named_metric_takes_the_kinds_direction_so_the_lowest_mse_is_kept(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="trainer.training.dhrd_trainer"):
        trainer = _regression_trainer(tmp_path)
    assert trainer.args.greater_is_better is False
    assert "on mse (lower is better)" in caplog.text
    trainer.train()
    scores = [log["eval_mse"] for log in trainer.state.log_history if "eval_mse" in log]
    assert len(set(scores)) > 1
    assert trainer.state.best_metric == min(scores)


def test_an_explicit_greater_is_better_wins_over_the_kinds_direction(tmp_path):
    trainer = _regression_trainer(tmp_path, greater_is_better=True)
    assert trainer.args.greater_is_better is True  # MSE is lower-better, but the flag was given
    trainer.train()
    scores = [log["eval_mse"] for log in trainer.state.log_history if "eval_mse" in log]
    assert trainer.state.best_metric == max(scores)


def test_the_direction_applies_to_load_best_model_at_end_without_early_stopping(tmp_path):
    trainer = _regression_trainer(
        tmp_path, early_stopping_patience=None, load_best_model_at_end=True, metric_for_best_model="eval_mse",
        save_strategy="steps", save_steps=2,
    )  # fmt: skip
    assert (trainer.args.metric_for_best_model, trainer.args.greater_is_better) == ("eval_mse", False)


def test_a_metric_the_kind_does_not_report_is_one_line_naming_its_metrics(tmp_path):
    with pytest.raises(
        ValueError, match=r"--metric_for_best_model accuracy .*regression.*mse, pearson, spearman"
    ) as e:
        _regression_trainer(tmp_path, metric_for_best_model="accuracy")
    assert "\n" not in str(e.value)
    assert _regression_trainer(tmp_path, metric_for_best_model="eval_loss").args.greater_is_better is False


@pytest.mark.parametrize("kind", ["single_label_classification", "multi_label_classification", "regression"])
def test_every_metric_a_kind_scores_has_a_direction(kind):
    problem = get_kind(kind)
    logits, labels = np.zeros((4, 2)), np.array([[0, 1], [1, 0], [1, 1], [0, 0]])
    if kind == "single_label_classification":
        labels = np.array([0, 1, 1, 0])
    elif kind == "regression":
        logits, labels = np.array([[0.5], [1.0], [2.0], [0.0]]), np.array([0.4, 1.2, 1.8, 0.3])
    assert set(problem.metrics(logits, labels)) == set(problem.metric_directions)
    assert problem.metric_directions[problem.best_metric[0]] == problem.best_metric[1]


def test_multiple_choice_scores_have_a_direction():
    problem = get_kind("multiple_choice")
    assert set(problem.metrics(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]))) == set(problem.metric_directions)


def test_early_stopping_refuses_save_strategy_no_in_one_line(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"^--early_stopping_patience .* drop --save_strategy no\.$"):
        DHRDTrainingArguments(output_dir=str(tmp_path), early_stopping_patience=2, save_strategy="no", report_to=[])
    write_rows(tmp_path / "rows.jsonl", 4, ("wet", "dry"))
    code = main(["train", "--train_file", str(tmp_path / "rows.jsonl"), "--output_dir", str(tmp_path / "run"),
                 "--early_stopping_patience", "2", "--save_strategy", "no"])  # fmt: skip
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert code != 0 and line.endswith("drop --save_strategy no."), line


def _named_eval_sets(multi_label: bool = False) -> dict[str, Dataset]:
    sets = {"near": Dataset.from_list(_rows(6, 5)), "far": Dataset.from_list(_rows(5, 7))}
    if multi_label:  # the label's class as a multi-hot row
        return {
            name: data.map(lambda row: {"label": [float(row["label"] == k) for k in range(3)]})
            for name, data in sets.items()
        }
    return sets


def test_a_dict_eval_set_is_evaluated_by_name_and_whole(tmp_path):
    args = DHRDTrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True, disable_tqdm=True)
    trainer = DHRDTrainer(
        model=tiny_dhrd("qwen2", num_labels=3), args=args, eval_dataset=_named_eval_sets(),
        processing_class=make_tokenizer(),
    )  # fmt: skip
    one = trainer.evaluate(eval_dataset="far")  # transformers' string naming one of the dict's sets
    every = trainer.evaluate()
    assert one["eval_macro_f1"] == pytest.approx(every["eval_far_macro_f1"])
    assert {"eval_near_loss", "eval_far_loss"} <= set(every)
    given = trainer.evaluate(eval_dataset={"other": Dataset.from_list(_rows(3, 2))})  # raw sets, prepared one by one
    assert "eval_other_macro_f1" in given


def test_early_stopping_on_a_dict_eval_set_follows_the_named_set(tmp_path):
    args = DHRDTrainingArguments(
        output_dir=str(tmp_path / "run"), max_steps=6, per_device_train_batch_size=4, learning_rate=0.5, optim="sgd",
        eval_strategy="steps", eval_steps=1, early_stopping_patience=2, metric_for_best_model="far_accuracy",
        report_to=[], use_cpu=True, seed=0, disable_tqdm=True,
    )  # fmt: skip
    trainer = DHRDTrainer(
        model=tiny_dhrd("qwen2", num_labels=3), args=args, train_dataset=Dataset.from_list(_rows(16, 3)),
        eval_dataset=_named_eval_sets(), processing_class=make_tokenizer(),
    )  # fmt: skip
    assert args.greater_is_better is True
    trainer.train()
    scores = [log["eval_far_accuracy"] for log in trainer.state.log_history if "eval_far_accuracy" in log]
    assert trainer.state.best_metric == max(scores)


@pytest.mark.parametrize(
    ("flags", "refusal"),
    [
        ({"early_stopping_patience": 2}, r"several validation sets .* eval_near_macro_f1"),
        ({"early_stopping_patience": 2, "metric_for_best_model": "macro_f1"}, r"eval_far_accuracy"),
        ({"tune_thresholds": True}, r"--tune_thresholds tunes on the validation rows: give one eval_dataset"),
    ],
)
def test_a_dict_eval_set_without_a_named_set_is_refused_in_one_line(tmp_path, flags, refusal):
    multi_label = "tune_thresholds" in flags
    problem = {"problem_type": "multi_label_classification"} if multi_label else {}
    args = DHRDTrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True, **flags)
    with pytest.raises(ValueError, match=refusal) as error:
        DHRDTrainer(
            model=tiny_dhrd("qwen2", num_labels=3, **problem), args=args, eval_dataset=_named_eval_sets(multi_label),
            processing_class=make_tokenizer(),
        )  # fmt: skip
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "flags, config",
    [
        (["--early_stopping_patience", "2"], {"early_stopping_patience": 2}),
        (["--early-stopping-patience=2"], {"early_stopping_patience": 2}),
        (["--load_best_model_at_end", "true", "--eval_strategy", "steps"],
         {"load_best_model_at_end": True, "eval_strategy": "steps"}),
        (["--lr_scheduler_type", "reduce_lr_on_plateau", "--eval_strategy", "steps"],
         {"lr_scheduler_type": "reduce_lr_on_plateau", "eval_strategy": "steps"}),
        (["--lr_scheduler_type", "greedy", "--eval_strategy", "steps"],
         {"lr_scheduler_type": "greedy", "eval_strategy": "steps"}),
    ],
)  # fmt: skip
def test_the_demo_refuses_choosing_on_its_held_out_rows_in_one_line(flags, config, capsys, tmp_path):
    """The demo scores held-out rows at a fixed step count: early stopping, the best checkpoint or a scheduler that
    reads the evaluations would choose on them (and its default `save_strategy="no"` once produced a refusal that
    named a flag the user never gave). Given as flags or in a config file alike."""
    import yaml

    from trainer.cli import main

    assert main(["demo", *flags]) != 0
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "fixed step count" in line and "dhrd train --validation_file" in line and "save_strategy" not in line
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump({**config, "max_steps": 1}))
    assert main(["demo", str(path)]) != 0
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "fixed step count" in line and "save_strategy" not in line, line


@pytest.mark.parametrize("flags", [["--load_best_model_at_end", "false"], ["--load-best-model-at-end=False"]])
def test_the_demo_takes_a_best_checkpoint_flag_that_is_off(flags, capsys):
    """Saying the best checkpoint is off chooses nothing: the demo's refusal reads the value, not only the name (here
    the run goes on to the next check, the input scope's, which stops it before anything trains)."""
    from cli_helpers import refusal_in_process

    line = refusal_in_process(capsys, "demo", *flags, "--lm_loss_scope", "input")
    assert "dhrd compare --arms input_lm,dhrd" in line, line
