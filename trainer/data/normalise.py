"""Rows as every subcommand reads them: the input rendered from its column(s), the label encoded by the problem
kind, the options parsed for multiple choice, through `Dataset.map(batched=True)` (cached by `datasets` where the rows
come from files; `num_proc` processes).

Columns of a normalised row: `idx` (the row id), `text`, `label` (an index into the label names, a multi-hot row, a
number, or the gold option; absent for unlabelled splits), `rationale` where the data has one, `group` (MultiRC's
question) for the tasks that score by group, and `options` (a list of texts) for multiple choice and for presets
whose labels are option names (COPA: the teacher's prompt names the gold option's text from them). Nothing is
dropped, renamed or invented silently: a bad value is a `DataError` that names the split, the row, the column and the
fix.
"""

import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from datasets import Dataset, Features, List, Value

from ..kinds.labels import LabelError
from .description import DataError, DatasetArguments
from .label_schema import LabelSchema
from .options import gold_option, parse_options

ID_COLUMNS = ("idx", "id")
# The columns of a normalised row: what `LabelledData.rows` gives and what `DHRDTrainer` reads from raw datasets.
TEXT, LABEL, RATIONALE, OPTIONS = "text", "label", "rationale", "options"


def text_column(args: DatasetArguments) -> str:
    return args.text_column or TEXT


def id_column(args: DatasetArguments, dataset: Dataset) -> str | None:
    """The column of row ids: `--id_column`, else `idx` or `id` if present, else None (ids are positions)."""
    if args.id_column:
        return args.id_column
    return next((name for name in ID_COLUMNS if name in dataset.column_names), None)


def template_fields(args: DatasetArguments) -> list[str]:
    template = args.input_template
    if not template:
        return []
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as error:
        raise DataError(f"--input_template {template!r} is not a valid template ({error}).") from None
    if any(not name or name.isdigit() for name in fields):
        raise DataError(f"--input_template {template!r}: every {{field}} must name a column, e.g. {{premise}}.")
    return fields


def input_columns(args: DatasetArguments) -> list[str]:
    return template_fields(args) or args.columns_of_input() or [text_column(args)]


def render_input(args: DatasetArguments) -> Callable[[dict], str]:
    """How one row (a dict of columns) becomes the classifier input."""
    template = args.input_template
    if not template and args.text_columns:
        template = "\n".join(f"{name}: {{{name}}}" for name in args.columns_of_input())
    if template:
        fields = template_fields(args) or args.columns_of_input()

        def render(row: dict) -> str:
            return template.format(**{name: "" if row[name] is None else row[name] for name in fields})

        return render
    column = text_column(args)
    return lambda row: row[column] if isinstance(row[column], str) or row[column] is None else str(row[column])


def check_columns(args: DatasetArguments, columns: Sequence[str], where: str, labelled: bool) -> None:
    """Every column the description names is in the split, or a `DataError` lists the split's columns."""
    columns = list(columns)
    wanted = args.columns_of_input() or ([] if args.input_template else [text_column(args)])
    for name in wanted:
        if name not in columns:
            flag = "--text_columns" if args.text_columns else "--text_column"
            raise DataError(f"{where}: no column {name!r} ({flag}); the columns are {columns}.")
    for name in template_fields(args):
        if name not in columns:
            raise DataError(f"{where}: --input_template field {{{name}}} is not a column; the columns are {columns}.")
    if args.options_column is not None and args.options_column not in columns:
        raise DataError(
            f"{where}: no column {args.options_column!r} (--options_column, the options); the columns are {columns}."
        )
    if args.id_column and args.id_column not in columns:
        raise DataError(f"{where}: no column {args.id_column!r} (--id_column); the columns are {columns}.")
    for name in (args.columns_of_labels() or [args.label_column]) if labelled else []:
        if name not in columns:
            flag = "--label_columns" if args.label_columns else "--label_column"
            raise DataError(f"{where}: no label column {name!r} ({flag}); the columns are {columns}.")


@dataclass
class RowNormaliser:
    """The batched `Dataset.map` function that normalises rows (`schema` None: unlabelled rows). `offset`: the
    position in the split of the dataset's first row (for messages); `ids`: the id column, else positions."""

    args: DatasetArguments
    schema: LabelSchema | None
    where: str
    offset: int
    id_column: str | None
    options_as_data: bool  # a preset's `options` column is kept for the teacher's prompt

    def __call__(self, batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        render = render_input(self.args)
        with_options = self.args.options_column is not None
        target = self._target_reader() if self.schema is not None and not with_options else None
        records = [dict(zip(batch, values)) for values in zip(*batch.values())]
        texts, labels, options = [], [], []
        for index, record in zip(indices, records):
            at = f"{self.where} row {self.offset + index}"
            text = render(record)
            if not isinstance(text, str) or not text.strip():
                raise DataError(f"{at}: empty input (column(s) {input_columns(self.args)}).")
            texts.append(text)
            if with_options:
                column = self.args.options_column
                options.append(parse_options(record[column], at, column))
                if self.schema is not None:
                    labels.append(gold_option(record[self.args.label_column], options[-1], at))
            elif target is not None:
                labels.append(target(record, at))
        columns: dict[str, list] = {
            "idx": batch[self.id_column] if self.id_column else [self.offset + i for i in indices],
            TEXT: texts,
        }
        if with_options:
            columns[OPTIONS] = options
        if self.schema is not None:
            columns[LABEL] = labels
        for name, normalised in ((self.args.rationale_column, RATIONALE), ("group", "group")):
            if name in batch:
                columns[normalised] = batch[name]
        if self.options_as_data and OPTIONS in batch:
            columns[OPTIONS] = batch[OPTIONS]
        return columns

    def features(self, source: Features) -> Features:
        """The normalised columns' types, declared rather than inferred: `datasets` gives a column the function
        returns the type of the input column of the same name, so a CSV whose `label` column holds names (strings)
        turned the encoded label indices into the strings '0', '1'. `source`: the types of the rows as given."""
        columns: dict = {"idx": source[self.id_column] if self.id_column else Value("int64"), TEXT: Value("string")}
        if self.args.options_column is not None:
            columns[OPTIONS] = List(Value("string"))
        if self.schema is not None:  # the gold option's index, the flags of `--label_columns`, or the kind's target
            if self.args.options_column is not None:
                columns[LABEL] = Value("int64")
            else:
                columns[LABEL] = (
                    List(Value("float64")) if self.args.columns_of_labels() else self.schema.kind.target_feature()
                )
        for name, normalised in ((self.args.rationale_column, RATIONALE), ("group", "group")):
            if name in source:
                columns[normalised] = source[name]
        if self.options_as_data and OPTIONS in source:
            columns[OPTIONS] = source[OPTIONS]
        return Features(columns)

    def _target_reader(self) -> Callable[[dict, str], object]:
        """How a row's label becomes its target: the kind's encoding of the label column, or the 0/1 flags of
        `--label_columns` (the label index built once, not per row)."""
        columns, schema = self.args.columns_of_labels(), self.schema
        if not columns:
            label2id = {name: index for index, name in enumerate(schema.names)}
            column, named = self.args.label_column, schema.integers_are_names

            def read(record: dict, where: str) -> object:
                value = record[column]
                if named and isinstance(value, int) and not isinstance(value, bool):
                    value = str(value)  # a rating: the label of that name (an unknown one is refused by name)
                return schema.kind.encode_target(value, label2id, where, schema.class_indices)

            return read

        def flags(record: dict, where: str) -> list[float]:
            values = []
            for name in columns:
                value = record[name]
                if isinstance(value, str) or value not in (0, 1):  # bools and 0.0 / 1.0 compare equal to 0 / 1
                    raise LabelError(f"{where}: column {name!r} holds {value!r}; --label_columns must hold 0 or 1.")
                values.append(float(value))
            return values

        return flags


def normalised_rows(
    dataset: Dataset,
    args: DatasetArguments,
    schema: LabelSchema | None,
    where: str,
    offset: int = 0,
    options_as_data: bool = False,
    num_proc: int | None = None,
) -> Dataset:
    """`dataset`'s rows normalised (see the module docstring); `dataset`'s first row is row `offset` of the split."""
    normaliser = RowNormaliser(args, schema, where, offset, id_column(args, dataset), options_as_data)
    return dataset.map(
        normaliser,
        batched=True,
        with_indices=True,
        remove_columns=dataset.column_names,
        features=normaliser.features(dataset.features),
        num_proc=num_proc,
        desc="Reading rows",
    )
