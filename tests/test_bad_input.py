"""Malformed input, as a hostile new user would type it, across every subcommand: each case ends with a non-zero
exit, one line on stderr (after any log lines) that names the file / row / column / flag and the fix, no traceback,
and nothing partial on disk.

The cases run `trainer.cli.main` in this process (the same entry point as the `dhrd` script) so that some fifty of
them take seconds, not minutes; `test_cli.py` and `test_own_data.py` run the command as a subprocess.
"""

import json
import os
from pathlib import Path

import pytest
import torch
from conftest import make_tokenizer, tiny_dhrd, tiny_text_config
from datasets import ClassLabel, Dataset, DatasetDict
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

from trainer.cli import main


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Files and models the cases point at (built once)."""
    root = tmp_path_factory.mktemp("bad-input")
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(tiny_text_config("qwen2")).save_pretrained(root / "backbone")
    make_tokenizer().save_pretrained(root / "backbone")

    def jsonl(name: str, rows: list) -> None:
        (root / name).write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))

    good = [{"text": f"row {i}", "label": ["yes", "no"][i % 2], "rationale": "because"} for i in range(8)]
    jsonl("good.jsonl", good)
    jsonl("bad_json.jsonl", [good[0], good[1], '{"text": "broken", "label":', good[2]])
    jsonl("not_object.jsonl", [good[0], "[1, 2]"])
    jsonl("null_label.jsonl", [good[0], {"text": "x", "label": None}])
    jsonl("mixed_labels.jsonl", [{"text": "a", "label": "yes"}, {"text": "b", "label": 1}])
    jsonl("int7.jsonl", [{"text": "a", "label": 0}, {"text": "b", "label": 1}, {"text": "c", "label": 7}])
    jsonl("float.jsonl", [*({"text": f"t{i}", "label": i % 2} for i in range(6)), {"text": "x", "label": 1.5}])
    jsonl("empty_text.jsonl", [good[0], {"text": "   ", "label": "yes"}])
    jsonl("dup_ids.jsonl", [{**good[0], "uid": "a"}, {**good[1], "uid": "a"}])
    jsonl("with_rationale.jsonl", good)
    jsonl("unlabelled.jsonl", [{"text": "z", "label": "maybe"}, {"text": "w", "label": "yes"}])
    (root / "empty.jsonl").write_text("")
    (root / "header.csv").write_text("text,label\n")
    (root / "latin1.csv").write_bytes("text,label\ncaf\xe9,yes\n".encode("latin-1"))
    (root / "rows.txt").write_text("text\n")
    (root / "a_folder").mkdir()
    (root / "bad.yaml").write_text("lm_weight: [1,\n")
    (root / "wrong_type.yaml").write_text(
        f"train_file: {root / 'good.jsonl'}\noutput_dir: {root / 'o'}\nlm_weight: abc\n"
    )
    (root / "list.yaml").write_text("- a\n- b\n")
    (root / "no_input.txt").write_text("Explain {answer} {sentinel}")
    (root / "taken").mkdir()
    (root / "taken" / "file").write_text("x")
    (root / "exists.jsonl").write_text("{}\n")

    split = lambda n, names: Dataset.from_dict(  # noqa: E731
        {"text": [f"t{i}" for i in range(n)], "label": [i % len(names) for i in range(n)]}
    ).cast_column("label", ClassLabel(names=names))
    DatasetDict(train=split(4, ["a", "b"])).save_to_disk(str(root / "only_train"))
    DatasetDict(train=split(4, ["a", "b"]), validation=split(0, ["a", "b"])).save_to_disk(str(root / "empty_val"))
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table({"text": pa.array([], pa.string()), "label": pa.array([], pa.int64())}), root / "empty.parquet"
    )
    DatasetDict(test=split(3, ["no", "yes", "maybe"])).save_to_disk(str(root / "three_labels"))

    model = tiny_dhrd("qwen2", num_labels=2, id2label={0: "yes", 1: "no"})
    tokenizer = AutoTokenizer.from_pretrained(root / "backbone")
    for name in ("model", "truncated", "no_tokenizer"):
        model.save_pretrained(root / name)
    for name in ("model", "truncated"):
        tokenizer.save_pretrained(root / name)
    weights = root / "truncated" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    native = LlamaForSequenceClassification(
        LlamaConfig(vocab_size=300, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
    )
    native.save_pretrained(root / "native")
    tokenizer.save_pretrained(root / "native")
    return root


def W(name: str) -> str:  # noqa: N802 - a placeholder for a path in the world folder
    return f"{{w}}/{name}"


TRAIN = ["train", "--model_name_or_path", W("backbone"), "--output_dir", W("out"), "--report_to", "none"]
GOOD = ["--train_file", W("good.jsonl")]
PREDICT = ["predict", "--model", W("model"), "--output_file", W("out/p.jsonl")]


def rationales_with_template(template: str) -> list[str]:
    teacher = ["--teacher_model", W("backbone"), "--rationale_column", "t", "--output_dir", W("out")]
    return ["rationales", "--train_file", W("good.jsonl"), "--prompt_template_file", W(template), *teacher]


def predict_good_rows(model: str = "model", output: str = "out/p.jsonl") -> list[str]:
    return ["predict", "--model", W(model), "--output_file", W(output), "--test_file", W("good.jsonl")]


CASES = [
    # data files
    ("no data", [*TRAIN], "No data given: pass --dataset_name"),
    ("missing file", [*TRAIN, "--train_file", W("nope.jsonl")], "No such data file"),
    ("folder as file", [*TRAIN, "--train_file", W("a_folder")], "is a folder; give a data file"),
    ("unsupported format", [*TRAIN, "--train_file", W("rows.txt")], "unsupported format '.txt'"),
    ("empty file", [*TRAIN, "--train_file", W("empty.jsonl")], "empty.jsonl: the file is empty"),
    ("header only", [*TRAIN, "--train_file", W("header.csv")], "header.csv: the file has no rows (only a header)"),
    ("bad json line", [*TRAIN, "--train_file", W("bad_json.jsonl")], "bad_json.jsonl:3: not valid JSON"),
    ("json not object", [*TRAIN, "--train_file", W("not_object.jsonl")], "not_object.jsonl:2: a JSON line must be"),
    ("not utf-8", [*TRAIN, "--train_file", W("latin1.csv")], "latin1.csv:2: not UTF-8"),
    # columns and templates
    ("unknown column", [*TRAIN, *GOOD, "--text_column", "body"], "no column 'body' (--text_column); the columns"),
    ("template field", [*TRAIN, *GOOD, "--input_template", "{text} {nope}"], "field {nope} is not a column"),
    ("positional field", [*TRAIN, *GOOD, "--input_template", "{} {text}"], "every {field} must name a column"),
    ("both text flags", [*TRAIN, *GOOD, "--text_column", "text", "--text_columns", "text"], "not both"),
    ("empty text columns", [*TRAIN, *GOOD, "--text_columns", ","], "--text_columns is empty"),
    ("no label column", [*TRAIN, *GOOD, "--label_column", "gold"], "no label column 'gold' (--label_column)"),
    ("missing id column", [*TRAIN, *GOOD, "--id_column", "uid"], "no column 'uid' (--id_column)"),
    ("duplicate ids", [*TRAIN, "--train_file", W("dup_ids.jsonl"), "--id_column", "uid"], "repeated ids ['a']"),
    ("empty input", [*TRAIN, "--train_file", W("empty_text.jsonl")], "empty_text.jsonl row 1: empty input"),
    ("no rationales", [*TRAIN, "--train_file", W("unlabelled.jsonl")], "no rationale column 'rationale'"),
    # labels
    ("label not a name", [*TRAIN, *GOOD, "--label_names", "yes,maybe"], "row 1: label 'no' is not one of the labels"),
    ("repeated label names", [*TRAIN, *GOOD, "--label_names", "yes,yes"], "--label_names repeats a name"),
    ("int labels not 0..K-1", [*TRAIN, "--train_file", W("int7.jsonl")], "Integer labels [0, 1, 7]"),
    (
        "int outside names",
        [*TRAIN, "--train_file", W("int7.jsonl"), "--label_names", "a,b"],
        "row 2: label 7 is out of range",
    ),
    ("fractional label", [*TRAIN, "--train_file", W("float.jsonl")], "float.jsonl row 6: label 1.5 is neither"),
    ("null label", [*TRAIN, "--train_file", W("null_label.jsonl")], "null_label.jsonl row 1: no label"),
    ("mixed label types", [*TRAIN, "--train_file", W("mixed_labels.jsonl")], "mixed_labels.jsonl"),
    # datasets and splits
    ("task and dataset", [*TRAIN, "--task", "rte", "--dataset_name", W("only_train")], "not both"),
    ("unknown task", [*TRAIN, "--task", "copaa"], "Unknown task 'copaa'"),
    ("empty parquet", [*TRAIN, "--train_file", W("empty.parquet")], "empty.parquet: the file has no rows"),
    (
        "damaged saved dataset",
        [*TRAIN, "--dataset_name", W("empty_val")],
        "empty_val: datasets' load_from_disk cannot",
    ),
    ("missing split", ["evaluate", "--model", W("model"), "--dataset_name", W("only_train")], "No validation split"),
    ("max_train_samples 0", [*TRAIN, *GOOD, "--max_train_samples", "0"], "--max_train_samples must be a positive"),
    # training flags and files
    ("max_steps 0", [*TRAIN, *GOOD, "--max_steps", "0"], "max_steps=0 trains nothing"),
    ("max_steps not a number", [*TRAIN, *GOOD, "--max_steps", "abc"], "--max_steps/--max-steps: invalid int value"),
    ("abbreviated flag", [*TRAIN, *GOOD, "--learning_rat", "1e-4"], "--learning_rat"),
    ("negative learning rate", [*TRAIN, *GOOD, "--learning_rate", "-1"], "--learning_rate must be >= 0, got -1.0"),
    ("batch size 0", [*TRAIN, *GOOD, "--per_device_train_batch_size", "0"], "must be a positive integer, got 0"),
    ("missing backbone folder", [*TRAIN, *GOOD, "--model", W("nope")], "/nope (nor a Hub id like user/name)"),
    ("fails after loading", [*TRAIN, *GOOD, "--lm_weight", "0", "--cls_weight", "0"], "both be 0"),
    ("unknown flag", [*TRAIN, *GOOD, "--frobnicate", "1"], "--frobnicate"),
    ("non-empty output_dir", [*TRAIN[:4], W("taken"), *TRAIN[5:], *GOOD], "taken is not empty; pass --overwrite"),
    ("lm_loss_scope", [*TRAIN, *GOOD, "--lm_loss_scope", "some"], "--lm-loss-scope: invalid choice: 'some'"),
    ("malformed yaml", ["train", W("bad.yaml")], "bad.yaml: not valid YAML"),
    ("wrong type in yaml", ["train", W("wrong_type.yaml")], "--lm_weight/--lm-weight: invalid float value: 'abc'"),
    ("yaml not a mapping", ["train", W("list.yaml")], "list.yaml: the config file must map argument names"),
    # evaluate and predict
    (
        "evaluate limit 0",
        ["evaluate", "--model", W("model"), "--validation_file", W("good.jsonl"), "--limit", "0"],
        "--limit must be a positive integer",
    ),  # fmt: skip
    (
        "evaluate unknown label",
        ["evaluate", "--model", W("model"), "--validation_file", W("unlabelled.jsonl")],
        "unlabelled.jsonl row 0: label 'maybe' is not one of the labels ['yes', 'no']",
    ),  # fmt: skip
    ("predict batch 0", [*predict_good_rows(), "--batch_size", "0"], "--batch_size must be"),
    ("predict limit -1", [*predict_good_rows(), "--limit", "-1"], "--limit must be a positive"),
    ("predict output format", predict_good_rows(output="out/p.csv"), "use a .jsonl or .parquet file name"),
    (
        "predict output exists",
        predict_good_rows(output="exists.jsonl"),
        "exists.jsonl already exists; pass --overwrite",
    ),
    ("predict no model", predict_good_rows("nope"), "No such model folder"),
    ("predict not a model", predict_good_rows("a_folder"), "a_folder is not a model folder (no config.json)"),
    ("truncated weights", predict_good_rows("truncated"), "truncated: the weights (model.safetensors) cannot be read"),
    ("no tokenizer", predict_good_rows("no_tokenizer"), "no_tokenizer: no usable tokenizer"),
    ("labels differ", [*PREDICT, "--dataset_name", W("three_labels")], "The model's labels ['yes', 'no'] differ"),
    # rationales
    (
        "join wrong task",
        ["rationales", "--task", "rte", "--join", "copa_sse", "--output_dir", W("out")],
        "--join copa_sse explains the task(s) ['copa']",
    ),  # fmt: skip
    ("join unknown", ["rationales", *GOOD, "--join", "nope", "--output_dir", W("out")], "Unknown --join 'nope'"),
    (
        "server without model",
        ["rationales", *GOOD, "--server_url", "http://127.0.0.1:9/v1", "--output_dir", W("out")],
        "--server_model is required with --server_url",
    ),  # fmt: skip
    ("rationales batch 0", ["rationales", *GOOD, "--batch_size", "0", "--output_dir", W("out")], "--batch_size must"),
    (
        "rationale column taken",
        ["rationales", "--train_file", W("with_rationale.jsonl"), "--output_dir", W("out")],
        "already has a column 'rationale'; write the teacher's rationales to another one with --rationale_column",
    ),  # fmt: skip
    ("template file missing", rationales_with_template("nope.txt"), "nope.txt: cannot be read"),
    ("template without input", rationales_with_template("no_input.txt"), "must contain {input}"),
    # export
    ("export native model", ["export", "--model", W("native"), "--output_dir", W("out")], "not a DHRD checkpoint"),
    ("export truncated", ["export", "--model", W("truncated"), "--output_dir", W("out")], "cannot be read"),
    ("export over existing", ["export", "--model", W("model"), "--output_dir", W("taken")], "taken already exists"),
]


@pytest.mark.parametrize("case, argv, message", CASES, ids=[case for case, _, _ in CASES])
def test_bad_input_is_one_line_and_leaves_nothing(world, case, argv, message, capsys):
    before = sorted(str(p.relative_to(world)) for p in world.rglob("*"))
    code = main([part.replace("{w}", str(world)) for part in argv])
    stderr = capsys.readouterr().err
    assert code != 0, (case, stderr[-2000:])
    assert "Traceback" not in stderr
    *context, line = stderr.strip().splitlines()
    assert line.startswith(f"dhrd {argv[0]}: error: "), (case, stderr[-2000:])
    # what comes before the error is log lines and progress bars, never more of the error
    assert all(text.startswith(("INFO ", "WARNING ")) or "/s]" in text for text in context), (case, context)
    assert message in line, (case, line)
    after = sorted(str(p.relative_to(world)) for p in world.rglob("*"))
    assert after == before, (case, set(after) ^ set(before))  # nothing written, not even an empty folder


def test_there_are_at_least_forty_cases():
    assert len(CASES) >= 40 and len({case for case, _, _ in CASES}) == len(CASES)


def test_a_refused_teacher_server_is_one_line_after_the_retries(world, capsys):
    from serving import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    argv = ["rationales", "--train_file", str(world / "unlabelled.jsonl"), "--output_dir", str(world / "out")]
    code = main([*argv, "--server_url", url, "--server_model", "m", "--retries", "1", "--limit", "1"])
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1 and line.startswith("dhrd rationales: error: teacher server")
    assert "still failing after 1 retries" in line and "is the server running?" in line
    assert not (world / "out").exists() and not os.path.exists(Path(world) / "out" / ".lock")
