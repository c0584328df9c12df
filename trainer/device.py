"""Where inference runs: the one rule every compute path outside the Trainer follows (`dhrd predict`, `evaluate`,
the local teacher of `rationales`, the demo's measurements).

`--device auto` (the default) takes the first of CUDA, Apple MPS and the CPU that this machine has; `cpu`, `cuda`,
`cuda:1` or `mps` name one, and a device that is not there is refused in one line before anything is loaded.
`--dtype` loads the weights in that precision. `auto` (the default) is bfloat16 where the device computes it
natively (`native_bf16`: an Ampere+ GPU, a CPU with AVX512-BF16 or AMX whose bf16 products measure faster than
float32's: 1.85x float32's throughput on e-SNLI on such a CPU, 99.2% of labels as in float32, accuracy unchanged:
docs/RESULTS.md, "Precision"), else the model as saved; `float32` gives
exact float32 everywhere. `$DHRD_DTYPE` sets what `auto` means on a machine (the test suite pins float32, so its
results do not depend on the CPU). The Trainer keeps its own rule (`TrainingArguments`: every GPU it sees, or
`--use_cpu`).

Loading goes through `load_kwargs`, so a model is placed once, at load time, and no module calls `.cuda()`.
"""

import functools
import os
import time
from dataclasses import dataclass, field
from typing import Literal

import torch

from .jobs.ranks import launched_processes

DeviceDtype = Literal["auto", "float32", "bfloat16", "float16"]
DEVICE_HELP = (
    "Where the model runs: 'auto' (CUDA, then Apple MPS, then the CPU), or 'cpu', 'cuda', 'cuda:N', 'mps'. A device "
    "this machine lacks is refused before anything loads."
)
DTYPE_HELP = (
    "Weights' precision on load: auto (bfloat16 where the device computes it natively: a GPU with bf16, a CPU with "
    "AVX512-BF16 or AMX where bf16 measures faster; else as saved), float32 (exact), bfloat16 or float16. "
    "$DHRD_DTYPE sets what auto means."
)
DTYPE_ENV = "DHRD_DTYPE"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
BF16_MIN_SPEEDUP = 1.2  # what bf16 must gain on a CPU to be the default: a clear margin, so no machine flips
CPU_BATCH_TOKENS = 4096  # measured best for the CPU (docs/RESULTS.md, "Batched inference")
ACCELERATOR_BATCH_TOKENS = 16384


@dataclass
class DeviceArguments:
    """`--device` and `--dtype`, shared by every subcommand that runs a model outside the Trainer; checked when
    parsed, so a missing GPU is one line before any model or data loads."""

    device: str = field(default="auto", metadata={"help": DEVICE_HELP})
    dtype: DeviceDtype | None = field(default="auto", metadata={"help": DTYPE_HELP})

    def __post_init__(self) -> None:
        self.torch_device = resolve_device(self.device)
        self.torch_dtype = resolve_dtype(self.dtype, self.torch_device)

    def load_kwargs(self) -> dict:
        return load_kwargs(self.torch_device, self.torch_dtype)

    @property
    def precision(self) -> str:
        """The precision the weights load in, as a manifest records it and a log line says it ('as saved' when
        none is asked for)."""
        return str(self.torch_dtype).removeprefix("torch.") if self.torch_dtype is not None else "as saved"

    def describe(self) -> str:
        """`cpu, bfloat16 (native here; --dtype float32 for exact float32)`: for the log line that names the device."""
        how = ""
        if self.dtype in (None, "auto") and _machine_dtype() is None and self.torch_dtype == torch.bfloat16:
            how = " (native here; --dtype float32 for exact float32)"
        return f"{self.torch_device}, {self.precision}{how}"


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """The device `spec` names, checked against this machine (a `ValueError` of one line when it is not here)."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    spec = spec.strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", _current_cuda_index())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ValueError(f"--device {spec}: not a device; use auto, cpu, cuda, cuda:N or mps.") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build of torch" if torch.version.cuda is None else "no CUDA GPU visible"
            raise ValueError(f"--device {spec}: this machine has {build}; use --device cpu (or auto).")
        count = torch.cuda.device_count()
        index = _current_cuda_index() if device.index is None else device.index
        if index >= count:
            raise ValueError(f"--device {spec}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}.")
        return torch.device("cuda", index)
    if device.type == "mps":
        if not _mps_available():
            raise ValueError(f"--device {spec}: Apple MPS is not available here; use --device cpu (or auto).")
        return device
    raise ValueError(f"--device {spec}: unsupported device type {device.type!r}; use auto, cpu, cuda, cuda:N or mps.")


def _current_cuda_index() -> int:
    """The GPU that `auto` and a bare `cuda` name: a launched rank's own (`LOCAL_RANK` under torchrun / accelerate
    launch, so N processes use N GPUs, and none opens a context on the first GPU), else the current one."""
    if launched_processes() > 1 and "LOCAL_RANK" in os.environ:
        return int(os.environ["LOCAL_RANK"]) % torch.cuda.device_count()
    return torch.cuda.current_device()


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def native_bf16(device: torch.device | None = None) -> bool:
    """Whether `device` (default: the first GPU, else the CPU) computes bf16 natively: a CUDA GPU with bf16; a CPU
    with AVX512-BF16 or AMX whose bf16 matrix products measure at least `BF16_MIN_SPEEDUP` times float32's. The
    flags alone do not say it: an Intel Xeon that reports AVX512-BF16 (no AMX) ran bf16 products at 0.66x float32's
    and a SmolLM2 forward 1.6x slower (docs/RESULTS.md, "Precision"), where an AMD Zen 4 with the same flag ran
    e-SNLI 1.85x faster."""
    if device is None:
        device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if device.type == "cuda":  # Ampere and later; `is_bf16_supported()` also counts emulation (T4, V100)
        return torch.cuda.get_device_capability(device) >= (8, 0)
    if device.type != "cpu":
        return False
    probes = (getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return any(probe is not None and probe() for probe in probes) and cpu_bf16_speedup() >= BF16_MIN_SPEEDUP


@functools.cache
def cpu_bf16_speedup() -> float:
    """float32's time over bf16's for the matrix product of a small model's MLP (`[256, 576] x [576, 1536]`) on
    this CPU with this process's threads: best of 8 runs each, measured once per process (~0.1 s)."""

    numbers = torch.Generator().manual_seed(0)  # its own: the caller's random state stays as it was

    def best_seconds(dtype: torch.dtype) -> float:
        a = torch.randn(256, 576, generator=numbers).to(dtype)
        b = torch.randn(576, 1536, generator=numbers).to(dtype)
        a @ b  # the first product pays for the kernel's set-up
        times = []
        for _ in range(8):
            start = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - start)
        return min(times)

    return best_seconds(torch.float32) / best_seconds(torch.bfloat16)


def _machine_dtype() -> str | None:
    """What `$DHRD_DTYPE` makes `auto` mean on this machine (None: unset, or `auto` itself)."""
    value = os.environ.get(DTYPE_ENV, "").strip()
    return None if value in ("", "auto") else value


def resolve_dtype(name: str | None, device: torch.device | None = None) -> torch.dtype | None:
    """The torch dtype `--dtype` names (None: as saved). `auto` (or None): `$DHRD_DTYPE` when set, else bfloat16
    where `device` computes it natively, else as saved."""
    if name in (None, "auto"):
        name = _machine_dtype() or ("bfloat16" if native_bf16(device) else None)
        if name is None:
            return None
        if name not in DTYPES:
            raise ValueError(f"${DTYPE_ENV}={name}: choose from auto, {', '.join(DTYPES)}.")
    if name not in DTYPES:
        raise ValueError(f"--dtype {name}: choose from auto, {', '.join(DTYPES)}.")
    return DTYPES[name]


def load_kwargs(device: torch.device, dtype: torch.dtype | None = None) -> dict:
    """`from_pretrained` keywords that load the weights straight onto `device` (no CPU copy of a large model first),
    in `dtype` when one is asked for."""
    kwargs: dict = {"device_map": str(device)}
    if dtype is not None:
        kwargs["dtype"] = dtype
    return kwargs


def default_batch_tokens(device: torch.device) -> int:
    """The padded-token budget per inference batch: small on a CPU (cache-bound), large on an accelerator."""
    return CPU_BATCH_TOKENS if device.type == "cpu" else ACCELERATOR_BATCH_TOKENS
