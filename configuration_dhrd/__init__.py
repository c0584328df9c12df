"""`DHRDConfig`, registered with `AutoConfig` on import."""

from transformers import AutoConfig

from .configuration_dhrd import DHRDConfig

AutoConfig.register(DHRDConfig.model_type, DHRDConfig, exist_ok=True)
DHRDConfig.register_for_auto_class()

__all__ = ["DHRDConfig"]
