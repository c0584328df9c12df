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


def test_trainer_has_rooms_and_the_kinds_live_in_theirs():
    """At most a dozen modules at `trainer/`'s top level; outside `trainer/kinds`, no module names the problem kinds
    more than a handful of times (what a kind does is asked of the kind)."""
    import re

    root = PROJECT_ROOT / "trainer"
    assert len(list(root.glob("*.py"))) <= 12
    kind_names = re.compile(
        r"single_label_classification|multi_label_classification|[\"']regression[\"']|multiple_choice|SINGLE_LABEL"
        r"|MULTI_LABEL\b|REGRESSION|MULTIPLE_CHOICE|OPTION_SCORE_LABEL|ordinal_regression|ORDINAL\b"
    )
    counts = {
        str(path.relative_to(root)): len(kind_names.findall(path.read_text()))
        for path in root.rglob("*.py")
        if "kinds" not in path.relative_to(root).parts
    }
    assert {path: n for path, n in counts.items() if n > 6} == {}


# Where code outside `trainer/kinds` still branches on a kind's flag, per module: the known sites, which may shrink
# (lower the number) but not grow. A new decision about a kind is a method of the kind (`trainer/kinds/base.py`).
KIND_FLAG_SITES = {
    "cli/evaluate.py": 2,
    "cli/export.py": 1,
    "cli/predict.py": 2,
    "cli/rationales.py": 1,
    "cli/train.py": 1,
    "data/label_schema.py": 5,
    "data/labelled.py": 1,
    "inference/classify.py": 2,
    "teachers/prompts.py": 2,
    "training/dhrd_trainer.py": 3,
    "training/model_card.py": 1,
}


def test_code_outside_the_kinds_does_not_branch_on_new_kind_flags():
    """The kinds' flags (`scores_options`, `one_label_per_row`, `single_output`, `fixed_label_names`,
    `weights_classes`) read outside `trainer/kinds` only where they were when this guard was written: adding a kind
    must not mean adding branches across the package."""
    import re

    root = PROJECT_ROOT / "trainer"
    flags = re.compile(r"\.(scores_options|one_label_per_row|single_output|fixed_label_names|weights_classes)\b")
    counts = {
        str(path.relative_to(root)): len(flags.findall(path.read_text()))
        for path in root.rglob("*.py")
        if "kinds" not in path.relative_to(root).parts
    }
    grown = {path: n for path, n in counts.items() if n > KIND_FLAG_SITES.get(path, 0)}
    assert grown == {}, f"kind flags tested in new places (ask the kind instead): {grown}"
    modeling = "".join(path.read_text() for path in (PROJECT_ROOT / "modeling_dhrd").glob("*.py"))
    assert not flags.search(modeling)  # the model package knows the config's kind, never the trainer's flags


def test_a_wheel_carries_every_package(tmp_path):
    """`pip install .` (not editable) gets every room: the package list is found, not written out by hand."""
    import shutil
    import zipfile

    source = tmp_path / "source"
    source.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(PROJECT_ROOT / name, source / name)
    roots = ("configuration_dhrd", "modeling_dhrd", "trainer")
    for root in roots:
        shutil.copytree(
            PROJECT_ROOT / root, source / root, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
        )
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(source), "-w",
         str(tmp_path / "wheel")],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    in_wheel = set(zipfile.ZipFile(next((tmp_path / "wheel").glob("*.whl"))).namelist())
    packages = {
        init.parent.relative_to(PROJECT_ROOT).as_posix()
        for root in roots
        for init in (PROJECT_ROOT / root).rglob("__init__.py")
    }
    assert {f"{package}/__init__.py" for package in packages} <= in_wheel
    assert "trainer/kinds/registry.py" in in_wheel and "modeling_dhrd/configuration_dhrd.py" in in_wheel
    assert "trainer/cli/demo_reference.json" in in_wheel  # the demo's reference rows are data, shipped


def test_the_repository_holds_no_symlink():
    """One file per module: no link makes one file two modules (a checkpoint's remote code and the project used to
    reach the config through a link and a module alias)."""
    tracked = subprocess.run(["git", "ls-files", "-s"], capture_output=True, text=True, cwd=PROJECT_ROOT).stdout
    assert tracked and [line for line in tracked.splitlines() if line.startswith("120000")] == []
