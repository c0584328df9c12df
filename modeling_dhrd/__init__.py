"""DHRD classifier and option scorer, their config and export; importing registers them with the Auto classes. (The
embedded default backbones, fetched from PyPI wheels, are the trainer's: `trainer.embedded.resolve_backbone`.)"""

from transformers import AutoConfig, AutoModelForMultipleChoice, AutoModelForSequenceClassification

from .configuration_dhrd import DHRDConfig
from .export import ExportResult, ExportVerificationError, export_classifier
from .modeling_dhrd import (
    DHRDDualHeadModel,
    DHRDForMultipleChoice,
    DHRDForSequenceClassification,
    DHRDMLPHead,
    DHRDPreTrainedModel,
    DHRDSequenceClassifierOutput,
)

# The one registration: with the Auto classes here, and in a saved checkpoint's auto_map (remote code).
AutoConfig.register(DHRDConfig.model_type, DHRDConfig, exist_ok=True)
DHRDConfig.register_for_auto_class()
AutoModelForSequenceClassification.register(DHRDConfig, DHRDForSequenceClassification, exist_ok=True)
DHRDForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
AutoModelForMultipleChoice.register(DHRDConfig, DHRDForMultipleChoice, exist_ok=True)
DHRDForMultipleChoice.register_for_auto_class("AutoModelForMultipleChoice")

__all__ = [
    "DHRDConfig",
    "DHRDDualHeadModel",
    "DHRDForMultipleChoice",
    "DHRDForSequenceClassification",
    "DHRDMLPHead",
    "DHRDPreTrainedModel",
    "DHRDSequenceClassifierOutput",
    "ExportResult",
    "ExportVerificationError",
    "export_classifier",
]
