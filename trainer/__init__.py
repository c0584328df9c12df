"""DHRD through the HF Trainer API, in rooms: the problem kinds (`trainer.kinds`), data (`trainer.data`), training
(`trainer.training`: the trainer and its arguments, sequences and collators, model card), inference
(`trainer.inference`), job plumbing (`trainer.jobs`), tasks (`trainer.tasks`), teachers (`trainer.teachers`) and the
command line (`trainer.cli`). The names below are the Python API's front door.

Names load on first use, so `import trainer.tasks` or `trainer.teachers` does not pull in peft or the HF Trainer.
"""

import importlib
from typing import Any

_EXPORTS = {
    "LM_LOSS_SCOPES": ".training.sequences",
    "DHRDDataCollator": ".training.sequences",
    "PreparationReport": ".training.sequences",
    "SequenceBuilder": ".training.sequences",
    "inference_view": ".training.sequences",
    "prepare_dhrd_dataset": ".training.sequences",
    "PAPER_LORA_TARGETS": ".training.dhrd_trainer",
    "DHRDTrainer": ".training.dhrd_trainer",
    "paper_lora_config": ".training.dhrd_trainer",
    "accuracy": ".kinds.metrics",
    "compute_classification_metrics": ".kinds.registry",
    "macro_f1": ".kinds.metrics",
    "DHRDTrainingArguments": ".training.arguments",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
