"""`dhrd rationales` with a local teacher, killed with SIGKILL at random points and rerun to completion: every id
ends up exactly once, and every kill loses at most the generation batch in flight: each batch is on disk, whole,
before the next one starts (a shard never holds part of a batch), and the rerun generates only what is not there."""

import json
import os
import random
import signal
import subprocess
import sys
import time

from conftest import PROJECT_ROOT

ROWS, BATCH, KILLS = 160, 4, 5


def _shard_lines(folder) -> dict[str, list[dict]]:
    """Complete lines of each shard (a line cut short by a kill has no newline and does not count)."""
    shards = {}
    for shard in sorted(folder.glob("shard-*.jsonl")):
        lines = shard.read_text().splitlines(keepends=True)
        shards[shard.name] = [json.loads(line) for line in lines if line.endswith("\n")]
    return shards


def _start(command: list[str]) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_local_teacher_killed_at_random_points_loses_at_most_a_batch(tmp_path, tiny_backbone_dir):
    rows = [{"text": f"question number {i} about the weather", "label": ["yes", "no"][i % 2]} for i in range(ROWS)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    output = tmp_path / "rationales"
    command = [
        sys.executable, "-m", "trainer.cli", "rationales", "--train_file", str(tmp_path / "train.jsonl"),
        "--teacher_model", str(tiny_backbone_dir), "--batch_size", str(BATCH), "--max_new_tokens", "48",
        "--output_dir", str(output),
    ]  # fmt: skip
    rng = random.Random(0)
    done_before = 0
    for kill in range(KILLS):
        target = done_before + rng.randint(1, 5) * BATCH + rng.randint(0, BATCH - 1)  # mid-batch, at random
        process = _start(command)
        deadline = time.monotonic() + 120
        while not output.exists() or sum(map(len, _shard_lines(output).values())) < target:
            assert process.poll() is None, process.communicate()[1][-3000:]
            assert time.monotonic() < deadline, f"kill {kill}: the run made no progress"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait()
        shards = _shard_lines(output)
        newest = list(shards.values())[-1]
        assert len(newest) % BATCH == 0, f"kill {kill}: a batch was written in parts ({len(newest)} lines)"
        ids = [record["id"] for lines in shards.values() for record in lines]
        assert len(ids) == len(set(ids)), f"kill {kill}: an id was generated twice"
        done_before = len(ids)

    final = _start(command)
    stdout, stderr = final.communicate(timeout=300)
    assert final.returncode == 0, stderr.decode()[-3000:]
    ids = [record["id"] for lines in _shard_lines(output).values() for record in lines]
    assert sorted(ids, key=int) == [str(i) for i in range(ROWS)]  # every id exactly once over all shards
    assert f"{ROWS - done_before} generated now, {done_before} already done" in stdout.decode()
    written = [json.loads(line) for line in (output / "rationales.jsonl").read_text().splitlines()]
    assert [row["idx"] for row in written] == list(range(ROWS))
