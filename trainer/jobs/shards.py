"""Resumable, exactly-once result shards: what `dhrd rationales` and `dhrd predict` write while they work.

Each run appends JSON lines to a shard of its own (`shard-00003.jsonl`) and flushes and fsyncs after every finished
unit of work (a rationale, a batch of predictions); a rerun reads all shards, skips the keys already there and
appends to a new shard. A kill therefore loses only the work in flight: a line cut short has no newline and is
ignored on load (that key is done again), and no key is ever kept twice. A lock file keeps two runs off one folder.

A job that knows what its results depend on (the model, the data, the settings) gives a `manifest`: it is written
next to the shards, and a rerun with another manifest is refused (naming what differs) instead of merging two jobs'
results; `overwrite=True` removes the earlier job's results and starts over. A data file edited since (same path,
other content: `fingerprint.data_content`) is refused in words of its own, naming the file.

Memory stays flat on millions of rows: what is done is an index (a key's 8-byte hash, its shard and byte offset,
16 bytes a record), and a record is read back from its shard when it is asked for.
"""

import dataclasses
import fcntl
import json
import os
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

import numpy as np

from .fingerprint import CONTENT_OF, hub_models_by_commit
from .ranks import Ranks

HASH_MASK = (1 << 64) - 1


def key_hash(key: str) -> int:
    """A 64-bit hash of a record key, for this process's in-memory index (never stored)."""
    return hash(key) & HASH_MASK


def require_unique_ids(ids: Iterable | Callable[[], Iterable], column: str, where: str) -> None:
    """Results are kept by row id: two rows with one id would share (and lose) a result. Checked by 8-byte hashes,
    so a million ids cost 8 MB; `ids` may be a function that yields them again (a second pass names repeats)."""
    source = ids if callable(ids) else (lambda: ids)
    hashes = np.fromiter((key_hash(str(value)) for value in source()), dtype=np.uint64)
    hashes.sort()
    suspects = set(hashes[1:][hashes[1:] == hashes[:-1]].tolist())
    if not suspects:
        return
    counts = Counter(str(value) for value in source() if key_hash(str(value)) in suspects)
    repeated = [key for key, count in counts.items() if count > 1]
    if repeated:
        raise ValueError(
            f"{where}: column {column!r} must identify rows uniquely; repeated ids {repeated[:5]} (use --id_column)."
        )


def complete_records(folder: Path) -> Iterator[tuple[int, int, dict]]:
    """`(shard number, byte offset, record)` of every complete line of every shard, in shard order; a line cut short
    by a kill (no newline) or unreadable is skipped."""
    for shard in sorted(folder.glob("shard-*.jsonl")):
        number, offset = int(shard.stem.split("-")[1]), 0
        with open(shard, "rb") as handle:
            for line in handle:
                if line.endswith(b"\n"):
                    try:
                        yield number, offset, json.loads(line)
                    except json.JSONDecodeError:
                        pass
                offset += len(line)


class ShardIndex:
    """The finished records of a job, by key: `key in index`, `index[key]` (read from its shard), `len(index)`.

    Entries are `(hash, shard number, byte offset)` in numpy arrays; a record written by this run is added with
    `add` and found after the next lookup merges it in. The first record of a key wins (as on every load)."""

    def __init__(self, folder: Path, key: str) -> None:
        self.folder, self.key = folder, key
        self._hashes = np.empty(0, dtype=np.uint64)
        self._shards = np.empty(0, dtype=np.int32)
        self._offsets = np.empty(0, dtype=np.int64)
        self._new: tuple[array, array, array] = (array("Q"), array("i"), array("q"))
        self._files: dict[int, IO[bytes]] = {}
        self._stack = ExitStack()

    @staticmethod
    def shard_path(folder: Path, number: int) -> Path:
        return folder / f"shard-{number:05d}.jsonl"

    def scan(self) -> None:
        """Index every complete line of every shard (a line cut short by a kill has no newline: not done)."""
        for number, offset, record in complete_records(self.folder):
            self.add(str(record[self.key]), number, offset)

    def add(self, key: str, shard: int, offset: int) -> None:
        hashes, shards, offsets = self._new
        hashes.append(key_hash(key))
        shards.append(shard)
        offsets.append(offset)

    def _merge(self) -> None:
        """New entries join the sorted arrays by insertion (no re-sort of what is there: a window's merge costs one
        copy of the index); of equal hashes the earlier entry stays."""
        if not len(self._new[0]):
            return
        hashes = np.frombuffer(self._new[0], dtype=np.uint64)
        hashes, first = np.unique(hashes, return_index=True)  # sorted; `first`: each hash's earliest new entry
        shards = np.frombuffer(self._new[1], dtype=np.int32)[first]
        offsets = np.frombuffer(self._new[2], dtype=np.int64)[first]
        self._new = (array("Q"), array("i"), array("q"))
        places, known = self._lookup(hashes)
        unseen = ~known
        places, hashes, shards, offsets = places[unseen], hashes[unseen], shards[unseen], offsets[unseen]
        self._hashes = np.insert(self._hashes, places, hashes)
        self._shards = np.insert(self._shards, places, shards)
        self._offsets = np.insert(self._offsets, places, offsets)

    def _lookup(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where each hash value is (or would go) in the sorted index, and whether it is there."""
        places = np.searchsorted(self._hashes, values)
        if not len(self._hashes):
            return places, np.zeros(len(values), dtype=bool)
        return places, self._hashes[np.minimum(places, len(self._hashes) - 1)] == values

    def _position(self, key: str) -> int | None:
        self._merge()
        places, known = self._lookup(np.array([key_hash(key)], dtype=np.uint64))
        return int(places[0]) if known[0] else None

    def missing(self, keys: list[str]) -> list[int]:
        """Positions of the `keys` not done (one vectorised lookup for a window of keys)."""
        self._merge()
        _, known = self._lookup(np.fromiter((key_hash(key) for key in keys), dtype=np.uint64, count=len(keys)))
        return np.flatnonzero(~known).tolist()

    def __contains__(self, key: str) -> bool:
        return self._position(key) is not None

    def __len__(self) -> int:
        self._merge()
        return len(self._hashes)

    def __getitem__(self, key: str) -> dict:
        return json.loads(self.raw(key))

    def raw(self, key: str) -> bytes:
        """The record's JSON line, as stored (with its newline)."""
        position = self._position(key)
        if position is None:
            raise KeyError(key)
        number = int(self._shards[position])
        if number not in self._files:
            self._files[number] = self._stack.enter_context(open(self.shard_path(self.folder, number), "rb"))
        handle = self._files[number]
        handle.seek(int(self._offsets[position]))
        line = handle.readline()
        if str(json.loads(line)[self.key]) != key:  # two keys with one 64-bit hash: never silently swap records
            raise RuntimeError(f"{self.folder}: keys {key!r} and another share a hash; rerun with --overwrite.")
        return line

    def close(self) -> None:
        self._stack.close()
        self._files.clear()


class ShardWriter:
    """Appends records to the run's shard; `write` makes a group of records durable at once."""

    def __init__(self, handle: IO[bytes], number: int, index: ShardIndex) -> None:
        self._handle, self._number, self._index = handle, number, index
        self._offset = handle.tell()

    def write(self, records: Iterable[dict]) -> None:
        lines = [(str(record[self._index.key]), (json.dumps(record) + "\n").encode()) for record in records]
        self._handle.write(b"".join(line for _, line in lines))
        self._handle.flush()
        os.fsync(self._handle.fileno())
        for key, line in lines:
            self._index.add(key, self._number, self._offset)
            self._offset += len(line)


class JobMismatch(ValueError):
    """The folder holds the results of another job."""


MANIFEST = "manifest.json"


class ShardedResults:
    """The shards of one job in `folder`, keyed by the record field `key`; `manifest` (JSON-able) says what the
    results depend on."""

    def __init__(
        self,
        folder: str | os.PathLike,
        key: str = "id",
        manifest: dict | None = None,
        defaults: dict | None = None,
    ) -> None:
        """`defaults` (shaped like `manifest`) says what a setting an older version's manifest does not record
        meant: a flag added since, at its default, keeps what that version did, so its results are this job's."""
        self.folder = Path(folder)
        self.key = key
        self.manifest = manifest
        self.defaults = defaults or {}

    def check_manifest(self, reader: bool = False) -> None:
        """Refuse another job's results, writing nothing (what `open` checks first; a dry run asks only this). A
        `reader` (a report over the results) is not told to start over, which would remove them."""
        path = self.folder / MANIFEST
        shards = list(self.folder.glob("shard-*.jsonl"))
        start_over = "" if reader else ", or pass --overwrite to start over (the results are removed)"
        if path.is_file():
            stored = json.loads(path.read_text(encoding="utf-8"))
            stored = with_defaults(stored, self.defaults, self.manifest or {})
            stored = hub_models_by_commit(stored, self.manifest or {})
            if self.manifest is not None and stored != self.manifest:
                changed = changed_contents(stored, self.manifest)
                if changed and not describe_differences(stored, self.manifest, skip=changed):
                    raise JobMismatch(
                        f"{', '.join(changed.values())} changed since the results in {self.folder} were computed from "
                        f"it (other size or content: results kept by row id would be attached to other rows); restore "
                        f"it{start_over}."
                    )
                advice = (
                    "give the settings of the job that wrote them (reading them changes nothing)."
                    if reader
                    else "pass --overwrite to start over (they are removed), or rerun with the same settings."
                )
                raise JobMismatch(
                    f"{self.folder} holds the results of another job ({describe_differences(stored, self.manifest)}); "
                    + advice
                )
        elif shards and self.manifest is not None:
            raise JobMismatch(
                f"{self.folder} holds results without a manifest (an older version's, or copied in): which job wrote "
                "them cannot be told" + ("." if reader else "; pass --overwrite to start over (they are removed).")
            )

    def _settle_manifest(self, overwrite: bool) -> None:
        """Refuse another job's results (or start over from nothing with `overwrite`), then record this job's."""
        path = self.folder / MANIFEST
        if overwrite:
            for stale in [*self.folder.glob("shard-*.jsonl"), path]:
                stale.unlink(missing_ok=True)
        self.check_manifest()
        if self.manifest is not None and not path.is_file():
            text = json.dumps(self.manifest, indent=2, sort_keys=True) + "\n"
            tmp = path.with_name(f".{MANIFEST}.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)

    def load(self) -> dict[str, dict]:
        """Finished records by key, from every shard, in memory (for small jobs and inspection)."""
        results: dict[str, dict] = {}
        for _, _, record in complete_records(self.folder):
            results.setdefault(str(record[self.key]), record)
        return results

    @contextmanager
    def reading(self) -> Iterator[ShardIndex]:
        """The index of what is done, for reading records back (no new shard, no lock: for after the run)."""
        index = ShardIndex(self.folder, self.key)
        index.scan()
        try:
            yield index
        finally:
            index.close()

    @contextmanager
    def open(self, overwrite: bool = False, ranks: Ranks | None = None) -> Iterator[tuple[ShardIndex, ShardWriter]]:
        """Lock the folder, check the manifest, index what is done, and open a new shard: `(done, writer)`. `done`
        grows with `write`.

        The ranks of one data-parallel job (`ranks`) share the folder: rank 0 settles the manifest (and removes
        an earlier job's results with `overwrite`) while the others wait, every rank indexes what is done, and each
        opens a shard of its own (numbered past every shard there, by rank). A rank's `done` holds what was there
        and what it writes itself; read the others' results after a barrier with `reading()`."""
        ranks = ranks or Ranks()
        made = [folder for folder in (self.folder, *self.folder.parents) if not folder.exists()]
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / (".lock" if ranks.main else f".lock-{ranks.rank}"), "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RuntimeError(f"Another run is writing to {self.folder}.") from None
            if ranks.main:
                self._settle_manifest(overwrite)
            ranks.barrier()
            if not ranks.main:
                self.check_manifest()
            done = ShardIndex(self.folder, self.key)
            done.scan()
            numbers = [int(path.stem.split("-")[1]) for path in self.folder.glob("shard-*.jsonl")]
            number = max(numbers, default=-1) + 1 + ranks.rank
            ranks.barrier()  # every rank has counted the shards before any rank adds one
            shard = ShardIndex.shard_path(self.folder, number)
            try:
                with open(shard, "ab") as handle:
                    yield done, ShardWriter(handle, number, done)
            finally:
                done.close()
                if shard.is_file() and shard.stat().st_size == 0:
                    shard.unlink()  # a run that finished nothing leaves no empty shard behind
                if not ranks.main:
                    (self.folder / f".lock-{ranks.rank}").unlink(missing_ok=True)
                elif not any(self.folder.glob("shard-*.jsonl")):
                    (self.folder / ".lock").unlink(missing_ok=True)
                    (self.folder / MANIFEST).unlink(missing_ok=True)
                    for folder in made:  # nor an empty folder, nor the parents this run made for it
                        if folder.is_dir() and not any(folder.iterdir()):
                            folder.rmdir()


def with_defaults(stored: dict, defaults: dict, wanted: dict) -> dict:
    """`stored` with the settings `wanted` names and `stored` does not filled in from `defaults` (nested alike)."""
    filled = dict(stored)
    for key, default in defaults.items():
        if key not in wanted:
            continue
        if key not in filled:
            filled[key] = default
        elif isinstance(filled[key], dict) and isinstance(default, dict) and isinstance(wanted[key], dict):
            filled[key] = with_defaults(filled[key], default, wanted[key])
    return filled


def dataclass_defaults(cls: type) -> dict:
    """The JSON form of an arguments dataclass's field defaults, for `ShardedResults(defaults=...)`."""
    values = {}
    for spec in dataclasses.fields(cls):
        if spec.default is not dataclasses.MISSING:
            values[spec.name] = spec.default
        elif spec.default_factory is not dataclasses.MISSING:
            values[spec.name] = spec.default_factory()
    return json.loads(json.dumps(values, default=str))


def changed_contents(stored: dict, wanted: dict) -> dict[str, str]:
    """`{leaf prefix: name}` of the content entries (`{"content_of": name, ...}`) that name the same data in both
    manifests with other fingerprints: the same file, edited since. Their leaves (a size, a hash) say nothing to a
    user; the name does."""
    found: dict[str, str] = {}

    def walk(was, now, prefix: str) -> None:
        if not (isinstance(was, dict) and isinstance(now, dict)):
            return
        if CONTENT_OF in was and was[CONTENT_OF] == now.get(CONTENT_OF) and was != now:
            found[prefix] = str(was[CONTENT_OF])
            return
        for key in was.keys() & now.keys():
            walk(was[key], now[key], f"{prefix}.{key}" if prefix else str(key))

    walk(stored, wanted, "")
    return found


def describe_differences(stored: dict, wanted: dict, most: int = 3, skip: dict[str, str] | None = None) -> str:
    """`model.fingerprint: was 'ab12…', now 'cd34…'; …`: the first leaves of two manifests that differ; an edited
    data file as `<file> changed (other content)`. Leaves under the prefixes of `skip` are left out (those of
    `changed_contents` when the caller says them itself)."""
    changed = changed_contents(stored, wanted) if skip is None else {}
    hidden = {**changed, **(skip or {})}
    differences = [f"{name} changed (other content)" for name in changed.values()]
    stored, wanted = _leaves(stored), _leaves(wanted)
    for key in sorted(set(stored) | set(wanted)):
        was, now = stored.get(key), wanted.get(key)
        if was != now and not any(key.startswith(f"{prefix}.") for prefix in hidden):
            differences.append(f"{key}: was {_short(was)}, now {_short(now)}")
    more = f"; and {len(differences) - most} more" if len(differences) > most else ""
    return "; ".join(differences[:most]) + more


def _leaves(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _leaves(item, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): value}


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
