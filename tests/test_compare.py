"""`dhrd compare` end to end on a tiny random backbone: four arms × two seeds, the paired differences recomputed from
the per-run records, the verdict lines, the teacher's bill, and a rerun after a kill that trains only what did not
finish (and refuses another job's folder)."""

import json
import random

import numpy as np
import pytest
from cli_helpers import dhrd_in_process

from trainer.cli import compare, main
from trainer.kinds.paired import paired_difference
from trainer.kinds.registry import SINGLE_LABEL

WORDS = "sun rain wind snow cloud storm fog hail frost heat".split()
ARMS = ("pooled", "input_lm", "shuffled", "dhrd")


def _write(path, rows: int, seed: int) -> None:
    rng = random.Random(seed)
    lines = []
    for _ in range(rows):
        words = rng.choices(WORDS, k=rng.randint(2, 6))
        label = "wet" if {"rain", "snow", "hail"} & set(words) else "dry"
        lines.append({"text": " ".join(words), "label": label, "rationale": f"it mentions {words[0]}"})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


@pytest.fixture
def job(tmp_path, tiny_backbone_dir) -> list[str]:
    (tmp_path / "rationales").mkdir()
    _write(tmp_path / "rationales" / "rationales.jsonl", 16, 0)
    _write(tmp_path / "valid.jsonl", 10, 1)
    # what `dhrd rationales` writes beside its output, for a job finished in two runs: the job's bill is read back,
    # not its last run's (tests/test_teacher_bill.py writes one for real and reads it as compare does)
    summary = {"prompt_tokens": 1500, "completion_tokens": 300, "tokens_estimated": False, "job_prompt_tokens": 4000,
               "job_completion_tokens": 1000, "job_tokens_estimated": False}  # fmt: skip
    (tmp_path / "rationales" / "summary.json").write_text(json.dumps(summary))
    return [
        "compare", "--model_name_or_path", str(tiny_backbone_dir),
        "--train_file", str(tmp_path / "rationales" / "rationales.jsonl"),
        "--validation_file", str(tmp_path / "valid.jsonl"), "--output_dir", str(tmp_path / "cmp"), "--seeds", "0,1",
        "--max_steps", "4", "--learning_rate", "1e-3", "--per_device_train_batch_size", "4", "--report_to", "none",
        "--save_strategy", "no",
        "--max_length", "96", "--max_input_length", "24", "--bootstrap_draws", "200", "--disable_tqdm", "true",
        "--input_price", "500", "--output_price", "1000",
    ]  # fmt: skip


def test_help_lists_the_arms_and_the_seeds(capsys):
    assert main(["compare", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--arms" in out and "--seeds" in out and "--keep_models" in out


def test_compare_end_to_end_resumes_after_a_kill_and_refuses_another_job(job, tmp_path, capsys, monkeypatch):
    trained = []
    real_run = compare._one_run

    def one_run(arm, seed, *rest):
        if len(trained) == 3 and not monkeypatch_state["resumed"]:
            raise KeyboardInterrupt  # killed between runs: three records are on disk
        trained.append((arm.key, seed))
        return real_run(arm, seed, *rest)

    monkeypatch_state = {"resumed": False}
    monkeypatch.setattr(compare, "_one_run", one_run)
    assert main(job) == 130
    assert len(trained) == 3
    monkeypatch_state["resumed"] = True
    out = dhrd_in_process(capsys, *job)
    assert len(trained) == 8 and len(set(trained)) == 8  # the rerun trained the five missing runs only

    report = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert list(report["arms"]) == list(ARMS) and report["metric"] == "accuracy" and report["rows_scored"] == 10
    records = {}
    for path in (tmp_path / "cmp" / "runs").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            records[record["id"]] = record
    assert sorted(records) == sorted(f"{arm}-seed{seed}" for arm in ARMS for seed in (0, 1))
    assert len({tuple(record["predictions"]) for record in records.values()}) > 1  # the arms train differently
    gold = np.asarray(
        [json.loads(line)["label"] == "wet" for line in (tmp_path / "valid.jsonl").read_text().splitlines()]
    )
    labels = gold.astype(int)  # the data's labels sorted: dry 0, wet 1
    for arm in ARMS:
        runs = report["arms"][arm]["metrics"]["accuracy"]["runs"]
        recomputed = [float(np.mean(np.asarray(records[f"{arm}-seed{s}"]["predictions"]) == labels)) for s in (0, 1)]
        assert runs == pytest.approx(recomputed)
    questions = {(d["first"], d["second"]): d for d in report["differences"]}
    assert set(questions) == {("dhrd", "pooled"), ("dhrd", "shuffled"), ("dhrd", "input_lm")}
    for (first, second), difference in questions.items():
        per_seed = [
            100 * (a - b)
            for a, b in zip(report["arms"][first]["metrics"]["accuracy"]["runs"],
                            report["arms"][second]["metrics"]["accuracy"]["runs"])
        ]  # fmt: skip
        assert difference["per_seed"] == pytest.approx(per_seed, abs=1e-3)
        assert difference["mean"] == pytest.approx(np.mean(per_seed), abs=1e-3)
        assert difference["low"] <= difference["high"] and difference["draws"] == 200
        assert (
            difference["verdict"] in out
            and ("within the spread" in difference["verdict"]) != (difference["beyond_the_spread"])
        )
    assert "The teacher's bill: 5,000 tokens (3.00 at the prices given) for" in out
    assert (tmp_path / "cmp" / "compare.md").read_text() in out
    # only metrics and predictions are kept: no model, not even an empty folder per run
    assert not [path for path in (tmp_path / "cmp" / "runs").iterdir() if path.is_dir()]

    # another job in the same folder: refused in one line, nothing trained
    assert main([*job, "--learning_rate", "0.5"]) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "learning_rate" in line and len(trained) == 8


def test_the_bootstrap_interval_is_paired_and_covers_seeds_and_rows():
    labels = np.array([0, 1] * 50)
    better = [labels.copy(), labels.copy()]
    better[0][:5] = 1 - better[0][:5]  # 95% right
    worse = [np.where(np.arange(100) < 30, 1 - labels, labels) for _ in range(2)]  # 70% right
    difference = paired_difference(SINGLE_LABEL, "a", "b", {"a": better, "b": worse}, labels, 2, "accuracy", 500)
    assert difference.per_seed == pytest.approx([25.0, 30.0])
    assert difference.seeds_ahead == 2 and difference.beyond_the_spread and 0 < difference.low < 25 < difference.high
    assert "beyond the spread: a real gain" in difference.verdict("a over b")
    same = paired_difference(SINGLE_LABEL, "a", "b", {"a": worse, "b": worse}, labels, 2, "accuracy", 200)
    assert (same.mean, same.low, same.high, same.beyond_the_spread) == (0.0, 0.0, 0.0, False)


@pytest.mark.parametrize(
    "extra, environment, message",
    [
        (["--tune_thresholds"], {}, "score the test split (--split test"),
        (
            ["--early_stopping_patience", "1", "--eval_strategy", "steps", "--save_strategy", "steps"],
            {},
            "score the test split (--split test",
        ),
        (
            ["--load_best_model_at_end", "true", "--eval_strategy", "steps", "--save_strategy", "steps"],
            {},
            "score the test split (--split test",
        ),
        (["--lr_scheduler_type", "reduce_lr_on_plateau", "--eval_strategy", "steps"], {}, "score the test split"),
        (["--lr_scheduler_type", "greedy", "--eval_strategy", "steps"], {}, "score the test split"),
        ([], {"WORLD_SIZE": "2"}, "launch it without torchrun"),
        # the arms set the LM weight and scope themselves: flags that would make them one another are refused
        (["--lm_loss_scope", "input"], {}, "the dhrd and shuffled arms would be the input_lm arm"),
        (["--lm_weight", "0"], {}, "the dhrd, input_lm and shuffled arms would be the pooled arm"),
        (["--arms", "dhrd,pooled", "--lm_weight", "0"], {}, "the dhrd arm would be the pooled arm"),
        (["--arms", "input_lm,pooled", "--lm_weight", "0"], {}, "the input_lm arm would be the pooled arm"),
        (["--resume_from_checkpoint", "somewhere"], {}, "rerun the same command: the finished runs are kept"),
        # every run scores every row, in order: the paired differences compare the arms row by row
        (["--dataloader_drop_last", "true"], {}, "--dataloader_drop_last would drop scored rows"),
        (["--dataloader_in_order", "false"], {}, "--dataloader_in_order false would"),
        (["--prediction_loss_only", "true"], {}, "--prediction_loss_only would keep no predictions"),
        (["--eval_do_concat_batches", "false"], {}, "--eval_do_concat_batches false would"),
        (["--arms", "dhrd,nope"], {}, "unknown ['nope']; choose from pooled, input_lm, shuffled, dhrd"),
        (["--seeds", "a,b"], {}, "--seeds 'a,b': give integers"),
        (["--output_price", "-1"], {}, "--input_price and --output_price must be >= 0"),
    ],
)
def test_refusals_are_one_line_before_anything_trains(job, tmp_path, capsys, monkeypatch, extra, environment, message):
    from cli_helpers import refusal_in_process

    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    line = refusal_in_process(capsys, *job, *extra)
    assert message in line and not (tmp_path / "cmp" / "runs").exists(), line


def test_a_rerun_with_another_lm_weight_is_another_job(job, tmp_path, capsys):
    """The dhrd and shuffled arms train with the --lm_weight given: a rerun with another is refused, not merged."""
    from cli_helpers import refusal_in_process

    dhrd_in_process(capsys, *job, "--arms", "dhrd", "--seeds", "0", "--lm_weight", "1")
    line = refusal_in_process(capsys, *job, "--arms", "dhrd", "--seeds", "0,1", "--lm_weight", "0.3")
    assert "lm_weight" in line and "holds the results of another job" in line, line


def test_regression_differences_keep_their_digits_and_direction():
    from trainer.kinds.registry import REGRESSION

    labels = np.linspace(0, 1, 40)
    close = [labels + 0.01, labels + 0.012]
    far = [labels + 0.1, labels + 0.11]
    difference = paired_difference(REGRESSION, "a", "b", {"a": close, "b": far}, labels, 1, "mse", 200)
    assert difference.mean > 0 and difference.beyond_the_spread  # lower MSE: a positive gain
    line = difference.verdict("a over b")
    # per seed 0.1² − 0.01² and 0.11² − 0.012²: +0.0109 on average, not "+0.0"
    assert (
        difference.per_seed == pytest.approx([0.0099, 0.011956])
        and "+0.0109 ± 0.0015 of mse (positive: better)" in line
    )


def _kind_rows(kind: str, rows: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    lines = []
    for i in range(rows):
        words = rng.choices(WORDS, k=rng.randint(2, 6))
        line = {"id": f"r{i}", "rationale": f"it mentions {words[0]}"}
        if kind == "multi_label":
            line.update(text=" ".join(words), label=sorted({"wet", "cold"} & {*map(WET_OR_COLD.get, words)} - {None}))
        elif kind == "regression":
            line.update(text=" ".join(words), label=float(len(words)))
        elif kind == "ordinal_regression":
            line.update(text=" ".join(words), label=["short", "medium", "long"][min(len(words) // 2 - 1, 2)])
        else:
            choices = rng.sample(WORDS, 3)
            line.update(question=" ".join(words), choices=choices, answer=rng.randrange(3))
        lines.append(line)
    return lines


WET_OR_COLD = {"rain": "wet", "snow": "cold", "hail": "wet", "frost": "cold"}
KIND_FLAGS = {
    "multi_label": ("--problem_type", "multi_label_classification", "--label_names", "cold,wet"),
    "regression": ("--problem_type", "regression"),
    "ordinal_regression": ("--problem_type", "ordinal_regression", "--label_names", "short,medium,long"),
    "multiple_choice": ("--text_column", "question", "--options_column", "choices", "--label_column", "answer"),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind, metric", [("multi_label", "micro_f1"), ("regression", "mse"),
                                          ("ordinal_regression", "mae"), ("multiple_choice", "accuracy")])  # fmt: skip
def test_compare_runs_every_problem_kind_end_to_end(kind, metric, tmp_path, tiny_backbone_dir, capsys):
    """Multi-label, regression and multiple choice (scored per option) through the same compare: the kind's metric
    per run, recomputed from the stored predictions, and the paired difference of the two arms."""
    for name, rows, seed in (("train", 12, 0), ("valid", 8, 1)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _kind_rows(kind, rows, seed)))
    out = dhrd_in_process(
        capsys, "compare", "--model_name_or_path", str(tiny_backbone_dir), "--id_column", "id", *KIND_FLAGS[kind],
        "--train_file", str(tmp_path / "train.jsonl"), "--validation_file", str(tmp_path / "valid.jsonl"),
        "--output_dir", str(tmp_path / "cmp"), "--arms", "pooled,dhrd", "--seeds", "0", "--max_steps", "2",
        "--per_device_train_batch_size", "4", "--report_to", "none", "--save_strategy", "no", "--max_length", "96",
        "--max_input_length", "24", "--bootstrap_draws", "50", "--disable_tqdm", "true",
    )  # fmt: skip
    report = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert report["metric"] == metric and report["rows_scored"] == 8 and list(report["arms"]) == ["pooled", "dhrd"]
    (difference,) = report["differences"]
    runs = {arm: report["arms"][arm]["metrics"][metric]["runs"][0] for arm in ("pooled", "dhrd")}
    sign = 1 if report["greater_is_better"] else -1
    scale = 100 if metric not in ("mse", "mae") else 1
    assert difference["per_seed"] == pytest.approx([sign * scale * (runs["dhrd"] - runs["pooled"])], abs=1e-3)
    assert difference["verdict"] in out
    for path in (tmp_path / "cmp" / "runs").glob("*.jsonl"):
        assert all(len(json.loads(line)["predictions"]) == 8 for line in path.read_text().splitlines())


def test_report_only_reports_the_finished_seeds_and_trains_nothing(job, tmp_path, capsys):
    """Where a long compare stands, from another shell while it runs: the seeds whose every arm finished, nothing
    trained, nothing written to the runs."""
    from cli_helpers import refusal_in_process

    line = refusal_in_process(capsys, *job, "--arms", "pooled,dhrd", "--report_only")
    assert "no seed of [0, 1] has all its arms finished" in line and "(0 of 4 runs)" in line, line
    dhrd_in_process(capsys, *job, "--arms", "pooled,dhrd", "--seeds", "0")
    full = (tmp_path / "cmp" / "compare.json").read_text()
    shards = {path: path.read_text() for path in (tmp_path / "cmp" / "runs").iterdir()}
    out = dhrd_in_process(capsys, *job, "--arms", "pooled,dhrd", "--report_only")  # seeds 0,1 asked
    assert "== compare" not in out and "So far (`--report_only`)" in out and "(2 of 4 runs finished)" in out, out
    assert {path: path.read_text() for path in (tmp_path / "cmp" / "runs").iterdir()} == shards
    # beside the compare's own report, never over it
    assert (tmp_path / "cmp" / "compare.json").read_text() == full
    report = json.loads((tmp_path / "cmp" / "compare_so_far.json").read_text())
    assert report["seeds"] == [0] and len(report["arms"]["dhrd"]["metrics"]["accuracy"]["runs"]) == 1
    assert report["so_far"] == {"seeds_asked": [0, 1], "runs_finished": 2, "runs_asked": 4}
    assert "So far" in (tmp_path / "cmp" / "compare_so_far.md").read_text()
    line = refusal_in_process(capsys, *job, "--arms", "pooled,dhrd", "--report_only", "--overwrite")
    assert "--report_only reads the finished runs" in line, line
    # another job's settings: refused without the advice to start over (which would remove the runs)
    line = refusal_in_process(capsys, *job, "--arms", "pooled,dhrd", "--report_only", "--lm_weight", "0.3")
    assert "holds the results of another job" in line and "--overwrite" not in line, line


def test_scored_options_of_another_count_are_refused_before_anything_trains(tmp_path, tiny_backbone_dir, capsys):
    """Each run scores the split in the training batches' shape (one option count): a scored row with another count
    is refused up front, not after the first arm has trained (and again on every rerun)."""
    from cli_helpers import refusal_in_process

    rows = _kind_rows("multiple_choice", 8, 1)
    rows[5]["choices"] = [*rows[5]["choices"], "fog"]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _kind_rows("multiple_choice", 8, 0)))
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    line = refusal_in_process(
        capsys, "compare", "--model_name_or_path", str(tiny_backbone_dir), *KIND_FLAGS["multiple_choice"],
        "--train_file", str(tmp_path / "train.jsonl"), "--test_file", str(tmp_path / "test.jsonl"), "--split", "test",
        "--output_dir", str(tmp_path / "cmp"), "--arms", "pooled", "--seeds", "0", "--report_to", "none",
    )  # fmt: skip
    assert "test.jsonl row 5: 4 options where row 0 has 3" in line, line
    assert not (tmp_path / "cmp" / "runs").exists()


def test_a_flag_added_since_at_its_default_resumes_an_older_versions_compare(job, tmp_path, capsys):
    """A compare folder written before a flag existed (its manifest does not name it) resumes when the flag is at
    its default, which is what the older version did; the flag set otherwise is another job."""
    from cli_helpers import refusal_in_process

    dhrd_in_process(capsys, *job, "--arms", "pooled", "--seeds", "0")
    path = tmp_path / "cmp" / "runs" / "manifest.json"
    older = json.loads(path.read_text())
    del older["training"]["padding_free"], older["model"]["pooling"]  # flags this project added later
    del older["row_caps"]["max_predict_samples"], older["labels"], older["backbone"]
    path.write_text(json.dumps(older))
    out = dhrd_in_process(capsys, *job, "--arms", "pooled", "--seeds", "0")
    assert "== compare" not in out  # nothing trained again: the older run's record is this job's
    report = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert len(report["arms"]["pooled"]["metrics"]["accuracy"]["runs"]) == 1
    line = refusal_in_process(capsys, *job, "--arms", "pooled", "--seeds", "0", "--padding_free")
    assert "padding_free: was false, now true" in line, line  # the older version ran without it


def test_max_predict_samples_caps_the_scored_test_rows(job, tmp_path, capsys):
    """A quick compare on the first N test rows: every run scores (and keeps predictions for) those rows only."""
    test_rows = ["--test_file", str(tmp_path / "valid.jsonl"), "--split", "test", "--max_predict_samples", "5"]
    dhrd_in_process(capsys, *job, *test_rows, "--arms", "pooled", "--seeds", "0", "--max_eval_samples", "3")
    (record,) = [json.loads(line) for path in (tmp_path / "cmp" / "runs").glob("*.jsonl") for line in open(path)]
    assert len(record["predictions"]) == 5
    manifest = json.loads((tmp_path / "cmp" / "runs" / "manifest.json").read_text())
    # the caps of the splits the runs read; nothing reads the validation rows here, so their cap is not the job's
    assert manifest["row_caps"] == {"max_train_samples": None, "max_eval_samples": None, "max_predict_samples": 5}


def test_runs_do_not_prepare_validation_rows_that_nothing_reads(job, tmp_path, capsys, caplog):
    """Each run scores the --split itself: without evaluations during training, the description's validation rows
    are not tokenised for the Trainer (on e-SNLI, 9,842 rows a run)."""
    import logging

    with caplog.at_level(logging.INFO):
        dhrd_in_process(capsys, *job, "--arms", "pooled", "--seeds", "0")
    prepared = [record.getMessage() for record in caplog.records if record.getMessage().startswith("Prepared ")]
    assert prepared and not [line for line in prepared if line.startswith("Prepared eval")], prepared


def test_a_rerun_with_other_label_names_or_another_backbone_is_another_job(job, tmp_path, capsys, tiny_backbone_dir):
    """What decides a record's label ids and weights is the job's identity even when it is not the scored split or a
    flag: a test file (unread with --split validation) that adds a label name renumbers the labels, and a backbone
    folder retrained in place is another backbone under the same path."""
    import shutil

    from cli_helpers import refusal_in_process

    dhrd_in_process(capsys, *job, "--arms", "pooled", "--seeds", "0")
    other = tmp_path / "test.jsonl"
    other.write_text(json.dumps({"text": "sun", "label": "arid", "rationale": "dry"}) + "\n")
    line = refusal_in_process(capsys, *job, "--arms", "pooled", "--seeds", "0", "--test_file", str(other))
    assert "labels" in line and "holds the results of another job" in line, line

    backbone = tmp_path / "retrained"
    shutil.copytree(tiny_backbone_dir, backbone)
    moved = [arg if arg != str(tiny_backbone_dir) else str(backbone) for arg in job]
    dhrd_in_process(capsys, *moved, "--output_dir", str(tmp_path / "cmp2"), "--arms", "pooled", "--seeds", "0")
    config = json.loads((backbone / "config.json").read_text())
    (backbone / "config.json").write_text(json.dumps({**config, "initializer_range": 0.5}))  # retrained in place
    other_job = [*moved, "--output_dir", str(tmp_path / "cmp2"), "--arms", "pooled", "--seeds", "0"]
    line = refusal_in_process(capsys, *other_job)
    assert "backbone" in line, line


def test_overwrite_removes_the_earlier_jobs_kept_exports(job, tmp_path, capsys):
    """--overwrite starts over: the exports an earlier job kept (--keep_models) go with its records, so nothing in
    the folder passes for the new job's models."""
    dhrd_in_process(capsys, *job, "--arms", "pooled", "--seeds", "0", "--keep_models")
    export = tmp_path / "cmp" / "runs" / "pooled-seed0" / "export"
    assert (export / "config.json").is_file()
    dhrd_in_process(capsys, *job, "--arms", "pooled", "--seeds", "1", "--learning_rate", "0.01", "--overwrite")
    assert not export.parent.exists()
    assert [json.loads(line)["id"] for line in open(next((tmp_path / "cmp" / "runs").glob("*.jsonl")))] == [
        "pooled-seed1"
    ]


@pytest.mark.parametrize(
    "kind_flags",
    [
        # single-label, LoRA, balanced class weights, length-grouped batches, the test split
        ("--lora_r", "4", "--class_weights", "balanced", "--train_sampling_strategy", "group_by_length"),
        # multi-label with thresholds tuned on the validation rows (so the test split is scored)
        ("--problem_type", "multi_label_classification", "--label_names", "cold,wet", "--tune_thresholds",
         "--eval_strategy", "no"),
    ],
    ids=["lora_class_weights_group_by_length", "multi_label_tuned_thresholds"],
)  # fmt: skip
def test_a_kept_model_predicts_what_its_record_says(kind_flags, tmp_path, tiny_backbone_dir, capsys):
    """The flags users combine, through compare and back out: each run's kept export, run by `dhrd predict` on the
    scored rows, gives the predictions its record holds, row by row (LoRA merged into the export, class weights,
    tuned thresholds in its config, rows scored in input order whatever the training sampler)."""
    kind = "multi_label" if "multi_label_classification" in kind_flags else "single_label"
    for name, rows, seed in (("train", 16, 0), ("valid", 8, 1), ("test", 9, 2)):
        if kind == "multi_label":
            (tmp_path / f"{name}.jsonl").write_text(
                "".join(json.dumps(r) + "\n" for r in _kind_rows(kind, rows, seed))
            )
        else:
            _write(tmp_path / f"{name}.jsonl", rows, seed)
    dhrd_in_process(
        capsys, "compare", "--model_name_or_path", str(tiny_backbone_dir), *kind_flags,
        "--train_file", str(tmp_path / "train.jsonl"), "--validation_file", str(tmp_path / "valid.jsonl"),
        "--test_file", str(tmp_path / "test.jsonl"), "--split", "test", "--output_dir", str(tmp_path / "cmp"),
        "--arms", "pooled,dhrd", "--seeds", "0", "--max_steps", "3", "--learning_rate", "1e-3",
        "--per_device_train_batch_size", "4", "--report_to", "none", "--save_strategy", "no", "--max_length", "96",
        "--max_input_length", "24", "--bootstrap_draws", "50", "--disable_tqdm", "true", "--keep_models",
    )  # fmt: skip
    lines = [line for path in (tmp_path / "cmp" / "runs").glob("*.jsonl") for line in open(path)]
    records = {record["id"]: record for record in map(json.loads, lines)}
    assert sorted(records) == ["dhrd-seed0", "pooled-seed0"]
    for run_id, record in records.items():
        export = tmp_path / "cmp" / "runs" / run_id / "export"
        out = tmp_path / f"{run_id}.jsonl"
        dhrd_in_process(capsys, "predict", "--model", str(export), "--test_file", str(tmp_path / "test.jsonl"),
                        "--output_file", str(out), "--text_column", "text")  # fmt: skip
        predicted = [json.loads(line) for line in out.read_text().splitlines()]
        config = json.loads((export / "config.json").read_text())
        label2id = {name: int(index) for index, name in config["id2label"].items()}
        if kind == "multi_label":
            assert config.get("label_thresholds")  # tuned on the validation rows, decided with
            as_ids = [[int(name in row["labels"]) for name in sorted(label2id, key=label2id.get)] for row in predicted]
        else:
            as_ids = [label2id[row["label"]] for row in predicted]
        assert as_ids == record["predictions"], run_id
