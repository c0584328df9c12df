"""`LabelledData`: the splits a `DatasetArguments` describes, as normalised rows (`normalise`), with their label schema
(`label_schema`) and, for metrics and teacher prompts, their task."""

import logging
from collections.abc import Iterator, Sequence
from dataclasses import replace

from datasets import Dataset

from ..jobs.progress import datasets_bars_in_terminals_only
from ..jobs.shards import require_unique_ids
from ..kinds.base import ProblemKind
from ..kinds.multiple_choice import option_name
from ..kinds.registry import MULTIPLE_CHOICE
from ..tasks.base import Task
from .description import ROW_CAPS, SPLITS, DataError, DatasetArguments, canonical_split
from .label_schema import LabelSchema, ModelLabels, label_schema
from .loading import RawSplits
from .normalise import check_columns, id_column, normalised_rows

logger = logging.getLogger(__name__)

WINDOW_ROWS = 65536  # rows normalised at a time by `row_windows`: bounds memory on millions of rows
CUSTOM_METRIC = "accuracy_macro_f1"


class LabelledData:
    """The splits a `DatasetArguments` describes, normalised.

    Args:
        args: the description.
        model: a model's labels (`evaluate`, `predict`): they are the label names and kind, and data whose own
            differ is an error.
    """

    def __init__(self, args: DatasetArguments, model: ModelLabels | None = None) -> None:
        if not (args.task or args.dataset_name or any(args.file_for(s) for s in SPLITS)):
            raise DataError(
                "No data given: pass --dataset_name, --train_file/--validation_file/--test_file or --task."
            )
        self.args = args
        self.model = model
        self.preset: Task | None = None
        if args.task:
            from ..tasks import get_task

            self.preset = get_task(args.task)
        self.splits = RawSplits(args, self.preset)
        self._schema: LabelSchema | None = None

    # where rows come from
    def source(self, split: str) -> str:
        return self.splits.source(split)

    def raw(self, split: str) -> Dataset | None:
        """The split's rows as given (all columns), or None where the description has no such split."""
        return self.splits.get(split)

    def has(self, split: str) -> bool:
        return self.raw(split) is not None

    def require(self, split: str) -> Dataset:
        return self.splits.require(split)

    def id_column(self, dataset: Dataset) -> str | None:
        return id_column(self.args, dataset)

    # labels
    @property
    def schema(self) -> LabelSchema:
        """The label names and kind (resolved on first use, and said once in the log)."""
        if self._schema is None:
            self._schema = label_schema(self.args, self.preset, self.splits, self.model)
            logger.info("Labels (%s): %s", self._schema.names_origin, ", ".join(self._schema.names))
            if self._schema.kind_origin != "default":
                logger.info("Problem type: %s (%s)", self._schema.kind.name, self._schema.kind_origin)
        return self._schema

    @property
    def label_names(self) -> list[str]:
        return self.schema.names

    @property
    def kind(self) -> ProblemKind:
        return self.schema.kind

    @property
    def task(self) -> Task:
        """The preset, or a task with these label names and the kind's metrics (for metrics and prompts)."""
        if self.kind.scores_options:
            raise TypeError("Multiple-choice data has no fixed label set: use choice_task(option_lists).")
        if self.preset is not None and list(self.preset.label_names) == self.label_names:
            # the preset's texts and metric, with the kind the data was read as (`--problem_type` may differ)
            return self.preset if self.preset.kind is self.kind else replace(self.preset, problem_kind=self.kind.name)
        return Task(
            "custom",
            tuple(self.label_names),
            lambda record: [record],
            CUSTOM_METRIC,
            description=self.args.task_description or self.kind.description(self.label_names),
            problem_kind=self.kind.name,
        )

    def choice_task(self, option_lists: Sequence[Sequence[str]]) -> Task:
        """Multiple choice (rows with these options) as a task: accuracy, and for the teacher the options listed as
        `Option k: text` (`options.teacher_listing`), the gold one named by its text (the prompt takes it from the
        row's options)."""
        return Task(
            "multiple_choice",
            tuple(option_name(i) for i in range(max(map(len, option_lists)))),
            lambda record: [record],
            "accuracy",
            description=self.args.task_description or MULTIPLE_CHOICE.description(()),
            problem_kind=MULTIPLE_CHOICE.name,
        )

    # normalised rows
    def rows(self, split: str, limit: int | None = None, labelled: bool = True) -> Dataset:
        """`idx`, `text`, `label` (if `labelled`), `rationale` and `group` (where present) of the first rows."""
        dataset, where, ids = self._checked(split, limit, labelled)
        require_unique_ids(dataset[ids] if ids else list(range(len(dataset))), ids or "position", where)
        return self._normalised(dataset, where, labelled, offset=0)

    def row_windows(
        self, split: str, limit: int | None = None, labelled: bool = True, window: int = WINDOW_ROWS
    ) -> Iterator[Dataset]:
        """The rows of `rows()`, `window` rows at a time: memory bounded by the window whatever the split's size
        (`dhrd predict` on millions of rows). Ids are checked unique over the whole split first."""
        dataset, where, ids = self._checked(split, limit, labelled)
        if ids:
            require_unique_ids(lambda: self.row_ids(split, limit), ids, where)
        for start in range(0, len(dataset), window):
            part = dataset.select(range(start, min(start + window, len(dataset))))
            yield self._normalised(part, where, labelled, offset=start)

    def row_ids(self, split: str, limit: int | None = None) -> Iterator:
        """The ids of `rows()` (the id column, else positions), read in windows from the split."""
        dataset = self.require(split)
        count = self.num_rows(split, limit)
        column = self.id_column(dataset)
        if column is None:
            yield from range(count)
            return
        for batch in dataset.select(range(count)).select_columns([column]).iter(batch_size=WINDOW_ROWS):
            yield from batch[column]

    def num_rows(self, split: str, limit: int | None = None) -> int:
        """How many rows every reader of `split` gives: the first `limit` (a subcommand's `--limit`), capped by the
        description's own cap for the split (`--max_train_samples`, `--max_eval_samples`, `--max_predict_samples`),
        so a capped description reads, trains on, scores or sends to a (paid) teacher no more rows than it says."""
        rows = len(self.require(split))
        cap = getattr(self.args, ROW_CAPS[canonical_split(split)])  # `require` has refused any other split
        return min([rows, *(value for value in (limit, cap) if value is not None)])

    def _checked(self, split: str, limit: int | None, labelled: bool) -> tuple[Dataset, str, str | None]:
        """The split's first rows (`num_rows`), its columns checked: `(rows, where, id column or None)`."""
        split = canonical_split(split)
        dataset = self.require(split)
        count = self.num_rows(split, limit)
        if count < len(dataset):
            dataset = dataset.select(range(count))
        check_columns(self.args, dataset.column_names, self.source(split), labelled)
        return dataset, self.source(split), self.id_column(dataset)

    def _normalised(self, dataset: Dataset, where: str, labelled: bool, offset: int) -> Dataset:
        schema = self.schema if labelled else None
        options_as_data = self.args.options_column is None and self.preset is not None
        with datasets_bars_in_terminals_only():
            return normalised_rows(
                dataset, self.args, schema, where, offset, options_as_data, self.args.preprocessing_num_workers
            )
