"""One description of a labelled dataset, shared by every `dhrd` subcommand (`rationales`, `train`, `evaluate`,
`predict`), like the data arguments of transformers' `run_classification.py`: the one owner of the data's column
names.

Where the rows come from: a Hub dataset id or a local `datasets` folder (`--dataset_name`, with its splits), data
files (`--train_file` / `--validation_file` / `--test_file`: csv, jsonl, json, parquet; a file replaces that split
of `--dataset_name`), or a built-in task (`--task copa`, a preset: its files or Hub copy, input format, label names
and description). How a row becomes the classifier input: one column (`--text_column`) or several joined by a
template (`--text_columns a,b --input_template "A: {a}\\nB: {b}"`). Labels: `--label_names`, else the `ClassLabel`
feature's names, else the distinct values found in all given splits (`label_schema`). The problem kind
(`--problem_type`) is single-label unless the labels are lists or `--label_columns` names several 0/1 columns
(multi-label); regression is never guessed (`trainer.kinds` says what each accepts). With `--options_column` the
data is multiple choice: the input is the context, each row lists its options and the label is the gold option (an
index or the option's text); the model scores each option (`DHRDForMultipleChoice`).

The rows themselves are `labelled.LabelledData`'s: read by `loading`, normalised by `normalise`.
"""

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..kinds.registry import ProblemKindChoice
from ..tasks.base import SPLIT_ALIASES

SPLITS = ("train", "validation", "test")
# The arguments that turn a row into model input: the model's input contract keeps them, so `predict` rebuilds
# inputs alike.
TEXT_FORMAT = ("text_column", "text_columns", "input_template")
INPUT_FORMAT = (*TEXT_FORMAT, "options_column")
# Each split's row cap, by the names transformers' example scripts give them (`run_glue.py`).
ROW_CAPS = {"train": "max_train_samples", "validation": "max_eval_samples", "test": "max_predict_samples"}
# What a job's rows of one split do not depend on: the other splits, the caps (a partial run's parts serve a larger
# one) and how many processes read them.
NOT_IN_JOB_IDENTITY = (
    *(f"{split}_file" for split in ("train", "validation", "test")),
    *(f"{split}_split" for split in ("train", "eval", "test")),
    *ROW_CAPS.values(),
    "preprocessing_num_workers",
)


class DataError(ValueError):
    """Bad user data or a data description that does not fit it; the message names where and how to fix it."""


def canonical_split(name: str) -> str:
    """`val` / `dev` / `validation` -> `validation`; `train`, `test` as they are."""
    alias = SPLIT_ALIASES.get(name, name)
    return "validation" if alias == "val" else alias


@dataclass
class DatasetArguments:
    """Where the labelled rows come from and how a row becomes the classifier input."""

    task: str | None = field(
        default=None,
        metadata={
            "help": "A built-in task as a preset (copa, rte, cb, boolq, wic, wsc, multirc, commonsense_qa, esnli, "
            "copa_sse, synthetic): its data, input format, label names and metric."
        },
    )
    data_dir: str | None = field(
        default=None, metadata={"help": "With --task: local folder of the original files (else $DHRD_DATA_DIR/Hub)."}
    )
    dataset_name: str | None = field(
        default=None,
        metadata={"help": "Hub dataset id, a folder written by `save_to_disk`, or a folder of data files."},
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "The dataset's configuration name."})
    train_split: str = field(default="train", metadata={"help": "Split of --dataset_name used for training."})
    eval_split: str = field(default="validation", metadata={"help": "Split of --dataset_name used for evaluation."})
    test_split: str = field(default="test", metadata={"help": "Split of --dataset_name used for prediction."})
    train_file: str | None = field(
        default=None, metadata={"help": "Training rows (.csv/.jsonl/.json/.parquet), e.g. `dhrd rationales` output."}
    )
    validation_file: str | None = field(
        default=None, metadata={"help": "Evaluation rows (same columns).", "aliases": ["--eval_file"]}
    )
    test_file: str | None = field(default=None, metadata={"help": "Rows to predict (labels optional)."})
    text_column: str | None = field(
        default=None, metadata={"help": "Column holding the classifier input (default: 'text')."}
    )
    text_columns: str | None = field(
        default=None,
        metadata={"help": "Several input columns, comma-separated; joined by --input_template (default 'a: {a}')."},
    )
    input_template: str | None = field(
        default=None,
        metadata={
            "help": "How columns become the input, e.g. 'Premise: {premise}\\nHypothesis: {hypothesis}' (\\n and \\t "
            "are a line break and a tab)."
        },
    )
    label_column: str = field(
        default="label",
        metadata={
            "help": "Column holding the label: a name or index; for multi-label a list of names or indices, a "
            "multi-hot list, or names joined by commas; for regression a number."
        },
    )
    label_columns: str | None = field(
        default=None,
        metadata={
            "help": "Multi-label from several 0/1 columns, comma-separated (e.g. 'toxic,insult,threat'); their names "
            "are the label names."
        },
    )
    problem_type: ProblemKindChoice | None = field(
        default=None,
        metadata={
            "help": "transformers' problem type, or ordinal_regression (ordered classes: --label_names from lowest to "
            "highest). Default: multi_label_classification when the labels are lists or --label_columns is given, "
            "else single_label_classification; regression (one number per row) and ordinal_regression are never "
            "guessed."
        },
    )
    label_names: str | None = field(
        default=None,
        metadata={
            "help": "Comma-separated label names in index order. Default: the ClassLabel names, else the distinct "
            "values of all given splits.",
            "aliases": ["--labels"],
        },
    )
    id_column: str | None = field(
        default=None,
        metadata={
            "help": "Column identifying rows (resumable runs, predictions). Default: 'idx' or 'id' if "
            "present, else the row's position (added as 'idx')."
        },
    )
    options_column: str | None = field(
        default=None,
        metadata={
            "help": "Multiple choice: the column listing each row's options (a list; in a CSV cell a JSON list). The "
            "input columns give the context, --label_column the gold option (index or text); each option is scored."
        },
    )
    rationale_column: str = field(default="rationale", metadata={"help": "Column holding the teacher rationale."})
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Only the first N training rows, wherever the train split is read."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Only the first N validation rows, wherever the validation split is read."}
    )
    max_predict_samples: int | None = field(
        default=None, metadata={"help": "Only the first N test rows, wherever the test split is read."}
    )
    task_description: str | None = field(
        default=None,
        metadata={"help": "One line for the teacher prompt: 'Here is <description>.' (e.g. 'a support ticket')."},
    )
    preprocessing_num_workers: int | None = field(
        default=None,
        metadata={"help": "Processes that read and normalise rows (datasets' `map(num_proc=...)`); default one."},
    )

    def __post_init__(self) -> None:
        if self.text_column and self.text_columns:
            raise DataError("Give --text_column or --text_columns, not both.")
        if self.task and self.dataset_name:
            raise DataError("Give --task (a built-in preset) or --dataset_name, not both.")
        for name in ROW_CAPS.values():
            value = getattr(self, name)
            if value is not None and value < 1:
                raise DataError(f"--{name} must be a positive number of rows, got {value}.")
        workers = self.preprocessing_num_workers
        if workers is not None and workers < 1:
            raise DataError(f"--preprocessing_num_workers must be a positive number of processes, got {workers}.")
        if self.text_columns is not None and not self.columns_of_input():
            raise DataError("--text_columns is empty; give comma-separated column names.")
        if self.label_columns is not None:
            if not self.columns_of_labels():
                raise DataError("--label_columns is empty; give comma-separated 0/1 column names.")
            if self.problem_type not in (None, "multi_label_classification"):
                raise DataError(
                    f"--label_columns gives multi-label data; it contradicts --problem_type {self.problem_type}."
                )
        if self.options_column is not None:
            given = [f"--{name}" for name in ("label_columns", "problem_type", "label_names") if getattr(self, name)]
            if not self.options_column.strip():
                raise DataError("--options_column is empty; name the column that lists the options.")
            if given:
                raise DataError(
                    f"--options_column (multiple choice: the label is the gold option) does not go with {given[0]}."
                )
        if self.input_template:  # a shell passes "\n" as two characters: the user means a line break
            self.input_template = self.input_template.replace("\\n", "\n").replace("\\t", "\t")

    def columns_of_input(self) -> list[str]:
        return [name.strip() for name in (self.text_columns or "").split(",") if name.strip()]

    def columns_of_labels(self) -> list[str]:
        return [name.strip() for name in (self.label_columns or "").split(",") if name.strip()]

    def file_for(self, split: str) -> str | None:
        return {"train": self.train_file, "validation": self.validation_file, "test": self.test_file}[split]

    def input_format(self) -> dict[str, Any]:
        """What the input contract keeps so `predict` can rebuild inputs the same way."""
        return {key: getattr(self, key) for key in INPUT_FORMAT if getattr(self, key)}

    def job_description(self, split: str) -> dict[str, Any]:
        """What a resumable job's rows of `split` depend on (its manifest's `data`): where they come from and how they
        are read; not the other splits' files, nor the training sample caps."""
        split = canonical_split(split)
        described = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in NOT_IN_JOB_IDENTITY}
        split_name = {"train": self.train_split, "validation": self.eval_split, "test": self.test_split}.get(split)
        file = self.file_for(split)
        return {**described, "split": split, "split_name": split_name, "file": file and str(Path(file).resolve())}

    def with_input_format(self, recorded: dict[str, Any]) -> "DatasetArguments":
        """These arguments, with the recorded input format where none was given (the text columns as a whole; the
        options column on its own). A recorded setting this version does not know is refused, not skipped."""
        unknown = sorted(set(recorded) - set(INPUT_FORMAT))
        if unknown:
            raise DataError(
                f"The model's input contract has unknown input_format settings {unknown} (known: {INPUT_FORMAT})."
            )
        changes = {}
        if not any(getattr(self, key) for key in TEXT_FORMAT):
            changes.update({key: recorded[key] for key in TEXT_FORMAT if key in recorded})
        if self.options_column is None and "options_column" in recorded:
            changes["options_column"] = recorded["options_column"]
        return replace(self, **changes) if changes else self


def dataset_ids(args: DatasetArguments) -> list[str]:
    """Hub dataset ids for a model card's `datasets:` metadata: the Hub dataset, or the preset task's Hub copy."""
    if args.dataset_name and not Path(args.dataset_name).exists():
        return [args.dataset_name]
    if args.task:
        from ..tasks import get_task

        hub = get_task(args.task).hub
        return [hub[0]] if hub else []
    return []
