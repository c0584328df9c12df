"""Resumable, exactly-once result shards: what `dhrd rationales` and `dhrd predict` write while they work.

Each run appends JSON lines to a shard of its own (`shard-00003.jsonl`) and flushes and fsyncs after every finished
unit of work (a rationale, a batch of predictions); a rerun reads all shards, skips the keys already there and
appends to a new shard. A kill therefore loses only the work in flight: a line cut short has no newline and is
ignored on load (that key is done again), and no key is ever kept twice. A lock file keeps two runs off one folder.
"""

import fcntl
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def require_unique_ids(ids: Iterable, column: str, where: str) -> None:
    """Results are kept by row id: two rows with one id would share (and lose) a result."""
    counts = Counter(str(value) for value in ids)
    repeated = [key for key, count in counts.items() if count > 1]
    if repeated:
        raise ValueError(
            f"{where}: column {column!r} must identify rows uniquely; repeated ids {repeated[:5]} (use --id_column)."
        )


class ShardWriter:
    """Appends records to the run's shard; `write` makes a group of records durable at once."""

    def __init__(self, handle: IO[str], done: dict[str, dict], key: str) -> None:
        self._handle, self._done, self._key = handle, done, key

    def write(self, records: Iterable[dict]) -> None:
        records = list(records)
        self._handle.write("".join(json.dumps(record) + "\n" for record in records))
        self._handle.flush()
        os.fsync(self._handle.fileno())
        for record in records:
            self._done[str(record[self._key])] = record


class ShardedResults:
    """The shards of one job in `folder`, keyed by the record field `key`."""

    def __init__(self, folder: str | os.PathLike, key: str = "id") -> None:
        self.folder = Path(folder)
        self.key = key

    def load(self) -> dict[str, dict]:
        """Finished records by key, from every shard; lines cut short by a crash are ignored."""
        results: dict[str, dict] = {}
        for shard in sorted(self.folder.glob("shard-*.jsonl")):
            with open(shard, encoding="utf-8") as handle:
                for line in handle:
                    if not line.endswith("\n"):
                        continue  # the last write of a killed run
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    results.setdefault(str(record[self.key]), record)
        return results

    @contextmanager
    def open(self) -> Iterator[tuple[dict[str, dict], ShardWriter]]:
        """Lock the folder, load what is done, and open a new shard: `(done, writer)`. `done` grows with `write`."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RuntimeError(f"Another run is writing to {self.folder}.") from None
            done = self.load()
            numbers = [int(path.stem.split("-")[1]) for path in self.folder.glob("shard-*.jsonl")]
            shard = self.folder / f"shard-{max(numbers, default=-1) + 1:05d}.jsonl"
            try:
                with open(shard, "a", encoding="utf-8") as handle:
                    yield done, ShardWriter(handle, done, self.key)
            finally:
                if shard.is_file() and shard.stat().st_size == 0:
                    shard.unlink()  # a run that finished nothing leaves no empty shard behind
                if not any(self.folder.glob("shard-*.jsonl")):
                    (self.folder / ".lock").unlink(missing_ok=True)
                    if not any(self.folder.iterdir()):
                        self.folder.rmdir()  # nor an empty folder
