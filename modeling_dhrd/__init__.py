"""DHRD classifier and option scorer, export, embedded backbones; importing registers them with the Auto classes."""

from transformers import AutoConfig, AutoModelForMultipleChoice, AutoModelForSequenceClassification

from .configuration_dhrd import DHRDConfig
from .embedded import EMBEDDED_MODELS, EmbeddedModelUnavailable, embedded_backbone_path, resolve_backbone
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
    "EMBEDDED_MODELS",
    "DHRDConfig",
    "DHRDDualHeadModel",
    "DHRDForMultipleChoice",
    "DHRDForSequenceClassification",
    "DHRDMLPHead",
    "DHRDPreTrainedModel",
    "DHRDSequenceClassifierOutput",
    "EmbeddedModelUnavailable",
    "ExportResult",
    "ExportVerificationError",
    "embedded_backbone_path",
    "export_classifier",
    "resolve_backbone",
]
