"""What the labels of a description are: their names, the problem kind, and where each came from.

`label_schema` is a function of the description, the preset, the splits and the model's own labels (when a model
reads the data): it reads the splits but changes nothing, so a caller decides when to resolve and what to log.

- The kind: multiple choice with `--options_column`; else the model's (data that says otherwise is refused), else
  `--problem_type`, else multi-label for `--label_columns`, the preset's, multi-label where the label column holds
  lists, else single-label. Regression is never guessed.
- The names: the model's (a ClassLabel, `--label_names`, `--label_columns` or preset that differs is refused), else
  `--label_names`, the label column for regression, `--label_columns`, the preset's, the `ClassLabel` feature's,
  else the distinct values of every given split.
"""

from dataclasses import dataclass

from datasets import ClassLabel

from ..kinds.base import ProblemKind
from ..kinds.labels import LabelError
from ..kinds.multi_label import is_list_value
from ..kinds.registry import MULTI_LABEL, MULTIPLE_CHOICE, SINGLE_LABEL, get_kind
from ..tasks.base import Task
from .description import SPLITS, DataError, DatasetArguments
from .loading import RawSplits


@dataclass(frozen=True)
class ModelLabels:
    """A model's labels, which data read for it must have: its label names and (where its config names one) kind."""

    names: list[str]
    kind: ProblemKind | None


@dataclass(frozen=True)
class LabelSchema:
    names: list[str]
    kind: ProblemKind
    names_origin: str
    kind_origin: str
    class_indices: bool  # the label column is a `ClassLabel` (or a list of them): integers are class indices

    @property
    def integers_are_names(self) -> bool:
        """Integer labels are label names (ratings "1".."5" of ordered classes), not class indices: decided once
        for the column, so no column is read both ways."""
        return not self.class_indices and self.kind.integers_name_labels(self.names)


def label_schema(
    args: DatasetArguments, preset: Task | None, splits: RawSplits, model: ModelLabels | None = None
) -> LabelSchema:
    kind, kind_origin = _kind(args, preset, splits, model)
    names, names_origin = _names(args, preset, splits, model, kind)
    return LabelSchema(names, kind, names_origin, kind_origin, _class_indices(args, splits))


def _kind(
    args: DatasetArguments, preset: Task | None, splits: RawSplits, model: ModelLabels | None
) -> tuple[ProblemKind, str]:
    if args.options_column is not None:  # a softmax over each row's options
        return MULTIPLE_CHOICE, "--options_column"
    given = get_kind(args.problem_type) if args.problem_type else None
    expected = model.kind if model is not None else None
    if expected and given and given is not expected:
        raise DataError(f"--problem_type {given.name} differs from the model's problem type {expected.name}.")
    outputs = len(model.names) if model is not None else None
    if given is not None and given.single_output and outputs not in (None, 1):
        raise DataError(
            f"--problem_type {given.name} predicts one number per row; the model has {outputs} labels "
            f"({model.names}): drop --problem_type."
        )
    if expected:
        return expected, "the model's"
    if given:
        return given, "--problem_type"
    if preset is not None and not args.label_columns:
        return preset.kind, f"task {preset.name}"
    lists = "--label_columns" if args.label_columns else _labels_hold_lists(args, splits)
    return (MULTI_LABEL, lists) if lists else (SINGLE_LABEL, "default")


def _labels_hold_lists(args: DatasetArguments, splits: RawSplits) -> str | None:
    """Where the first labelled split shows list labels (a list feature, or lists among its first 100 values)."""
    for split in SPLITS:
        dataset = splits.get(split)
        if dataset is None or args.label_column not in dataset.column_names:
            continue
        if hasattr(dataset.features[args.label_column], "feature"):
            return f"the list feature of column {args.label_column!r}"
        first = next(
            (v for v in dataset.select(range(min(100, len(dataset))))[args.label_column] if v is not None), None
        )
        return f"column {args.label_column!r} holds lists" if is_list_value(first) else None
    return None


def _names(
    args: DatasetArguments, preset: Task | None, splits: RawSplits, model: ModelLabels | None, kind: ProblemKind
) -> tuple[list[str], str]:
    if kind.fixed_label_names:  # one score per option: the gold option is chosen among each row's own options
        return list(kind.fixed_label_names), f"{kind.name}: one score per option"
    given = [name.strip() for name in (args.label_names or "").split(",") if name.strip()]
    if args.label_names is not None and not given:
        raise DataError("--label_names is empty; give comma-separated names in index order.")
    if len(set(given)) != len(given):
        raise DataError(f"--label_names repeats a name: {given}.")
    columns = args.columns_of_labels()
    if model is not None:
        for names, origin in (
            (given, "--label_names"),
            (columns, "--label_columns"),
            (_class_label_names(args, splits), "the dataset's ClassLabel names"),
            (list(preset.label_names) if preset is not None else None, f"the labels of task {args.task}"),
        ):
            if names and list(names) != model.names:
                raise DataError(f"The model's labels {model.names} differ from {origin} {list(names)}.")
        return model.names, "the model's"
    if given:
        if kind.single_output and len(given) != 1:
            raise DataError(f"{kind.name} has one output: give one name with --label_names, not {given}.")
        if columns and len(given) != len(columns):
            raise DataError(f"--label_names has {len(given)} names for the {len(columns)} --label_columns.")
        return given, "--label_names"
    if kind.single_output:
        return [args.label_column], f"{kind.name}: one output, named after the label column"
    if columns:
        return columns, "--label_columns"
    if preset is not None:
        return list(preset.label_names), f"task {preset.name}"
    class_label = _class_label_names(args, splits)
    if class_label:
        return class_label, f"the ClassLabel feature of column {args.label_column!r}"
    return _observed_names(args, splits, kind)


def _label_features(args: DatasetArguments, splits: RawSplits) -> list:
    """The label column's feature in every split loaded so far and in the Hub/`save_to_disk` dataset."""
    hub = splits.hub_dict()
    features = [d.features for d in (*splits.loaded(), *(hub.values() if hub is not None else ()))]
    return [f[args.label_column] for f in features if args.label_column in f]


def _class_label_names(args: DatasetArguments, splits: RawSplits) -> list[str] | None:
    """Names of a `ClassLabel` label feature (or a list of them, for multi-label)."""
    for feature in _label_features(args, splits):
        feature = getattr(feature, "feature", feature)  # List(ClassLabel): multi-label class indices
        if isinstance(feature, ClassLabel):
            return list(feature.names)
    return None


def _class_indices(args: DatasetArguments, splits: RawSplits) -> bool:
    return any(isinstance(getattr(f, "feature", None), ClassLabel) for f in _label_features(args, splits))


def _observed_names(args: DatasetArguments, splits: RawSplits, kind: ProblemKind) -> tuple[list[str], str]:
    values: set = set()
    sources = []
    for split in SPLITS:
        dataset = splits.get(split)
        if dataset is None or args.label_column not in dataset.column_names:
            continue
        sources.append(splits.source(split))
        for row, value in enumerate(dataset[args.label_column]):
            values.update(kind.names_in_value(value, f"{splits.source(split)} row {row}"))
    if not values:
        raise DataError(f"No labels found (column {args.label_column!r}); pass --label_names or a labelled split.")
    origin = f"distinct values of {args.label_column!r} in {', '.join(sources)}"
    if all(isinstance(v, str) for v in values):
        try:
            return kind.order_names(values, origin), origin + "; pass --label_names to set the order"
        except LabelError as error:
            raise DataError(str(error)) from None
    if all(isinstance(v, int) for v in values):
        found = sorted(values)
        try:
            named = kind.names_of_numbers(found)
        except LabelError as error:
            raise DataError(f"{', '.join(sources)}: {error}") from None
        if named is not None:
            return named, origin + "; pass --label_names to set other names"
        if found != list(range(found[-1] + 1)) or len(found) < 2:
            raise DataError(
                f"Integer labels {found[:20]} in {', '.join(sources)} are not 0..K-1 for K >= 2 classes; pass "
                "--label_names (K names in index order) or fix the labels."
            )
        return [str(v) for v in found], origin + "; pass --label_names to name them"
    raise DataError(
        f"Column {args.label_column!r} mixes label names and numbers in {', '.join(sources)}; use one kind."
    )
