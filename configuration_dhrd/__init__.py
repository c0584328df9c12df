"""`DHRDConfig`, the card's configuration package: the class itself lives beside the model
(`modeling_dhrd/configuration_dhrd.py`), because a checkpoint's remote code is the modeling file and its siblings,
copied flat (`from .configuration_dhrd import DHRDConfig` must find the file next to the modeling file). Importing
either package registers DHRD with the Auto classes, once (`modeling_dhrd/__init__.py`)."""

from modeling_dhrd import DHRDConfig

__all__ = ["DHRDConfig"]
