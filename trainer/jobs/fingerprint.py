"""What identifies a model for a resumable job's manifest: where it comes from (a local folder, or a Hub id and the
commit its files were downloaded at) and a fingerprint of its files, so that parts written with one model are never
merged with another's.

The fingerprint hashes the small files that decide the output (config, tokenizer, training record, weight index)
whole, and of each safetensors file its header (names, shapes, offsets) and three 64 KiB samples of its data: a
retrained or replaced model changes them, and a 16 GB checkpoint is fingerprinted in milliseconds.
"""

import hashlib
from pathlib import Path

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


def model_identity(model: str) -> dict:
    """`{"source", "revision", "fingerprint"}` of a local folder or a Hub id (its cached snapshot)."""
    folder = Path(model)
    if folder.is_dir():
        return {"source": str(folder.resolve()), "revision": None, "fingerprint": folder_fingerprint(folder)}
    from transformers.utils import cached_file

    config = Path(cached_file(model, "config.json"))  # .../snapshots/<commit>/config.json, downloaded if needed
    snapshot = config.parent
    return {"source": model, "revision": snapshot.name, "fingerprint": folder_fingerprint(snapshot)}


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
        parts = [size.to_bytes(8, "little"), handle.read(min(header_length, size))]
        start = 8 + header_length
        for offset in (start, start + max(0, size - start) // 2, max(start, size - SAMPLE_BYTES)):
            handle.seek(offset)
            parts.append(handle.read(SAMPLE_BYTES))
    return b"".join(parts)
