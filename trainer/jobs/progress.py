"""Progress output that reads well in a terminal *and* in a log file.

tqdm redraws its bar with carriage returns: in a terminal that is a live bar, in a log (CI, `nohup`, `| tee`) it is
one endless line of half-drawn bars. So every long loop of this project goes through `progress_bar`, which is tqdm
when stderr is a terminal and otherwise prints a plain line every `interval` seconds; `quiet_library_bars` turns the
libraries' own bars (`datasets` maps, weight loading) off when stderr is not a terminal; and
`trainer.training.run_progress.RunProgressCallback` replaces the Trainer's unlabelled bar (or its bare
`print(logs)`) with one that says which run it belongs to (a module of its own: it needs transformers' Trainer
machinery, this one does not, so data and teacher code can import it).
"""

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def interactive() -> bool:
    """Whether stderr is a terminal (where tqdm's redrawn bars belong)."""
    return sys.stderr.isatty()


def quiet_library_bars() -> None:
    """Turn off `datasets`', transformers' and huggingface_hub's own progress bars (downloads) when stderr is not a
    terminal. (The GGUF conversion's bar: `trainer.embedded`.)"""
    if interactive():
        return
    import datasets
    import huggingface_hub
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    huggingface_hub.utils.disable_progress_bars()


@contextmanager
def datasets_bars_in_terminals_only() -> Iterator[None]:
    """`datasets`' bars (its `map`s) off for the block when stderr is not a terminal, as they were after it: the
    Python API's runs write logs too (nohup, CI), and the CLI's `quiet_library_bars` does not reach them."""
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    switch = not interactive() and not are_progress_bars_disabled()
    if switch:
        disable_progress_bars()
    try:
        yield
    finally:
        if switch:
            enable_progress_bars()


class LineProgress:
    """The subset of tqdm this project uses (`update`, `close`, context manager), as one line per `interval`
    seconds plus a final one: `Predicting: 1200/5000 rows (24%), 35.2 rows/s`."""

    def __init__(
        self,
        total: int | None,
        desc: str,
        unit: str = "it",
        initial: int = 0,
        disable: bool = False,
        interval: float = 30.0,
    ):
        self.total, self.desc, self.unit, self.interval, self.disable = total, desc, unit, interval, disable
        self.n = self._initial = initial
        self._start = self._last = time.monotonic()
        self._closed = False

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._print()

    def _print(self) -> None:
        if self.disable:
            return
        elapsed = max(time.monotonic() - self._start, 1e-9)
        share = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        of_total = f"/{self.total}" if self.total is not None else ""
        rate = (self.n - self._initial) / elapsed
        print(
            f"{self.desc}: {self.n}{of_total} {self.unit}s{share}, {rate:.1f} {self.unit}s/s",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._print()

    def __enter__(self) -> "LineProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress_bar(total: int | None, desc: str, unit: str = "it", initial: int = 0, disable: bool = False):
    """tqdm in a terminal, `LineProgress` elsewhere; both take `update(n)` and work as context managers."""
    if interactive():
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit, initial=initial, disable=disable, dynamic_ncols=True)
    return LineProgress(total, desc, unit, initial=initial, disable=disable)
