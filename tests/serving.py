"""A real vLLM OpenAI-compatible server process on loopback, from the serving virtualenv (`make serving-env`)."""

import os
import signal
import socket
import subprocess
import time
import urllib.error
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


class RequestGate:
    """A loopback HTTP proxy in front of a server that lets the first `allow` POSTs through and holds the rest.

    Tests that kill a process "mid-run" need the run to be mid-way when the kill lands, however fast the machine
    or however starved of CPU the test process is: the gate stops the client after exactly `allow` requests,
    until `open()`. Everything is forwarded unchanged; when the upstream server is down, the proxy drops the
    connection without an answer, as the dead server itself would.
    """

    def __init__(self, upstream: str, allow: int) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        gate = self
        self.upstream, self.allow = upstream, allow
        self.passed, self.held = 0, 0
        self._lock, self._opened = threading.Lock(), threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep the test output quiet
                pass

            def do_GET(self) -> None:
                self._forward(None)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with gate._lock:
                    admitted = gate.passed < gate.allow or gate._opened.is_set()
                    gate.passed += admitted
                    gate.held += not admitted
                if not admitted:
                    gate._opened.wait()
                self._forward(body)

            def _forward(self, body: bytes | None) -> None:
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization")}
                request = urllib.request.Request(gate.upstream + self.path, data=body, headers=headers)
                try:
                    with urllib.request.urlopen(request, timeout=300) as response:
                        status, payload = response.status, response.read()
                        content_type = response.headers["Content-Type"]
                except urllib.error.HTTPError as error:
                    status, content_type, payload = error.code, error.headers["Content-Type"], error.read()
                except OSError:
                    self.close_connection = True  # upstream down: answer nothing, like the dead server
                    return
                self.send_response(status)
                self.send_header("Content-Type", content_type or "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_until_holding(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.held:
            assert time.monotonic() < deadline, f"no request reached the gate after the first {self.allow}"
            time.sleep(0.05)

    def open(self) -> None:
        self._opened.set()

    def close(self) -> None:
        self._opened.set()
        self.server.shutdown()
        self.server.server_close()
