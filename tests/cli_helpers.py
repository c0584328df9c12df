"""Running `dhrd` as a user's shell would (a subprocess), and the Hub stand-in on loopback."""

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from conftest import PROJECT_ROOT
from serving import free_port


def dhrd(*args: str, env_extra: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    env = {k: v for k, v in env.items() if v is not None}
    completed = subprocess.run(
        [sys.executable, "-m", "trainer.cli", *args], capture_output=True, env=env, timeout=timeout, cwd=PROJECT_ROOT
    )
    # Decoded by hand: `text=True` would turn a carriage return into a newline, hiding redrawn bars from the tests.
    completed.stdout, completed.stderr = (
        stream.decode("utf-8", "replace") for stream in (completed.stdout, completed.stderr)
    )
    return completed


def dhrd_in_process(capsys, *argv: str) -> str:
    """`dhrd <argv>` in this process (`trainer.cli.main`, as the shell runs it, without a new interpreter's start):
    its standard output; a non-zero exit fails the test with the command's one-line error."""
    from trainer.cli import main

    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, (err.strip().splitlines() or ["(no output)"])[-1]
    return out


def refusal_in_process(capsys, *argv: str) -> str:
    """`dhrd <argv>` in this process, which must fail: its one-line error (the last line of stderr, no traceback)."""
    from trainer.cli import main

    capsys.readouterr()
    code = main(list(argv))
    _, err = capsys.readouterr()
    assert code != 0 and "Traceback" not in err, err[-3000:]
    line = err.strip().splitlines()[-1]
    assert line.startswith("dhrd ") and ": error: " in line or line.startswith("dhrd: unknown command"), err[-3000:]
    return line


@contextlib.contextmanager
def fake_hub(record_dir: Path) -> Iterator[dict[str, str]]:
    """`tests/fake_hub.py` on a free port; yields the environment that points huggingface_hub at it."""
    port = free_port()
    hub = subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "tests" / "fake_hub.py"), str(port), str(record_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert hub.stdout.readline().strip() == "ready"
        yield {"HF_HUB_OFFLINE": None, "HF_ENDPOINT": f"http://127.0.0.1:{port}"}
    finally:
        hub.kill()
        hub.wait()
        time.sleep(0.1)


def error_line(completed: subprocess.CompletedProcess) -> str:
    """The failure's one line (the last line of stderr; log lines may precede it), checked to be the CLI's own."""
    assert completed.returncode != 0, completed.stdout[-2000:]
    assert "Traceback" not in completed.stderr, completed.stderr[-3000:]
    line = completed.stderr.strip().splitlines()[-1]
    assert line.startswith("dhrd ") and ": error: " in line or "unknown command" in line, completed.stderr[-3000:]
    return line
