"""DHRD training through the HF Trainer API: arguments, data preparation, collator, trainer and metrics."""

from .data import DHRDDataCollator, PreparationReport, SequenceBuilder, inference_view, prepare_dhrd_dataset
from .dhrd_trainer import PAPER_LORA_TARGETS, DHRDTrainer, paper_lora_config
from .metrics import accuracy, compute_classification_metrics, macro_f1
from .training_args import LM_LOSS_SCOPES, DHRDTrainingArguments

__all__ = [
    "LM_LOSS_SCOPES",
    "PAPER_LORA_TARGETS",
    "DHRDDataCollator",
    "DHRDTrainer",
    "DHRDTrainingArguments",
    "PreparationReport",
    "SequenceBuilder",
    "accuracy",
    "compute_classification_metrics",
    "inference_view",
    "macro_f1",
    "paper_lora_config",
    "prepare_dhrd_dataset",
]
