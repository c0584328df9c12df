"""Atomic writes of whole folders, so that a crash never leaves a half-written checkpoint behind."""

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO


def _umask() -> int:
    mask = os.umask(0o022)  # the only portable way to read it is to set it; restored at once
    os.umask(mask)
    return mask


def _give_default_permissions(path: Path, directory: bool) -> None:
    """`mkdtemp`/`mkstemp` create owner-only (0700/0600) entries; give the result what `mkdir`/`open` would have, so a
    checkpoint in a shared cache or output folder stays readable by the group and others the umask allows."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def give_default_permissions(folder: str | os.PathLike) -> None:
    """Files written by libraries through temporary files (transformers' `model.safetensors` is one) come out
    owner-only (0600); give every file in `folder` what `open` would have given it."""
    for path in Path(folder).rglob("*"):
        if path.is_file() and not path.is_symlink():
            _give_default_permissions(path, directory=False)


@contextlib.contextmanager
def atomic_directory(final_path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder next to `final_path`; on success it is renamed to `final_path`.

    The temporary folder lives in the same parent (same filesystem), so the final `rename` is atomic. On any error,
    the temporary folder is removed and `final_path` is left as it was.
    """
    final_path = Path(final_path)
    if final_path.exists() and not overwrite:
        raise FileExistsError(f"{final_path} already exists; pass overwrite=True to replace it.")
    final_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = Path(tempfile.mkdtemp(prefix=f".{final_path.name}.tmp-", dir=final_path.parent))
    try:
        yield tmp_path
        _give_default_permissions(tmp_path, directory=True)
        give_default_permissions(tmp_path)
        if final_path.exists():
            backup = Path(tempfile.mkdtemp(prefix=f".{final_path.name}.old-", dir=final_path.parent))
            os.replace(final_path, backup / final_path.name)
            os.replace(tmp_path, final_path)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(tmp_path, final_path)
    finally:
        if tmp_path.exists():
            shutil.rmtree(tmp_path, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Yield a handle on a temporary file next to `path`; on success it is synced and renamed to `path`, on any
    error removed, so `path` is never half written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _give_default_permissions(Path(tmp), directory=False)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> None:
    """One JSON object a line, written as it is produced, through a temporary file and `os.replace`."""
    with atomic_file(path, "w") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file through a temporary file and `os.replace`."""
    with atomic_file(path, "w") as handle:
        handle.write(text)
