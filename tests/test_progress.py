"""Progress output: labelled with the run it belongs to, and plain lines (no carriage returns) in a log file."""

import subprocess
import sys

import pytest
from conftest import PROJECT_ROOT, tiny_dhrd
from datasets import Dataset

from trainer import DHRDTrainer, DHRDTrainingArguments
from trainer.jobs.progress import LineProgress, progress_bar
from trainer.training.run_progress import RunProgressCallback


def test_line_progress_prints_whole_lines_with_counts_and_a_final_line(capsys):
    bar = LineProgress(total=10, desc="Predicting", unit="row", initial=2, interval=0.0)
    with bar:
        bar.update(3)
        bar.update(5)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("Predicting: 5/10 rows (50%)")
    assert lines[-1].startswith("Predicting: 10/10 rows (100%)")
    assert len(lines) == 3  # two updates at interval 0, one on close


def test_line_progress_is_what_a_log_file_gets():
    assert isinstance(progress_bar(5, "x"), LineProgress)  # pytest captures stderr: not a terminal


def test_trainer_progress_names_the_run_and_writes_no_carriage_returns(tmp_path, tokenizer):
    """A real 2-step training in a child process whose stdout/stderr are a file, as under nohup or CI."""
    script = f"""
import sys

import pytest
sys.path.insert(0, {str(PROJECT_ROOT / "tests")!r})
from conftest import make_tokenizer, tiny_dhrd
from datasets import Dataset
from trainer import DHRDTrainer, DHRDTrainingArguments
rows = Dataset.from_list([{{"text": f"row {{i}}", "label": i % 3, "rationale": "because"}} for i in range(8)])
args = DHRDTrainingArguments(output_dir={str(tmp_path / "out")!r}, max_steps=2, per_device_train_batch_size=4,
    logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, run_name="pooled seed 0")
DHRDTrainer(model=tiny_dhrd("llama", num_labels=3), args=args, train_dataset=rows,
    processing_class=make_tokenizer()).train()
"""
    log = tmp_path / "log.txt"
    with open(log, "w") as handle:
        completed = subprocess.run([sys.executable, "-c", script], stdout=handle, stderr=subprocess.STDOUT)
    text = log.read_bytes().decode()  # not read_text(): universal newlines would turn a "\r" into "\n"
    assert completed.returncode == 0, text[-3000:]
    assert "\r" not in text
    assert "[pooled seed 0] training: 2 steps" in text
    assert "[pooled seed 0] step 1/2 (50%) loss=" in text and "[pooled seed 0] step 2/2 (100%)" in text


def test_the_callback_replaces_transformers_unlabelled_progress_output(tmp_path, tokenizer):
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    rows = Dataset.from_list([{"text": f"row {i}", "label": i % 3, "rationale": "because"} for i in range(4)])
    for disable_tqdm in (True, False):
        args = DHRDTrainingArguments(
            output_dir=str(tmp_path / "run-a"), max_steps=1, report_to=[], use_cpu=True, disable_tqdm=disable_tqdm
        )
        trainer = DHRDTrainer(
            model=tiny_dhrd("llama", num_labels=3), args=args, train_dataset=rows, processing_class=tokenizer
        )
        kinds = [type(c) for c in trainer.callback_handler.callbacks]
        assert RunProgressCallback in kinds and ProgressCallback not in kinds and PrinterCallback not in kinds
        callback = next(c for c in trainer.callback_handler.callbacks if isinstance(c, RunProgressCallback))
        assert callback.label == "run-a" and callback.bar is False  # no run_name: the folder; not a terminal


def test_training_in_a_log_prints_a_line_at_least_every_30_seconds_whatever_the_logging_steps(capsys):
    """A long step between logging steps still shows progress: step, share, rows/s and time left, from the
    callback's clock (a stand-in clock moved by hand: the arithmetic is what is tested)."""
    from types import SimpleNamespace

    now = [100.0]
    callback = RunProgressCallback("tickets", bar=False, clock=lambda: now[0])
    args = SimpleNamespace(per_device_train_batch_size=4, gradient_accumulation_steps=2, world_size=1)
    state = SimpleNamespace(is_world_process_zero=True, max_steps=60, global_step=0)
    callback.on_train_begin(args, state, None)
    lines = []
    for step, seconds in enumerate([10, 10, 15, 40, 5], start=1):  # 10, 20, 35, 75, 80 s after the start
        now[0] += seconds
        state.global_step = step
        callback.on_step_end(args, state, None)
        lines += capsys.readouterr().out.splitlines()
    assert lines == [
        "[tickets] training: 60 steps",
        "[tickets] step 3/60 (5%) 0.69 rows/s, 35 s elapsed, about 11 min 05 s left",  # 24 rows in 35 s
        "[tickets] step 4/60 (7%) 0.43 rows/s, 1 min 15 s elapsed, about 17 min 30 s left",
    ]


GGUF_BAR = """
import transformers.modeling_gguf_pytorch_utils as gguf_utils
from trainer.embedded import _quiet_gguf_bar
{context}
    for _ in gguf_utils.tqdm(range(3), desc="Converting and de-quantizing GGUF tensors..."):
        pass
"""


@pytest.mark.parametrize("quiet", [True, False])
def test_the_gguf_conversion_bar_writes_no_carriage_returns_into_a_log(quiet):
    """The conversion uses transformers' module-level tqdm; in a log (stderr a pipe) it is switched off."""
    code = GGUF_BAR.format(context="with _quiet_gguf_bar():" if quiet else "if True:")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=PROJECT_ROOT)  # bytes: \r kept
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert (b"\r" in completed.stderr) is not quiet  # without the switch the bar redraws with carriage returns
