"""DHRD classifier and option scorer, export, embedded backbones; importing registers them with the Auto classes."""

import sys

from transformers import AutoConfig, AutoModelForMultipleChoice, AutoModelForSequenceClassification

from configuration_dhrd import DHRDConfig
from configuration_dhrd import configuration_dhrd as _configuration_module

# The modeling file imports its config as `from .configuration_dhrd import DHRDConfig`, the flat layout that
# transformers writes into checkpoints for remote code. Alias the sibling name to the one configuration module so
# the project and a checkpoint use the same file, and the project has a single `DHRDConfig` class.
sys.modules.setdefault(f"{__name__}.configuration_dhrd", _configuration_module)

from .embedded import EMBEDDED_MODELS, EmbeddedModelUnavailable, embedded_backbone_path, resolve_backbone  # noqa: E402
from .export import ExportResult, ExportVerificationError, export_classifier  # noqa: E402
from .modeling_dhrd import (  # noqa: E402
    DHRDDualHeadModel,
    DHRDForMultipleChoice,
    DHRDForSequenceClassification,
    DHRDMLPHead,
    DHRDPreTrainedModel,
    DHRDSequenceClassifierOutput,
)

AutoConfig.register(DHRDConfig.model_type, DHRDConfig, exist_ok=True)
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
