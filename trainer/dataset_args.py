"""One description of a labelled dataset, shared by every `dhrd` subcommand (`rationales`, `train`, `evaluate`,
`predict`), like the data arguments of transformers' `run_classification.py`.

Where the rows come from: a Hub dataset id or a local `datasets` folder (`--dataset_name`, with its splits), data
files (`--train_file` / `--validation_file` / `--test_file`: csv, jsonl, json, parquet; a file replaces that split
of `--dataset_name`), or a built-in task (`--task copa`, a preset: its files or Hub copy, input format, label names
and description). How a row becomes the classifier input: one column (`--text_column`) or several joined by a
template (`--text_columns a,b --input_template "A: {a}\\nB: {b}"`). Labels: `--label_names`, else the `ClassLabel`
feature's names, else the distinct values found in all given splits (said once in the log). The problem type
(`--problem_type`) is single-label unless the labels are lists or `--label_columns` names several 0/1 columns
(multi-label); regression is never guessed (`trainer.targets` says what each accepts). With `--options_column`
the data is multiple choice: the input is the context, each row lists its options and the label is the gold option
(an index or the option's text); the model scores each option (`DHRDForMultipleChoice`).

`LabelledData.rows(split)` gives every subcommand the same normalised columns: `idx` (the row id), `text`, `label`
(an index into the label names, a multi-hot row, or a number; absent for unlabelled splits), `rationale` where the
data has one, `group` (MultiRC's question) for the tasks that score by group, and `options` (a list of texts) for
multiple choice. Nothing is dropped, renamed or invented silently: a bad value is a `DataError` that names the
split, the row, the column and the fix.
"""

import json
import logging
import os
import string
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from datasets import ClassLabel, Dataset, DatasetDict

from .labels import LabelError, label_value
from .options import gold_option, option_name, parse_options
from .shards import require_unique_ids
from .targets import (
    MULTI_LABEL,
    REGRESSION,
    SINGLE_LABEL,
    ProblemType,
    encode_target,
    is_list_value,
    multi_label_items,
)
from .tasks.base import SPLIT_ALIASES, Task, TaskDataError

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
DATA_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
ID_COLUMNS = ("idx", "id")
CUSTOM_METRIC = "accuracy_macro_f1"
# The arguments that turn a row into model input: the model's input contract keeps them, so `predict` rebuilds
# inputs alike.
TEXT_FORMAT = ("text_column", "text_columns", "input_template")
INPUT_FORMAT = (*TEXT_FORMAT, "options_column")
OTHER_SPLITS_AND_CAPS = (
    *(f"{split}_file" for split in ("train", "validation", "test")),
    *(f"{split}_split" for split in ("train", "eval", "test")),
    "max_train_samples",
    "max_eval_samples",
)
WINDOW_ROWS = 65536  # rows normalised at a time by `row_windows`: bounds memory on millions of rows


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
    problem_type: ProblemType | None = field(
        default=None,
        metadata={
            "help": "transformers' problem type. Default: multi_label_classification when the labels are lists or "
            "--label_columns is given, else single_label_classification; regression (one number per row) is never "
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
    task_description: str | None = field(
        default=None,
        metadata={"help": "One line for the teacher prompt: 'Here is <description>.' (e.g. 'a support ticket')."},
    )

    def __post_init__(self) -> None:
        if self.text_column and self.text_columns:
            raise DataError("Give --text_column or --text_columns, not both.")
        if self.task and self.dataset_name:
            raise DataError("Give --task (a built-in preset) or --dataset_name, not both.")
        for name in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise DataError(f"--{name} must be a positive number of rows, got {value}.")
        if self.text_columns is not None and not self.columns_of_input():
            raise DataError("--text_columns is empty; give comma-separated column names.")
        if self.label_columns is not None:
            if not self.columns_of_labels():
                raise DataError("--label_columns is empty; give comma-separated 0/1 column names.")
            if self.problem_type not in (None, MULTI_LABEL):
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
        described = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in OTHER_SPLITS_AND_CAPS}
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


def load_table(path: str | os.PathLike) -> Dataset:
    """One csv/jsonl/json/parquet file as a `Dataset`; a file that cannot be read is a `DataError` naming it."""
    file = Path(path)
    if file.is_dir():
        raise DataError(f"{path} is a folder; give a data file (.csv/.jsonl/.json/.parquet) or use --dataset_name.")
    if not file.is_file():
        raise DataError(f"No such data file: {path}")
    fmt = DATA_FORMATS.get(file.suffix.lower())
    if fmt is None:
        raise DataError(f"{path}: unsupported format {file.suffix!r}; use one of {sorted(DATA_FORMATS)}.")
    if not os.access(file, os.R_OK):
        raise DataError(f"{path}: not readable (permission denied).")
    if file.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty.")
    problem = _text_problem(file, fmt)
    if problem:
        raise DataError(f"{path}:{problem}")
    from datasets import load_dataset

    try:
        return load_dataset(fmt, data_files=str(file), split="train")
    except Exception as error:  # datasets wraps parser errors in DatasetGenerationError
        cause = error.__cause__ or error
        raise DataError(f"{path}: cannot be read as {fmt}: {str(cause).splitlines()[0][:300]}") from None


def _text_problem(file: Path, fmt: str) -> str | None:
    """The first undecodable or (for jsonl) unparsable line as `N: what`, an unreadable parquet file, or a file
    without rows; checked before datasets parses, whose own errors name neither the file nor the line."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            rows = pq.ParquetFile(file).metadata.num_rows
        except Exception as error:  # not a parquet file, or a damaged one
            return f" not a readable parquet file ({error})."
        return " the file has no rows." if rows == 0 else None
    lines = 0
    with open(file, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                return f"{number}: not UTF-8 ({error.reason} at byte {error.start}); re-save the file as UTF-8."
            lines += bool(line.strip())
            if file.suffix.lower() == ".jsonl" and line.strip():
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as error:
                    return f"{number}: not valid JSON ({error.msg}); fix or remove the line."
                if not isinstance(value, dict):
                    return f"{number}: a JSON line must be an object with column names, got {type(value).__name__}."
    if lines <= (1 if fmt == "csv" else 0):
        return " the file has no rows" + (" (only a header)" if lines else "") + "."
    return None


def _load_dataset_dict(args: DatasetArguments) -> DatasetDict:
    from datasets import load_dataset, load_from_disk

    path = Path(args.dataset_name)
    if path.is_dir() and ((path / "dataset_dict.json").is_file() or (path / "state.json").is_file()):
        try:
            loaded = load_from_disk(str(path))
        except Exception as error:  # a damaged or partly written folder
            raise DataError(
                f"{path}: datasets' load_from_disk cannot read it ({type(error).__name__}: {error})."
            ) from None
        return loaded if isinstance(loaded, DatasetDict) else DatasetDict({"train": loaded})
    try:
        loaded = load_dataset(args.dataset_name, args.dataset_config_name)
    except (FileNotFoundError, ValueError, ConnectionError) as error:
        raise DataError(f"Cannot load dataset {args.dataset_name!r}: {str(error).splitlines()[0][:300]}") from None
    return loaded if isinstance(loaded, DatasetDict) else DatasetDict({"train": loaded})


class LabelledData:
    """The splits a `DatasetArguments` describes, normalised (see the module docstring).

    Args:
        args: the description.
        expected_label_names: a model's labels (`evaluate`, `predict`): they are the label names, and data whose
            own names differ is an error.
        expected_problem_type: a model's `problem_type`, likewise.
    """

    def __init__(
        self,
        args: DatasetArguments,
        expected_label_names: Sequence[str] | None = None,
        expected_problem_type: str | None = None,
    ) -> None:
        self.args = args
        self.expected_label_names = list(expected_label_names) if expected_label_names is not None else None
        self.expected_problem_type = expected_problem_type
        self._problem_type: str | None = None
        self.preset: Task | None = None
        if args.task:
            from .tasks import get_task

            self.preset = get_task(args.task)
        self._raw: dict[str, Dataset | None] = {}
        self._hub: DatasetDict | None = None
        self._label_names: list[str] | None = None
        if not (args.task or args.dataset_name or any(args.file_for(s) for s in SPLITS)):
            raise DataError(
                "No data given: pass --dataset_name, --train_file/--validation_file/--test_file or --task."
            )

    # where rows come from
    def source(self, split: str) -> str:
        split = canonical_split(split)
        if self.args.file_for(split):
            return self.args.file_for(split)
        if self.preset is not None:
            return f"task {self.preset.name} [{split}]"
        return f"{self.args.dataset_name} [{self._split_name(split)}]"

    def _split_name(self, split: str) -> str:
        return {"train": self.args.train_split, "validation": self.args.eval_split, "test": self.args.test_split}[
            split
        ]

    def raw(self, split: str) -> Dataset | None:
        """The split's rows as given (all columns), or None where the description has no such split."""
        split = canonical_split(split)
        if split not in SPLITS:
            raise DataError(f"Unknown split {split!r}; use one of {SPLITS}.")
        if split not in self._raw:
            self._raw[split] = self._load_raw(split)
        return self._raw[split]

    def _load_raw(self, split: str) -> Dataset | None:
        if self.args.file_for(split):
            dataset = load_table(self.args.file_for(split))
        elif self.preset is not None:
            try:
                dataset = self.preset.load(split, self.args.data_dir)
            except TaskDataError as error:
                if "no local split" in str(error) or "no split" in str(error).lower():
                    return None
                raise
        elif self.args.dataset_name:
            if self._hub is None:
                self._hub = _load_dataset_dict(self.args)
            name = self._split_name(split)
            if name not in self._hub:
                return None
            dataset = self._hub[name]
        else:
            return None
        if len(dataset) == 0:
            raise DataError(f"{self.source(split)}: the split is empty.")
        return dataset

    def has(self, split: str) -> bool:
        return self.raw(split) is not None

    def require(self, split: str) -> Dataset:
        dataset = self.raw(split)
        if dataset is None:
            split = canonical_split(split)
            file_flag = {"train": "--train_file", "validation": "--validation_file", "test": "--test_file"}[split]
            split_flag = {"train": "--train_split", "validation": "--eval_split", "test": "--test_split"}[split]
            where = (
                f"; {self.args.dataset_name} has the splits {sorted(self._hub)} (choose one with {split_flag})"
                if self._hub is not None
                else ""
            )
            raise DataError(f"No {split} split: pass {file_flag}{where}.")
        return dataset

    # columns
    @property
    def text_column(self) -> str:
        return self.args.text_column or "text"

    def id_column(self, dataset: Dataset) -> str | None:
        if self.args.id_column:
            return self.args.id_column
        return next((name for name in ID_COLUMNS if name in dataset.column_names), None)

    def _check_columns(self, dataset: Dataset, split: str, labelled: bool) -> None:
        columns = dataset.column_names
        where = self.source(split)
        wanted = self.args.columns_of_input() or ([] if self.args.input_template else [self.text_column])
        for name in wanted:
            if name not in columns:
                flag = "--text_columns" if self.args.text_columns else "--text_column"
                raise DataError(f"{where}: no column {name!r} ({flag}); the columns are {columns}.")
        for name in self.template_fields():
            if name not in columns:
                raise DataError(
                    f"{where}: --input_template field {{{name}}} is not a column; the columns are {columns}."
                )
        if self.multiple_choice and self.args.options_column not in columns:
            raise DataError(
                f"{where}: no column {self.args.options_column!r} (--options_column, the options); the columns are "
                f"{columns}."
            )
        if self.args.id_column and self.args.id_column not in columns:
            raise DataError(f"{where}: no column {self.args.id_column!r} (--id_column); the columns are {columns}.")
        for name in (self.args.columns_of_labels() or [self.args.label_column]) if labelled else []:
            if name not in columns:
                flag = "--label_columns" if self.args.label_columns else "--label_column"
                raise DataError(f"{where}: no label column {name!r} ({flag}); the columns are {columns}.")

    def template_fields(self) -> list[str]:
        template = self.args.input_template
        if not template:
            return []
        try:
            fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
        except ValueError as error:
            raise DataError(f"--input_template {template!r} is not a valid template ({error}).") from None
        if any(not name or name.isdigit() for name in fields):
            raise DataError(f"--input_template {template!r}: every {{field}} must name a column, e.g. {{premise}}.")
        return fields

    def render_input(self) -> Callable[[dict], str]:
        template = self.args.input_template
        if not template and self.args.text_columns:
            template = "\n".join(f"{name}: {{{name}}}" for name in self.args.columns_of_input())
        if template:
            fields = self.template_fields() or self.args.columns_of_input()

            def render(row: dict) -> str:
                return template.format(**{name: "" if row[name] is None else row[name] for name in fields})

            return render
        column = self.text_column
        return lambda row: row[column] if isinstance(row[column], str) or row[column] is None else str(row[column])

    # labels
    @property
    def label_names(self) -> list[str]:
        if self._label_names is None:
            self._label_names, origin = self._resolve_label_names()
            logger.info("Labels (%s): %s", origin, ", ".join(self._label_names))
        return self._label_names

    @property
    def multiple_choice(self) -> bool:
        return self.args.options_column is not None

    def _resolve_label_names(self) -> tuple[list[str], str]:
        if self.multiple_choice:  # one score per option: the gold option is chosen among each row's own options
            from modeling_dhrd.modeling_dhrd import OPTION_SCORE_LABEL

            return [OPTION_SCORE_LABEL], "multiple choice: one score per option"
        given = [name.strip() for name in (self.args.label_names or "").split(",") if name.strip()]
        if self.args.label_names is not None and not given:
            raise DataError("--label_names is empty; give comma-separated names in index order.")
        if len(set(given)) != len(given):
            raise DataError(f"--label_names repeats a name: {given}.")
        columns = self.args.columns_of_labels()
        expected = self.expected_label_names
        if expected is not None:
            preset = list(self.preset.label_names) if self.preset is not None else None
            for names, origin in (
                (given, "--label_names"),
                (columns, "--label_columns"),
                (self._class_label_names(), "the dataset's ClassLabel names"),
                (preset, f"the labels of task {self.args.task}"),
            ):
                if names and list(names) != expected:
                    raise DataError(f"The model's labels {expected} differ from {origin} {list(names)}.")
            return expected, "the model's"
        regression = self.problem_type == REGRESSION
        if given:
            if regression and len(given) != 1:
                raise DataError(f"Regression has one output: give one name with --label_names, not {given}.")
            if columns and len(given) != len(columns):
                raise DataError(f"--label_names has {len(given)} names for the {len(columns)} --label_columns.")
            return given, "--label_names"
        if regression:
            return [self.args.label_column], "regression: one output, named after the label column"
        if columns:
            return columns, "--label_columns"
        if self.preset is not None:
            return list(self.preset.label_names), f"task {self.preset.name}"
        class_label = self._class_label_names()
        if class_label:
            return class_label, f"the ClassLabel feature of column {self.args.label_column!r}"
        return self._observed_label_names()

    def _label_features(self) -> list:
        """The label column's feature in every split loaded so far and in the Hub/`save_to_disk` dataset."""
        loaded = [d for d in self._raw.values() if d is not None]
        if self.args.dataset_name and self._hub is None:
            self._hub = _load_dataset_dict(self.args)
        features = [d.features for d in (*loaded, *(self._hub.values() if self._hub is not None else ()))]
        return [f[self.args.label_column] for f in features if self.args.label_column in f]

    def _class_label_names(self) -> list[str] | None:
        """Names of a `ClassLabel` label feature (or a list of them, for multi-label) in the Hub/`save_to_disk`
        dataset or an already loaded split."""
        for feature in self._label_features():
            feature = getattr(feature, "feature", feature)  # List(ClassLabel): multi-label class indices
            if isinstance(feature, ClassLabel):
                return list(feature.names)
        return None

    def _labels_are_class_indices(self) -> bool:
        return any(isinstance(getattr(f, "feature", None), ClassLabel) for f in self._label_features())

    @property
    def problem_type(self) -> str:
        """The given, the model's, or the one the labels show (said once in the log when it is not single-label)."""
        if self._problem_type is None:
            self._problem_type, origin = self._resolve_problem_type()
            if self._problem_type != SINGLE_LABEL:
                logger.info("Problem type: %s (%s)", self._problem_type, origin)
        return self._problem_type

    def _resolve_problem_type(self) -> tuple[str, str]:
        if self.multiple_choice:  # a softmax over each row's options (an exported scorer's config says regression)
            return SINGLE_LABEL, "multiple choice"
        given, expected = self.args.problem_type, self.expected_problem_type
        if expected and given and given != expected:
            raise DataError(f"--problem_type {given} differs from the model's problem type {expected}.")
        outputs = len(self.expected_label_names) if self.expected_label_names is not None else None
        if given == REGRESSION and outputs not in (None, 1):
            raise DataError(
                f"--problem_type regression predicts one number per row; the model has {outputs} labels "
                f"({self.expected_label_names}): drop --problem_type."
            )
        if expected:
            return expected, "the model's"
        if given:
            return given, "--problem_type"
        if self.args.label_columns:
            return MULTI_LABEL, "--label_columns"
        if self.preset is not None:
            return self.preset.problem_type, f"task {self.preset.name}"
        for split in SPLITS:
            dataset = self.raw(split)
            if dataset is None or self.args.label_column not in dataset.column_names:
                continue
            if hasattr(dataset.features[self.args.label_column], "feature"):
                return MULTI_LABEL, f"the list feature of column {self.args.label_column!r}"
            first = next(
                (v for v in dataset.select(range(min(100, len(dataset))))[self.args.label_column] if v is not None),
                None,
            )
            if is_list_value(first):
                return MULTI_LABEL, f"column {self.args.label_column!r} holds lists"
            break
        return SINGLE_LABEL, "default"

    def _observed_label_names(self) -> tuple[list[str], str]:
        values: set = set()
        sources = []
        multi_label = self.problem_type == MULTI_LABEL
        for split in SPLITS:
            dataset = self.raw(split)
            if dataset is None or self.args.label_column not in dataset.column_names:
                continue
            sources.append(self.source(split))
            for row, value in enumerate(dataset[self.args.label_column]):
                where = f"{self.source(split)} row {row}"
                if multi_label:
                    values.update(_names_in_multi_label_value(value, where))
                else:
                    values.add(label_value(value, where))
        if not values:
            raise DataError(
                f"No labels found (column {self.args.label_column!r}); pass --label_names or a labelled split."
            )
        origin = f"distinct values of {self.args.label_column!r} in {', '.join(sources)}"
        if all(isinstance(v, str) for v in values):
            return sorted(values), origin + "; pass --label_names to set the order"
        if all(isinstance(v, int) for v in values):
            found = sorted(values)
            if found != list(range(found[-1] + 1)) or len(found) < 2:
                raise DataError(
                    f"Integer labels {found[:20]} in {', '.join(sources)} are not 0..K-1 for K >= 2 classes; pass "
                    "--label_names (K names in index order) or fix the labels."
                )
            return [str(v) for v in found], origin + "; pass --label_names to name them"
        raise DataError(
            f"Column {self.args.label_column!r} mixes label names and numbers in {', '.join(sources)}; use one kind."
        )

    @property
    def task(self) -> Task:
        """The preset, or a task with these label names and accuracy + macro-F1 (for metrics and prompts)."""
        if self.multiple_choice:
            raise TypeError("Multiple-choice data has no fixed label set: use choice_task(option_lists).")
        if self.preset is not None and list(self.preset.label_names) == self.label_names:
            return self.preset
        names = ", ".join(self.label_names)
        default_description = {
            SINGLE_LABEL: f"a text to classify as one of: {names}",
            MULTI_LABEL: f"a text to tag with any of the labels: {names} (or none)",
            REGRESSION: f"a text to score ({names})",
        }[self.problem_type]
        return Task(
            "custom",
            tuple(self.label_names),
            lambda record: [record],
            CUSTOM_METRIC,
            description=self.args.task_description or default_description,
            problem_type=self.problem_type,
        )

    def choice_task(self, option_lists: Sequence[Sequence[str]]) -> Task:
        """Multiple choice (rows with these options) as a task: accuracy, and for the teacher the options
        listed as `Option k: text` (`options.teacher_listing`), the gold one named by its text (the prompt takes it
        from the row's options)."""
        return Task(
            "multiple_choice",
            tuple(option_name(i) for i in range(max(map(len, option_lists)))),
            lambda record: [record],
            "accuracy",
            description=self.args.task_description or "a question with several options, one of them right",
        )

    # normalised rows
    def rows(self, split: str, limit: int | None = None, labelled: bool = True) -> Dataset:
        """`idx`, `text`, `label` (if `labelled`), `rationale` and `group` (where present) of the first rows."""
        dataset, where, id_column = self._checked(split, limit, labelled)
        ids = dataset[id_column] if id_column else list(range(len(dataset)))
        require_unique_ids(ids, id_column or "position", where)
        return self._normalised(dataset, where, ids, labelled, offset=0)

    def row_windows(
        self, split: str, limit: int | None = None, labelled: bool = True, window: int = WINDOW_ROWS
    ) -> Iterator[Dataset]:
        """The rows of `rows()`, `window` rows at a time: memory bounded by the window whatever the split's size
        (`dhrd predict` on millions of rows). Ids are checked unique over the whole split first."""
        dataset, where, id_column = self._checked(split, limit, labelled)
        if id_column:
            require_unique_ids(lambda: self.row_ids(split, limit), id_column, where)
        for start in range(0, len(dataset), window):
            part = dataset.select(range(start, min(start + window, len(dataset))))
            ids = part[id_column] if id_column else list(range(start, start + len(part)))
            yield self._normalised(part, where, ids, labelled, offset=start)

    def row_ids(self, split: str, limit: int | None = None) -> Iterator:
        """The ids of `rows()` (the id column, else positions), read in windows from the split."""
        dataset = self.require(split)
        count = self.num_rows(split, limit)
        id_column = self.id_column(dataset)
        if id_column is None:
            yield from range(count)
            return
        for batch in dataset.select(range(count)).select_columns([id_column]).iter(batch_size=WINDOW_ROWS):
            yield from batch[id_column]

    def num_rows(self, split: str, limit: int | None = None) -> int:
        """How many rows every reader of `split` gives: the first `limit` (a subcommand's `--limit`), capped by the
        description's own cap for the split (`--max_train_samples` for train, `--max_eval_samples` for validation),
        so a capped description reads, trains on, scores or sends to a (paid) teacher no more rows than it says."""
        rows = len(self.require(split))
        caps = {"train": self.args.max_train_samples, "validation": self.args.max_eval_samples}
        cap = caps.get(canonical_split(split))
        return min([rows, *(value for value in (limit, cap) if value is not None)])

    def _checked(self, split: str, limit: int | None, labelled: bool) -> tuple[Dataset, str, str | None]:
        """The split's first rows (`num_rows`), its columns checked: `(rows, where, id column or None)`."""
        split = canonical_split(split)
        dataset = self.require(split)
        count = self.num_rows(split, limit)
        if count < len(dataset):
            dataset = dataset.select(range(count))
        self._check_columns(dataset, split, labelled)
        return dataset, self.source(split), self.id_column(dataset)

    def _normalised(self, dataset: Dataset, where: str, ids: list, labelled: bool, offset: int) -> Dataset:
        """The normalised columns of `dataset`, whose first row is row `offset` of the split (for messages)."""
        render = self.render_input()
        names = self.label_names if labelled and not self.multiple_choice else None
        label2id = {name: index for index, name in enumerate(names or [])}
        indices = labelled and self._labels_are_class_indices()
        texts, labels, options = [], [], []
        for row, record in enumerate(dataset, start=offset):
            text = render(record)
            if not isinstance(text, str) or not text.strip():
                raise DataError(f"{where} row {row}: empty input (column(s) {self._input_columns()}).")
            texts.append(text)
            if self.multiple_choice:
                column = self.args.options_column
                options.append(parse_options(record[column], f"{where} row {row}", column))
                if labelled:
                    labels.append(gold_option(record[self.args.label_column], options[-1], f"{where} row {row}"))
            elif labelled:
                labels.append(self._target(record, label2id, f"{where} row {row}", indices))
        columns: dict[str, list] = {"idx": ids, "text": texts}
        if self.multiple_choice:
            columns["options"] = options
        if labelled:
            columns["label"] = labels
        for name, target in ((self.args.rationale_column, "rationale"), ("group", "group")):
            if name in dataset.column_names:
                columns[target] = dataset[name]
        if not self.multiple_choice and self.preset is not None and "options" in dataset.column_names:
            columns["options"] = dataset["options"]  # a preset whose labels are option names (COPA): the teacher's
        return Dataset.from_dict(columns)  # prompt names the gold option's text from them (`prompts.answer_text`)

    def _target(self, record: dict, label2id: dict[str, int], where: str, indices: bool) -> int | float | list[float]:
        columns = self.args.columns_of_labels()
        if not columns:
            return encode_target(record[self.args.label_column], self.problem_type, label2id, where, indices)
        flags = []
        for name in columns:
            value = record[name]
            if isinstance(value, str) or value not in (0, 1):  # bools and 0.0 / 1.0 compare equal to 0 / 1
                raise LabelError(f"{where}: column {name!r} holds {value!r}; --label_columns must hold 0 or 1.")
            flags.append(float(value))
        return flags

    def _input_columns(self) -> list[str]:
        return self.template_fields() or self.args.columns_of_input() or [self.text_column]


def _names_in_multi_label_value(value, where: str) -> list[str]:
    """The label names a multi-label value lists; numbers (indices, multi-hot) cannot name the classes."""
    items = multi_label_items(value, where)
    if not all(isinstance(item, str) for item in items):
        raise DataError(
            f"{where}: the multi-label values are numbers (class indices or multi-hot); pass --label_names with the "
            "names in index order."
        )
    return items


def dataset_ids(args: DatasetArguments) -> list[str]:
    """Hub dataset ids for a model card's `datasets:` metadata: the Hub dataset, or the preset task's Hub copy."""
    if args.dataset_name and not Path(args.dataset_name).exists():
        return [args.dataset_name]
    if args.task:
        from .tasks import get_task

        hub = get_task(args.task).hub
        return [hub[0]] if hub else []
    return []
