"""The README's Python quick start runs as written (embedded SmolLM2, LoRA, 4 steps, export)."""

import re
import subprocess
import sys

import pytest
from conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow


def test_readme_quick_start_runs(tmp_path, smollm2_path):
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme.split("## Python quick start", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    code += "\nfrom transformers import pipeline\n"
    code += "print(pipeline('text-classification', model='my-classifier')('Is it?'))\n"
    completed = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert (tmp_path / "my-classifier" / "config.json").is_file()
    assert "'label': 'yes'" in completed.stdout or "'label': 'no'" in completed.stdout
