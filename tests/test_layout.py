"""The package's rooms: reading data and talking to teachers does not pull in the training machinery."""

import subprocess
import sys

from conftest import PROJECT_ROOT


def test_tasks_teachers_and_data_import_without_peft_or_the_trainer():
    code = (
        "import sys, trainer.tasks, trainer.teachers, trainer.data.description\n"
        "print(sorted(m for m in ('peft', 'transformers.trainer') if m in sys.modules))"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip() == "[]"


def test_the_package_still_exports_the_trainer_on_first_use():
    import trainer

    assert trainer.DHRDTrainer.__name__ == "DHRDTrainer" and "DHRDTrainingArguments" in dir(trainer)
