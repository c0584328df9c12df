"""Reading the rows a description names, as `datasets` gives them: one data file (`load_table`, with errors that name
the file and line), a Hub dataset or `save_to_disk` folder (`load_dataset_dict`), and the splits of a description,
each loaded on first use (`RawSplits`; predicting one split never reads the others)."""

import json
import os
from pathlib import Path

from datasets import Dataset, DatasetDict

from ..tasks.base import Task, TaskDataError
from .description import SPLITS, DataError, DatasetArguments, canonical_split

DATA_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


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


def load_dataset_dict(args: DatasetArguments) -> DatasetDict:
    """`--dataset_name`'s splits: a `save_to_disk` folder, or a Hub id / folder of files through `load_dataset`."""
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


class RawSplits:
    """The splits of a description as given (all columns), each loaded on first use; `hub` is `--dataset_name`'s
    `DatasetDict` once loaded."""

    def __init__(self, args: DatasetArguments, preset: Task | None) -> None:
        self.args = args
        self.preset = preset
        self.hub: DatasetDict | None = None
        self._loaded: dict[str, Dataset | None] = {}

    def source(self, split: str) -> str:
        """Where a split's rows come from, as messages name it: its file, the preset's split, or the Hub split."""
        split = canonical_split(split)
        if self.args.file_for(split):
            return self.args.file_for(split)
        if self.preset is not None:
            return f"task {self.preset.name} [{split}]"
        return f"{self.args.dataset_name} [{self.split_name(split)}]"

    def split_name(self, split: str) -> str:
        return {"train": self.args.train_split, "validation": self.args.eval_split, "test": self.args.test_split}[
            split
        ]

    def get(self, split: str) -> Dataset | None:
        """The split's rows as given, or None where the description has no such split."""
        split = canonical_split(split)
        if split not in SPLITS:
            raise DataError(f"Unknown split {split!r}; use one of {SPLITS}.")
        if split not in self._loaded:
            self._loaded[split] = self._load(split)
        return self._loaded[split]

    def loaded(self) -> list[Dataset]:
        """The splits read so far."""
        return [dataset for dataset in self._loaded.values() if dataset is not None]

    def hub_dict(self) -> DatasetDict | None:
        """`--dataset_name`'s splits (loaded now if not yet), or None without one."""
        if self.args.dataset_name and self.hub is None:
            self.hub = load_dataset_dict(self.args)
        return self.hub

    def _load(self, split: str) -> Dataset | None:
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
            name = self.split_name(split)
            if name not in self.hub_dict():
                return None
            dataset = self.hub[name]
        else:
            return None
        if len(dataset) == 0:
            raise DataError(f"{self.source(split)}: the split is empty.")
        return dataset

    def require(self, split: str) -> Dataset:
        dataset = self.get(split)
        if dataset is None:
            split = canonical_split(split)
            file_flag = {"train": "--train_file", "validation": "--validation_file", "test": "--test_file"}[split]
            split_flag = {"train": "--train_split", "validation": "--eval_split", "test": "--test_split"}[split]
            where = (
                f"; {self.args.dataset_name} has the splits {sorted(self.hub)} (choose one with {split_flag})"
                if self.hub is not None
                else ""
            )
            raise DataError(f"No {split} split: pass {file_flag}{where}.")
        return dataset
