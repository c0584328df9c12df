"""What identifies a model for a resumable job's manifest: where it comes from (a local folder, or a Hub id and the
commit its files were downloaded at) and a fingerprint of its files, so that parts written with one model are never
merged with another's.

The fingerprint hashes the small files that decide the output (config, tokenizer, training record, weight index)
whole, and of each safetensors file its header (names, shapes, offsets) and three 64 KiB samples of its data: a
retrained or replaced model changes them, and a 16 GB checkpoint is fingerprinted in milliseconds.

The data a job reads is fingerprinted too (`data_content`): a manifest that held only the data file's path would
let a rerun on an edited file attach the old results to other rows (ids are row positions when the data has no id
column).
"""

import hashlib
import os
from pathlib import Path
from typing import Any

SMALL_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "dhrd_training.json",
    "model.safetensors.index.json",
)
SAMPLE_BYTES = 64 * 1024
SAMPLE_BYTES_DATA = 1024 * 1024  # of a data file: its first and last MiB
CONTENT_OF = "content_of"  # the key naming what a content entry fingerprints (`shards` names it when it changed)


def model_identity(model: str, gguf_file: str | None = None) -> dict:
    """`{"source", "revision", "fingerprint"}` of a local folder or a Hub id.

    A folder is fingerprinted (it can be retrained in place), with the GGUF file a backbone loads from when there is
    one. A Hub id is its commit: the commit names its files, and the snapshot folder fills up as a run downloads
    them (weights, tokenizer), so a fingerprint taken before the first run would differ from one taken after it and
    a resumed job would look like another's."""
    folder = Path(model)
    if folder.is_dir():
        fingerprint = folder_fingerprint(folder)
        if gguf_file:  # a GGUF backbone's weights, wherever in the folder (no safetensors beside them)
            path = folder / gguf_file
            fingerprint = hashlib.sha256(fingerprint.encode() + _file_sample(path)).hexdigest()
        return {"source": str(folder.resolve()), "revision": None, "fingerprint": fingerprint}
    from transformers.utils import cached_file

    # .../snapshots/<commit>/<file>, downloaded if needed (a GGUF repository has no config.json, and may keep its
    # files in folders)
    file = Path(cached_file(model, gguf_file or "config.json"))
    snapshot = next(parent for parent in file.parents if parent.parent.name == "snapshots")
    return {"source": model, "revision": snapshot.name, "fingerprint": None}


def hub_models_by_commit(stored: Any, wanted: Any) -> Any:
    """`stored` (a job's manifest as an older version wrote it) with each Hub model that `wanted` names by the same id
    and commit taken as that model: versions before 2026-12-08 recorded a fingerprint of the snapshot folder
    instead, which the commit decides."""
    if not (isinstance(stored, dict) and isinstance(wanted, dict)):
        return stored
    if set(wanted) == {"source", "revision", "fingerprint"} and wanted["revision"] and wanted["fingerprint"] is None:
        same = stored.get("source") == wanted["source"] and stored.get("revision") == wanted["revision"]
        return {**stored, "fingerprint": None} if same else stored
    return {key: hub_models_by_commit(value, wanted.get(key)) for key, value in stored.items()}


def folder_fingerprint(folder: Path) -> str:
    digest = hashlib.sha256()
    for name in SMALL_FILES:
        path = folder / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes())
    for path in sorted(folder.glob("*.safetensors")):
        digest.update(path.name.encode() + b"\0" + _safetensors_sample(path))
    return digest.hexdigest()


def _safetensors_sample(path: Path) -> bytes:
    """The file's size, its header, and 64 KiB from the start, middle and end of its data."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        header_length = int.from_bytes(handle.read(8), "little")
        header = handle.read(min(header_length, size))
    return size.to_bytes(8, "little") + header + _samples(path, 8 + header_length, size)


def _file_sample(path: Path) -> bytes:
    """The file's size, and 64 KiB from its start, middle and end."""
    size = path.stat().st_size
    return size.to_bytes(8, "little") + _samples(path, 0, size)


def _samples(path: Path, start: int, size: int) -> bytes:
    """64 KiB from the start, middle and end of what follows `start` in a file of `size` bytes."""
    parts = []
    with open(path, "rb") as handle:
        for offset in (start, start + max(0, size - start) // 2, max(start, size - SAMPLE_BYTES)):
            handle.seek(offset)
            parts.append(handle.read(SAMPLE_BYTES))
    return b"".join(parts)


def data_content(source: str, file: str | os.PathLike | None, dataset: Any = None) -> dict:
    """What a split's rows are, for a job's manifest: `{"content_of": what, ...its fingerprint}`.

    A data file (`file`): its resolved path, its size and a hash of its first and last MiB (the whole file when it
    is at most 2 MiB). Not its modification time: a file touched or saved again unchanged still resumes. Cheap on
    any size, at the cost of missing an edit that keeps the size and touches neither end of a file over 2 MiB.
    Otherwise (a Hub dataset, a `save_to_disk` folder, a built-in task) `dataset`'s own `datasets` fingerprint:
    the hash of its rows (built in memory), of its cache files (Hub: the revision and files they came from, and the
    cache files' times, so a cache rebuilt from the same data refuses too: the safe side), or the one `save_to_disk`
    stored. `source` names it in messages (`LabelledData.source`)."""
    if file is not None:
        path = Path(file).resolve()
        size = path.stat().st_size
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            digest.update(handle.read(SAMPLE_BYTES_DATA))
            if size > SAMPLE_BYTES_DATA:
                handle.seek(max(SAMPLE_BYTES_DATA, size - SAMPLE_BYTES_DATA))
                digest.update(handle.read())
        return {CONTENT_OF: str(path), "size": size, "sha256_first_last_mib": digest.hexdigest()}
    return {CONTENT_OF: source, "datasets_fingerprint": dataset._fingerprint}


def data_identity(data: Any, split: str) -> dict:
    """A job's manifest entry for the rows of `split` of a `trainer.data.labelled.LabelledData`: how they are
    described and read (`DatasetArguments.job_description`) and their content (`data_content`: its file, else the
    loaded split)."""
    from ..data.description import canonical_split  # here, not above: the data layer imports this package

    split = canonical_split(split)
    content = data_content(data.source(split), data.args.file_for(split), data.require(split))
    return {**data.args.job_description(split), "content": content}
