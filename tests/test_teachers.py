"""Teacher rationales with the embedded SmolLM2 as a local teacher: prompts, filters, resumability."""

import json

import pytest
from conftest import DATA_DIR, requires_data

from trainer.tasks import get_task
from trainer.teachers import (
    SENTINEL,
    LocalTeacher,
    answer_text,
    build_messages,
    clean_rationale,
    generate_rationales,
    load_results,
    template_for,
)


@pytest.mark.parametrize(
    "text, label, finished, expected",
    [
        ("Because water flows from a tap. [END]", "Option 2", False, ("Because water flows from a tap.", "kept")),
        ("   ", "yes", True, ("", "empty")),
        ("[END] trailing", "yes", True, ("", "empty")),
        ("Because it keeps going and going", "yes", False, ("Because it keeps going and going", "missing_sentinel")),
        ("It ended by itself, no sentinel.", "yes", True, ("It ended by itself, no sentinel.", "kept")),
        ("So Option 2 is right. [END]", "Option 2", False, ("So Option 2 is right.", "label_restated")),
        ("Clearly the answer is yes. [END]", "yes", False, ("Clearly the answer is yes.", "label_restated")),
        ("There is no water here. [END]", "no", False, ("There is no water here.", "kept")),  # 'no' as a word is fine
        ("word " * 200 + "[END]", "yes", False, (("word " * 200).strip(), "too_long")),
    ],
)
def test_rationale_filters(text, label, finished, expected):
    assert clean_rationale(text, label, SENTINEL, max_words=150, finished=finished) == expected


NLI = ("entailment", "neutral", "contradiction")


@pytest.mark.parametrize(
    ("text", "gold", "status"),
    [
        ("A man walks. So the premise entails the hypothesis. [END]", "neutral", "label_contradicted"),
        ("The dog is asleep, which contradicts the hypothesis. [END]", "entailment", "label_contradicted"),
        ("Walking does not entail running fast. [END]", "neutral", "kept"),  # negated: names nothing
        ("One may think it contradicts it. Yet the details are simply missing. [END]", "neutral", "kept"),  # not last
        ("It entails the hypothesis rather than contradicting it. [END]", "entailment", "kept"),  # gold named too
        ("The two sentences describe different people. [END]", "contradiction", "kept"),
    ],
)
def test_a_conclusion_for_another_label_is_filtered(text, gold, status):
    others = [name for name in NLI if name != gold]
    assert clean_rationale(text, gold, SENTINEL, max_words=150, finished=False, other_labels=others)[1] == status


def test_prompts_are_label_aware_and_overridable():
    requires_data("superglue", "COPA")
    task = get_task("copa")
    row = task.load("val", DATA_DIR)[0]  # faucet -> "Water flowed from the spout." (Option 2)
    assert answer_text(task, row) == "Water flowed from the spout."
    messages = build_messages(template_for("copa"), task, row)
    assert 'The more plausible option is: "Water flowed from the spout."' in messages[-1]["content"]
    assert SENTINEL in messages[-1]["content"]
    rte = get_task("rte")
    custom = "Input: {input}\nGold: {answer}\nWhy? Finish with {sentinel}"
    rte_row = rte.load("val", DATA_DIR)[0]
    assert build_messages(template_for("rte", custom), rte, rte_row)[-1]["content"].startswith("Input: Premise:")
    with pytest.raises(ValueError, match="must contain {answer}"):
        template_for("rte", "no answer field {input} {sentinel}")


def test_the_gold_option_is_named_from_the_options_not_from_the_rendered_text():
    """A context may itself contain "Option 2: ..." (or a label name): the teacher is told the gold option's text
    from the row's options, as data."""
    task = get_task("copa")
    row = {
        "text": 'Premise: The sign read "Option 2: closed today".\nQuestion: What was the effect?\n'
        "Option 1: I went in.\nOption 2: I turned back.",
        "label": 1,
        "options": ["I went in.", "I turned back."],
    }
    assert answer_text(task, row) == "I turned back."
    assert (
        'The more plausible option is: "I turned back."'
        in build_messages(template_for("copa"), task, row)[-1]["content"]
    )


def test_a_presets_rows_carry_their_options_to_the_teacher():
    requires_data("superglue", "COPA")
    from trainer.data.description import DatasetArguments
    from trainer.data.labelled import LabelledData

    rows = LabelledData(DatasetArguments(task="copa", data_dir=str(DATA_DIR))).rows("validation", limit=1)
    assert rows["options"][0] == ["The toilet filled with water.", "Water flowed from the spout."]
    assert answer_text(get_task("copa"), rows[0]) == "Water flowed from the spout."


@pytest.mark.slow
@pytest.mark.parametrize("task_name", ["copa", "rte"])
def test_embedded_teacher_produces_rationales_and_resumes_exactly_once(tmp_path, smollm2_path, task_name):
    requires_data("superglue")
    task = get_task(task_name)
    rows = task.load("val", DATA_DIR, limit=4)
    teacher = LocalTeacher(str(smollm2_path), batch_size=4, max_new_tokens=48)
    result, summary = generate_rationales(rows, task, teacher, tmp_path, progress=False)
    assert summary.rows == 4 and summary.generated == 4 and summary.completion_tokens > 0
    assert summary.kept + sum(summary.filtered.values()) == 4
    assert result.column_names[-2:] == ["rationale", "rationale_status"]
    kept = [r for r in result if r["rationale_status"] == "kept"]
    assert all(r["rationale"] and SENTINEL not in r["rationale"] for r in kept)
    filtered = [json.loads(line) for line in (tmp_path / "filtered.jsonl").read_text().splitlines()]
    assert len(filtered) == sum(summary.filtered.values())  # nothing dropped silently

    # a crash mid-write leaves a line without newline: it is ignored and that id alone is generated again
    shard = next(tmp_path.glob("shard-*.jsonl"))
    lines = shard.read_text().splitlines(keepends=True)
    shard.write_text("".join(lines[:3]) + lines[3].rstrip("\n")[:20])
    assert len(load_results(tmp_path)) == 3
    _, rerun = generate_rationales(rows, task, teacher, tmp_path, progress=False)
    assert (rerun.already_done, rerun.generated) == (3, 1)
    assert sorted(load_results(tmp_path)) == sorted(str(i) for i in rows["idx"])


def test_duplicate_ids_are_refused(tmp_path):
    from datasets import Dataset

    rows = Dataset.from_list([{"idx": 1, "text": "a", "label": 0}, {"idx": 1, "text": "b", "label": 1}])
    with pytest.raises(ValueError, match="repeated ids"):
        generate_rationales(rows, get_task("rte"), teacher=None, output_dir=tmp_path, progress=False)


def test_a_rationale_for_the_empty_label_set_is_kept(tmp_path, capsys):
    """A multi-label row without labels is shown to the teacher as "none"; "none of the labels apply" explains the
    row, it does not restate a label (no label is named "none"): such rationales were once all filtered out."""
    from cli_helpers import dhrd_in_process
    from fake_openai import fake_openai

    from trainer.kinds.registry import MULTI_LABEL

    assert MULTI_LABEL.restated_answer([0.0, 0.0], {0: "rain", 1: "wind"}) is None
    assert MULTI_LABEL.restated_answer([1.0, 0.0], {0: "rain", 1: "wind"}) == "rain"
    rows = [{"text": f"row {i}", "label": [["rain"], [], ["rain", "wind"]][i % 3]} for i in range(6)]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "out"
    said = "None of the labels apply: the text is about cooking. [END]"
    with fake_openai(tmp_path / "requests.jsonl", "--rationale", said) as url:
        dhrd_in_process(
            capsys, "rationales", "--train_file", str(tmp_path / "rows.jsonl"), "--rationale_column", "why",
            "--server_url", f"{url}/v1", "--server_model", "teacher", "--output_dir", str(out),
        )  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kept"] == len(rows), summary
