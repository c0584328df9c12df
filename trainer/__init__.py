"""DHRD training through the HF Trainer API: the trainer and its arguments, data preparation and collation,
metrics; tasks (`trainer.tasks`), teachers (`trainer.teachers`) and the command line (`trainer.cli`) beside them.

Names load on first use, so `import trainer.tasks` or `trainer.teachers` does not pull in peft or the HF Trainer.
"""

import importlib
from typing import Any

_EXPORTS = {
    "LM_LOSS_SCOPES": ".data",
    "DHRDDataCollator": ".data",
    "PreparationReport": ".data",
    "SequenceBuilder": ".data",
    "inference_view": ".data",
    "prepare_dhrd_dataset": ".data",
    "PAPER_LORA_TARGETS": ".dhrd_trainer",
    "DHRDTrainer": ".dhrd_trainer",
    "paper_lora_config": ".dhrd_trainer",
    "accuracy": ".metrics",
    "compute_classification_metrics": ".metrics",
    "macro_f1": ".metrics",
    "DHRDTrainingArguments": ".training_args",
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
