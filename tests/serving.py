"""A real vLLM OpenAI-compatible server process on loopback, from the serving virtualenv (`make serving-env`)."""

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT


def serving_python() -> str:
    """The serving environment's interpreter; skip (with the reason) when it is not installed."""
    python = os.environ.get("DHRD_SERVING_PYTHON") or str(PROJECT_ROOT / ".venv-vllm" / "bin" / "python")
    if not Path(python).is_file():
        pytest.skip(f"vLLM serving environment not found at {python}: run `make serving-env` (CI does)")
    return python


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serving_env(cache_dir: Path) -> dict[str, str]:
    """vLLM's caches in a folder we own, a bounded CPU KV cache, and no Hub access."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("VLLM_", "PYTEST"))}
    env.update(
        VLLM_CPU_KVCACHE_SPACE="1",
        VLLM_CACHE_ROOT=str(cache_dir / "vllm"),
        TORCHINDUCTOR_CACHE_DIR=str(cache_dir / "inductor"),
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
    )
    return env


class VllmServer:
    """`python -m vllm.entrypoints.openai.api_server` in its own process group (vLLM spawns an engine process)."""

    def __init__(self, model_dir: Path, log_dir: Path, name: str, extra_args: tuple[str, ...] = ()) -> None:
        self.python = serving_python()
        self.model_dir, self.log_dir, self.name, self.extra_args = model_dir, log_dir, name, extra_args
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 300.0) -> "VllmServer":
        self.starts += 1
        log = open(self.log_dir / f"vllm-{self.name}-{self.starts}.log", "w")
        command = [
            self.python,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(self.model_dir),
            "--served-model-name",
            self.name,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--max-model-len",
            "2048",
            "--enforce-eager",
            *self.extra_args,
        ]
        self.process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=serving_env(self.log_dir),
            cwd=self.log_dir,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"vLLM exited with {self.process.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/v1/models", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(1)
        self.kill()
        raise TimeoutError(f"vLLM did not come up within {timeout} s; see {log.name}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None
