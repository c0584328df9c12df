"""Every resumable job knows what it resumes: `dhrd predict` killed with SIGKILL and rerun resumes exactly once;
rerun with another model it is refused (naming what differs) and nothing is merged; `--overwrite` starts over and
gives what a clean run gives. `dhrd rationales` likewise refuses another teacher, template or cleaning setting."""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import PROJECT_ROOT, make_tokenizer, tiny_dhrd, tiny_text_config, write_rows
from transformers import AutoModelForCausalLM

from trainer.cli import main
from trainer.cli.predict import parts_folder
from trainer.jobs.fingerprint import folder_fingerprint, model_identity

ROWS = 1500


def _model(folder, seed: int) -> str:
    tiny_dhrd("qwen2", num_labels=2, seed=seed, id2label={0: "no", 1: "yes"}).save_pretrained(folder)
    make_tokenizer().save_pretrained(folder)
    return str(folder)


def _part_lines(parts) -> list[str]:
    """Complete lines of every shard (a line cut short by the kill does not count)."""
    lines = []
    for shard in sorted(parts.glob("shard-*.jsonl")):
        lines += [line for line in shard.read_text().splitlines(keepends=True) if line.endswith("\n")]
    return lines


def _killed_midway(command: list[str], parts, at_least: int) -> list[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "trainer.cli", *command], env=env, cwd=PROJECT_ROOT, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while not parts.exists() or len(_part_lines(parts)) < at_least:
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return _part_lines(parts)


def _dhrd(capsys, *argv: str) -> tuple[int, str, str]:
    """`dhrd` in this process (the killed runs above are real processes): exit code, stdout, last stderr line."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, (captured.err.strip().splitlines() or [""])[-1]


def test_predict_resumes_its_own_parts_and_refuses_another_models(tmp_path, capsys, caplog):
    caplog.set_level(logging.INFO)
    model_a, model_b = _model(tmp_path / "a", seed=0), _model(tmp_path / "b", seed=1)
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"id": f"r{i}", "text": f"row number {i}"}) + "\n" for i in range(ROWS)))
    output = tmp_path / "out.jsonl"
    parts = parts_folder(output)

    def predict(model: str, out=output) -> list[str]:
        return ["predict", "--model", model, "--test_file", str(rows), "--output_file", str(out), "--batch_size", "4"]

    before = _killed_midway(predict(model_a), parts, at_least=40)
    assert 40 <= len(before) < ROWS
    snapshot = {shard.name: shard.read_bytes() for shard in parts.glob("shard-*.jsonl")}

    code, _, line = _dhrd(capsys, *predict(model_b))  # another model's parts are never merged
    assert code == 1 and "holds the results of another job (model.fingerprint: was" in line and "--overwrite" in line
    assert {shard.name: shard.read_bytes() for shard in parts.glob("shard-*.jsonl")} == snapshot
    assert not output.exists()

    assert _dhrd(capsys, *predict(model_a))[0] == 0  # the same job resumes: every row once, the finished ones as were
    assert f"Resuming: {len(before)} of {ROWS} rows already predicted" in caplog.text
    written = output.read_text().splitlines(keepends=True)
    assert [json.loads(line)["id"] for line in written] == [f"r{i}" for i in range(ROWS)]
    assert set(before) <= set(written) and not parts.exists()

    _killed_midway([*predict(model_a, tmp_path / "b.jsonl")], parts_folder(tmp_path / "b.jsonl"), at_least=40)
    caplog.clear()
    assert _dhrd(capsys, *predict(model_b, tmp_path / "b.jsonl"), "--overwrite")[0] == 0
    assert "Resuming" not in caplog.text
    assert _dhrd(capsys, *predict(model_b, tmp_path / "clean.jsonl"))[0] == 0
    assert (tmp_path / "b.jsonl").read_text() == (tmp_path / "clean.jsonl").read_text()


@pytest.fixture
def teachers(tmp_path):
    folders = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        folder = tmp_path / f"teacher{seed}"
        AutoModelForCausalLM.from_config(tiny_text_config("qwen2")).save_pretrained(folder)
        make_tokenizer().save_pretrained(folder)
        folders.append(str(folder))
    return folders


def test_rationales_refuse_another_teacher_template_or_setting(tmp_path, teachers, capsys):
    write_rows(tmp_path / "rows.jsonl", 8, ("wet", "dry"))
    (tmp_path / "template.txt").write_text("Explain why {input} gets {answer}. End with {sentinel}")
    base = ["rationales", "--train_file", str(tmp_path / "rows.jsonl"), "--rationale_column", "teacher_rationale",
            "--max_new_tokens", "6", "--output_dir", str(tmp_path / "out")]  # fmt: skip
    code, out, _ = _dhrd(capsys, *base, "--teacher_model", teachers[0])
    assert code == 0 and "8 generated now, 0 already done" in out
    template = ["--prompt_template_file", str(tmp_path / "template.txt")]
    for change, differs in (
        (["--teacher_model", teachers[1]], "teacher.fingerprint"),
        (["--teacher_model", teachers[0], "--max_words", "20"], "max_words: was 150, now 20"),
        (["--teacher_model", teachers[0], *template], "prompt_template"),
    ):
        code, _, line = _dhrd(capsys, *base, *change)
        assert code == 1 and differs in line and "--overwrite" in line, (change, line)
    assert "0 generated now, 8 already done" in _dhrd(capsys, *base, "--teacher_model", teachers[0])[1]
    code, out, _ = _dhrd(capsys, *base, "--teacher_model", teachers[1], "--overwrite")
    assert code == 0 and "8 generated now, 0 already done" in out


def test_a_server_teacher_is_its_served_model_not_its_address():
    """A teacher server restarted on another port (or reached through a proxy) is the same teacher: its shards resume;
    another served model is another teacher."""
    from trainer.cli.rationales import RationaleArguments, _teacher_identity

    def identity(url: str, model: str) -> dict:
        return _teacher_identity(RationaleArguments(output_dir="out", server_url=url, server_model=model))

    assert identity("http://127.0.0.1:8000/v1", "teacher") == identity("http://127.0.0.1:9000/v1", "teacher")
    assert identity("http://127.0.0.1:8000/v1", "teacher") != identity("http://127.0.0.1:8000/v1", "other")


def test_a_fingerprint_follows_the_files_not_the_folder(tmp_path):
    _model(tmp_path / "a", seed=0), _model(tmp_path / "b", seed=1)
    fingerprint = folder_fingerprint(tmp_path / "a")
    assert fingerprint != folder_fingerprint(tmp_path / "b")  # same architecture and names, other weights
    (tmp_path / "a").rename(tmp_path / "moved")
    identity = model_identity(str(tmp_path / "moved"))
    assert identity == {"source": str((tmp_path / "moved").resolve()), "revision": None, "fingerprint": fingerprint}


def test_rationales_send_no_more_rows_than_the_description_caps(tmp_path, teachers, capsys):
    """`--max_train_samples` (part of the shared data description) caps the rows sent to the teacher, as `--limit`
    does; the smaller wins. A larger run later resumes from the capped one's results (no cap in the manifest)."""
    write_rows(tmp_path / "rows.jsonl", 8, ("wet", "dry"))
    base = ["rationales", "--train_file", str(tmp_path / "rows.jsonl"), "--rationale_column", "teacher_rationale",
            "--teacher_model", teachers[0], "--max_new_tokens", "4"]  # fmt: skip
    base += ["--output_dir", str(tmp_path / "out")]
    code, out, _ = _dhrd(capsys, *base, "--max_train_samples", "3", "--limit", "5")
    assert code == 0 and out.startswith("3 rows: ") and "3 generated now, 0 already done" in out
    assert len((tmp_path / "out" / "rationales.jsonl").read_text().splitlines()) == 3
    code, out, _ = _dhrd(capsys, *base)
    assert code == 0 and "5 generated now, 3 already done" in out


def _hub_snapshot(cache, repo: str, commit: str) -> Path:
    """A model as the Hub cache holds it after a download: `models--user--name/snapshots/<commit>/`, `refs/main`."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    snapshot = folder / "snapshots" / commit
    snapshot.mkdir(parents=True)
    return snapshot


def test_a_hub_model_is_its_id_and_commit_however_much_of_it_is_downloaded(tmp_path, monkeypatch):
    """A job records its model before the run downloads the rest of the snapshot (weights, tokenizer): the commit
    names the files, so the identity must not change as they arrive, or a resumed job is refused as another's."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = _hub_snapshot(tmp_path / "cache", "user/tiny", commit)
    _model(tmp_path / "model", seed=0)
    shutil.copy(tmp_path / "model" / "config.json", snapshot / "config.json")
    first = model_identity("user/tiny")
    for path in (tmp_path / "model").iterdir():  # the run's download of everything else
        shutil.copy(path, snapshot / path.name)
    assert model_identity("user/tiny") == first == {"source": "user/tiny", "revision": commit, "fingerprint": None}
    # a GGUF repository has no config.json: the GGUF file names the snapshot
    gguf_snapshot = _hub_snapshot(tmp_path / "cache", "user/tiny-gguf", commit)
    (gguf_snapshot / "model.Q4.gguf").write_bytes(b"GGUF" + bytes(100))
    assert model_identity("user/tiny-gguf", gguf_file="model.Q4.gguf")["revision"] == commit


def test_a_gguf_file_in_a_subfolder_names_its_commit_and_its_content(tmp_path, monkeypatch):
    """GGUF repositories often keep each quantisation in a folder (`Q4_K_M/model.gguf`): the revision is still the
    snapshot's commit, and a local GGUF file is fingerprinted wherever it sits (a folder's other fingerprints, from
    before GGUF files counted, stay as they were)."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = _hub_snapshot(tmp_path / "cache", "user/quantised", commit)
    (snapshot / "Q4_K_M").mkdir()
    (snapshot / "Q4_K_M" / "model.gguf").write_bytes(b"GGUF" + bytes(100))
    assert model_identity("user/quantised", gguf_file="Q4_K_M/model.gguf")["revision"] == commit

    folder = tmp_path / "local"
    _model(folder, seed=0)
    plain = model_identity(str(folder))
    (folder / "Q4").mkdir()
    (folder / "Q4" / "model.gguf").write_bytes(b"GGUF" + bytes(200_000))
    assert model_identity(str(folder)) == plain  # a folder that also holds a GGUF file: fingerprinted as before
    before = model_identity(str(folder), gguf_file="Q4/model.gguf")
    (folder / "Q4" / "model.gguf").write_bytes(b"GGUF" + bytes(100_000) + b"\1" + bytes(99_999))  # same size
    assert model_identity(str(folder), gguf_file="Q4/model.gguf") != before


def test_a_job_that_fingerprinted_its_hub_model_resumes_at_the_same_commit(tmp_path):
    """Manifests written before a Hub model was named by its commit hold a fingerprint of its snapshot: the same id
    and commit is the same model (its files are the commit's); another commit is another model."""
    from trainer.jobs.shards import JobMismatch, ShardedResults

    commit = "0123456789abcdef0123456789abcdef01234567"
    older = {"model": {"source": "user/tiny", "revision": commit, "fingerprint": "ab" * 32}, "limit": 3}
    ShardedResults(tmp_path / "parts", manifest=older).check_manifest()  # an empty folder: nothing to refuse
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "manifest.json").write_text(json.dumps(older))
    now = {"model": {"source": "user/tiny", "revision": commit, "fingerprint": None}, "limit": 3}
    ShardedResults(tmp_path / "parts", manifest=now).check_manifest()
    for changed in ({"revision": "f" * 40}, {"source": "user/other"}):
        with pytest.raises(JobMismatch):
            ShardedResults(tmp_path / "parts", manifest={**now, "model": {**now["model"], **changed}}).check_manifest()
    with pytest.raises(JobMismatch):
        ShardedResults(tmp_path / "parts", manifest={**now, "limit": 4}).check_manifest()
