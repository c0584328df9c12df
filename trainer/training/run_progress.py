"""The Trainer's progress output with the run's name on it (see `trainer.jobs.progress` for why)."""

import time
from collections.abc import Callable

from transformers import TrainerCallback

HEARTBEAT_SECONDS = 30.0


def run_label(args) -> str:
    """The name a run's progress lines carry: `--run_name`, else the output folder's name."""
    return args.run_name or str(args.output_dir).rstrip("/").rsplit("/", 1)[-1]


class RunProgressCallback(TrainerCallback):
    """The Trainer's progress output with the run's name on it.

    In a terminal (and unless `disable_tqdm`): a training bar `pooled: 40%|████ | 24/60` whose log lines are
    prefixed with the run's name; elsewhere one line per logging step, `[pooled] step 24/60 (40%) loss=0.69 ...`.
    Replaces transformers' `ProgressCallback` / `PrinterCallback` (see `DHRDTrainer`)."""

    def __init__(self, label: str, bar: bool, clock: Callable[[], float] = time.monotonic):
        self.label, self.bar = label, bar
        self._training_bar = None
        self._step = 0
        self._clock = clock
        self._started = self._last_line = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        if self.bar:
            from tqdm.auto import tqdm

            self._training_bar = tqdm(total=state.max_steps, desc=self.label, dynamic_ncols=True)
        else:
            print(f"[{self.label}] training: {state.max_steps} steps", flush=True)
        self._step = 0
        self._started = self._last_line = self._clock()

    def on_step_end(self, args, state, control, **kwargs):
        if self._training_bar is not None:
            self._training_bar.update(state.global_step - self._step)
        self._step = state.global_step
        now = self._clock()
        if self._training_bar is None and state.is_world_process_zero and now - self._last_line >= HEARTBEAT_SECONDS:
            self._last_line = now  # a log line at least every 30 s, whatever --logging_steps says
            print(self._heartbeat(args, state, now - self._started), flush=True)

    def _heartbeat(self, args, state, elapsed: float) -> str:
        rows = state.global_step * args.per_device_train_batch_size * args.gradient_accumulation_steps
        rows *= max(1, args.world_size)
        share = f" ({100 * state.global_step / state.max_steps:.0f}%)" if state.max_steps else ""
        left = elapsed / state.global_step * (state.max_steps - state.global_step) if state.global_step else 0.0
        return (
            f"[{self.label}] step {state.global_step}/{state.max_steps}{share} {rows / elapsed:.2f} rows/s, "
            f"{_duration(elapsed)} elapsed, about {_duration(left)} left"
        )

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        values = " ".join(
            f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
            for key, value in logs.items()
            if key != "total_flos"
        )
        share = f" ({100 * state.global_step / state.max_steps:.0f}%)" if state.max_steps else ""
        line = f"[{self.label}] step {state.global_step}/{state.max_steps}{share} {values}"
        if self._training_bar is not None:
            self._training_bar.write(line)
        else:
            print(line, flush=True)

    def on_train_end(self, args, state, control, **kwargs):
        if self._training_bar is not None:
            self._training_bar.close()
            self._training_bar = None


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"
