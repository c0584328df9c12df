"""Task adapters and rationale joiners on the real files in ../shared/data (skipped when absent)."""

import pytest
from conftest import DATA_DIR, requires_data
from datasets import Dataset

from trainer.tasks import TASKS, TaskDataError, get_task, wsc_choice_items
from trainer.tasks import rationale_sets as joins

EXPECTED_ROWS = {
    ("boolq", "val"): 3270,
    ("cb", "train"): 250,
    ("cb", "val"): 56,
    ("copa", "train"): 400,
    ("copa", "val"): 100,
    ("multirc", "train"): 27243,
    ("multirc", "val"): 4848,
    ("rte", "train"): 2490,
    ("rte", "val"): 277,
    ("wic", "train"): 5428,
    ("wic", "val"): 638,
    ("wsc", "train"): 554,
    ("wsc", "val"): 104,
    ("commonsense_qa", "train"): 9741,
    ("esnli", "val"): 9842,
    ("copa_sse", "test"): 500,
}


@pytest.mark.parametrize("name, split", sorted(EXPECTED_ROWS))
def test_every_task_loads_formats_and_scores_from_local_files(name, split):
    requires_data("superglue")
    task = get_task(name)
    rows = task.load(split, DATA_DIR)
    assert len(rows) == EXPECTED_ROWS[(name, split)]
    # every task's columns; multiple-choice tasks add their per-option form, WSC its pronoun and candidate
    extra = {
        "copa": {"context", "options"},
        "copa_sse": {"context", "options"},
        "commonsense_qa": {"context", "options"},
        "wsc": {"passage", "pronoun", "pronoun_index", "candidate"},
    }.get(name, set())
    assert set(rows.column_names) == {"idx", "text", "label", "group"} | extra
    assert all(0 <= label < task.num_labels for label in rows["label"])
    assert all(text.strip() for text in rows["text"][:50])
    perfect = task.score(rows["label"], rows["label"], rows["group"])
    assert all(value == 1.0 for value in perfect.values())


def test_formatted_inputs_read_like_the_original_records():
    requires_data("superglue")
    copa = get_task("copa").load("val", DATA_DIR)[0]
    assert copa["text"] == (
        "Premise: The man turned on the faucet.\nQuestion: What was the effect?\n"
        "Option 1: The toilet filled with water.\nOption 2: Water flowed from the spout."
    )
    assert copa["label"] == 1
    cb = get_task("cb").load("val", DATA_DIR)[0]
    assert cb["label"] == get_task("cb").label_names.index("contradiction")
    assert cb["text"].endswith("Hypothesis: Valence was helping")


def test_multirc_scores_f1_over_answers_and_exact_match_per_question():
    task = get_task("multirc")
    labels = [1, 0, 1, 1, 0]
    groups = ["q1", "q1", "q1", "q2", "q2"]
    predictions = [1, 0, 0, 1, 0]  # q1 misses one answer, q2 is all right
    scores = task.score(predictions, labels, groups)
    assert scores["em"] == 0.5
    assert scores["f1a"] == pytest.approx(2 * 2 / (2 + 3))
    assert scores["accuracy"] == pytest.approx(0.8)
    rows = Dataset.from_dict({"text": ["x"] * 5, "label": labels, "group": groups})
    assert task.score_rows(predictions, rows) == scores  # groups read from the split's column
    assert task.score_rows(predictions, rows.remove_columns("group"))["em"] == 0.8  # no groups: every row its own


def test_cb_reports_macro_f1():
    scores = get_task("cb").score([0, 0, 1, 2], [0, 1, 1, 2])
    assert scores["accuracy"] == 0.75
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)


def test_hub_layouts_are_read_too():
    multirc = get_task("multirc")
    hub_record = {
        "paragraph": "P.",
        "question": "Q?",
        "answer": "A",
        "idx": {"paragraph": 3, "question": 1, "answer": 7},
        "label": 1,
    }
    (row,) = multirc.to_rows(hub_record)
    assert row == {
        "idx": "3-1-7",
        "text": "Paragraph: P.\nQuestion: Q?\nCandidate answer: A",
        "label": 1,
        "group": "3-1",
    }
    (wsc,) = get_task("wsc").to_rows(
        {
            "text": "He ran.",
            "span1_text": "Tom",
            "span2_text": "He",
            "span1_index": 5,
            "span2_index": 0,
            "idx": 0,
            "label": 1,
        }
    )
    assert "pronoun 'He' refer to 'Tom'" in wsc["text"]
    (cb,) = get_task("cb").to_rows({"premise": "p", "hypothesis": "h", "label": 2, "idx": 0})
    assert cb["label"] == 2
    choices = {"label": list("ABCDE"), "text": list("vwxyz")}
    (cqa,) = get_task("commonsense_qa").to_rows({"id": "x", "question": "Q?", "answerKey": "B", "choices": choices})
    assert cqa["label"] == 1 and "(b) w" in cqa["text"]


def test_missing_split_or_field_names_the_file_and_field(tmp_path):
    with pytest.raises(KeyError, match="Unknown task 'copaa'"):
        get_task("copaa")
    with pytest.raises(TaskDataError, match=r"COPA/train.jsonl, which does not exist"):
        get_task("copa").load("train", tmp_path)
    (tmp_path / "superglue" / "RTE").mkdir(parents=True)
    (tmp_path / "superglue" / "RTE" / "val.jsonl").write_text('{"premise": "p", "label": "entailment", "idx": 0}\n')
    with pytest.raises(TaskDataError, match=r"val.jsonl:1: record has no field 'hypothesis'"):
        get_task("rte").load("val", tmp_path)
    with pytest.raises(TaskDataError, match="no local split 'test'"):
        get_task("rte").load("test", tmp_path)


def test_copa_sse_joins_every_copa_item_with_its_best_rated_explanation():
    requires_data("rationales", "copa_sse")
    rows = get_task("copa").load("val", DATA_DIR)
    joined, report = joins.join_copa_sse(rows, "val", DATA_DIR / "rationales" / "copa_sse")
    assert (report.rows, report.matched, report.extra["answer_mismatch"]) == (100, 100, 0)
    # hand-checked: COPA val 0 (faucet -> water flowed) is COPA-SSE id 401
    assert (
        joined[0]["rationale"]
        == "Faucet is used for getting water. Water is created by faucet. Turning faucet causes water flow."
    )
    every, report = joins.join_copa_sse(rows, "val", DATA_DIR / "rationales" / "copa_sse", all_explanations=True)
    assert len(every) == 641 and report.matched == 100


def test_winowhy_attaches_valid_human_reasons_to_wsc():
    requires_data("rationales", "winowhy")
    rows = get_task("wsc").load("train", DATA_DIR)
    joined, report = joins.join_winowhy(rows, DATA_DIR / "rationales" / "winowhy")
    assert report.rows == 554 and report.matched == 360
    # hand-checked: "Mark told Pete many lies about himself ... He should have been more skeptical." -> Pete
    row = next(r for r in joined if r["idx"] == 0)
    assert row["label"] == 0 and row["rationale"].startswith("The pronoun 'He' refers to Pete because ")
    val, report = joins.join_winowhy(get_task("wsc").load("val", DATA_DIR), DATA_DIR / "rationales" / "winowhy")
    lemons = next(r for r in val if r["idx"] == 2)
    assert lemons["rationale"] == (
        "The pronoun 'they' refers to lemons because The lemons are more shaped like light bulbs than the trees."
    )


def test_palm_cqa_rationales_parse_and_flag_disagreement():
    requires_data("rationales", "palm_cqa")
    rows = get_task("commonsense_qa").load("train", DATA_DIR)
    joined, report = joins.join_palm_cqa(rows, "train", DATA_DIR / "rationales" / "palm_cqa")
    assert report.matched == 9741 and report.extra["teacher_agrees"] == 7480  # 76.8%, README says ~74%
    assert joined[0]["rationale"] == (
        "The answer must be something that has to do with the above problem. Of the above choices, only math problem "
        "has to do with the above problem."
    )
    assert joined[0]["teacher_agrees"] is True
    _, cos_e = joins.join_cos_e(rows, "train", DATA_DIR / "rationales" / "cos_e_v1.11")
    assert cos_e.matched == 9741


def test_palm_esnli_rationales_and_human_explanations():
    requires_data("rationales", "palm_esnli")
    rows = get_task("esnli").load("val", DATA_DIR, limit=200)
    joined, report = joins.join_palm_esnli(rows, DATA_DIR / "rationales" / "palm_esnli")
    assert report.matched == 200 and 100 < report.extra["teacher_agrees"] < 200
    assert joined[0]["rationale"] == "The to go packages are not necessarily from lunch."
    human, _ = joins.join_palm_esnli(rows, DATA_DIR / "rationales" / "palm_esnli", source="human")
    assert human[0]["rationale"] == "The to go packages may not be from lunch."


def test_registry_holds_the_seven_superglue_tasks_and_the_extras():
    assert {"boolq", "cb", "copa", "multirc", "rte", "wic", "wsc", "commonsense_qa", "esnli"} <= set(TASKS)


def test_multiple_choice_forms_of_copa_commonsense_qa_and_wsc():
    (copa,) = get_task("copa").to_rows(
        {
            "premise": "The man broke his toe.",
            "question": "cause",
            "choice1": "He dropped a hammer.",
            "choice2": "He sang.",
            "label": 0,
            "idx": 3,
        }
    )
    assert copa["context"] == "Premise: The man broke his toe.\nQuestion: What was the cause?"
    assert copa["options"] == ["He dropped a hammer.", "He sang."] and copa["label"] == 0
    assert copa["text"].startswith(copa["context"] + "\nOption 1: ")  # the concatenated form stays
    choices = {"label": list("ABCDE"), "text": list("vwxyz")}
    (cqa,) = get_task("commonsense_qa").to_rows({"id": "x", "question": "Q?", "answerKey": "C", "choices": choices})
    assert cqa["context"] == "Question: Q?" and cqa["options"] == list("vwxyz") and cqa["label"] == 2

    def pair(candidate, label, text="Tom told Bob he won.", pronoun_index=3, idx=0):
        record = {
            "text": text,
            "span1_text": candidate,
            "span2_text": "he",
            "span1_index": 0,
            "span2_index": pronoun_index,
            "idx": idx,
            "label": label,
        }
        return next(iter(get_task("wsc").to_rows(record)))

    rows = Dataset.from_list([pair("Tom", 0), pair("Bob", 1, idx=1), pair("Tom", 1, text="Tom said he left.", idx=2)])
    items, report = wsc_choice_items(rows)
    assert report == {"items": 1, "pronouns with 1 candidates": 1}
    (item,) = items
    assert item["options"] == ["Tom", "Bob"] and item["label"] == 1 and "pronoun 'he'" in item["context"]


def test_wsc_multiple_choice_items_from_the_release():
    requires_data("superglue", "WSC")
    items, report = wsc_choice_items(get_task("wsc").load("train", DATA_DIR))
    assert report["items"] == len(items) == 214
    assert sum(report.values()) - report["items"] == 307 - 214  # every other pronoun is counted by reason


def test_synthetic_multistep_teachers_write_the_totals_or_every_running_total_of_the_same_questions():
    import re

    worked = get_task("synthetic_multistep_worked").load("train", limit=60)
    totals_first = get_task("synthetic_multistep").load("train", limit=60)
    assert worked["text"] == totals_first["text"] and worked["label"] == totals_first["label"]  # same questions
    assert not set(worked["text"]) & set(get_task("synthetic_multistep").load("test", limit=60)["text"])
    for row, short in zip(worked, totals_first):
        finals = []
        for person in re.findall(r"has ((?:\d+ [+-] \d+ = \d+(?:, )?)+) apples", row["rationale"]):
            steps = re.findall(r"(\d+) ([+-]) (\d+) = (\d+)", person)
            assert len(steps) == 4  # four gains or losses each, every partial result written
            for (a, sign, b, result), following in zip(steps, steps[1:] + [None]):
                assert int(result) == (int(a) + int(b) if sign == "+" else int(a) - int(b)) >= 0
                assert following is None or following[0] == result  # each step starts from the last result
            finals.append(int(steps[-1][3]))
        assert len(finals) == 2 and row["label"] == (0 if finals[0] > finals[1] else 1)
        assert re.match(rf"\w+ ends with {finals[0]} apples and \w+ with {finals[1]}: ", short["rationale"])
        story = re.findall(r"starts with (\d+) apples((?:, (?:gets \d+ more|gives away \d+))+)", row["text"])
        for (start, changes), final in zip(story, finals):  # the totals follow from the question's own text
            moves = [
                int(n) if verb == "gets" else -int(n) for verb, n in re.findall(r"(gets|gives away) (\d+)", changes)
            ]
            assert int(start) + sum(moves) == final


def test_synthetic_two_step_rows_are_unchanged():
    """The demo's and earlier studies' data (docs/RESULTS.md) must not move when the generator grows options."""
    import hashlib
    import json

    rows = get_task("synthetic").load("val", limit=200).to_list()
    assert hashlib.md5(json.dumps(rows).encode()).hexdigest() == "0ff4445b4f47286cbcfdb1d24a71e31f"


def test_commonsense_qa_choice_files_read_back_as_option_rows(tmp_path):
    """`examples/cqa_choice_files.py` writes the files the CommonsenseQA compare in RESULTS read: a data description
    reads them as multiple choice, with every train row's rationale and five options."""
    import subprocess
    import sys

    from conftest import PROJECT_ROOT

    from trainer.data.description import DatasetArguments
    from trainer.data.labelled import LabelledData

    requires_data("rationales", "palm_cqa")
    written = subprocess.run(
        [sys.executable, "examples/cqa_choice_files.py", "--data-dir", str(DATA_DIR), "--output-dir", str(tmp_path),
         "--train-rows", "40", "--test-rows", "10"],
        capture_output=True, text=True, cwd=PROJECT_ROOT,
    )  # fmt: skip
    assert written.returncode == 0, written.stderr[-2000:]
    data = LabelledData(
        DatasetArguments(train_file=str(tmp_path / "cqa_train.jsonl"), test_file=str(tmp_path / "cqa_test.jsonl"),
                         options_column="options", id_column="id")
    )  # fmt: skip
    train, test = data.rows("train"), data.rows("test")
    assert data.kind.scores_options and (len(train), len(test)) == (40, 10)
    assert all(len(options) == 5 for options in train["options"]) and all(train["rationale"])
