"""Finding the DHRD model a caller holds: itself, or the base model inside a PEFT wrapper."""

import torch


def is_dhrd(model: torch.nn.Module) -> bool:
    return getattr(getattr(model, "config", None), "model_type", None) == "dhrd"


def unwrap_dhrd(model: torch.nn.Module, purpose: str, hint: str = "") -> torch.nn.Module:
    """The DHRD model (`DHRDForSequenceClassification` or `DHRDForMultipleChoice`) inside `model`: a PEFT model's
    base model, or `model` itself. Anything else is a `TypeError` that says what `purpose` expected, what it got,
    and `hint`."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not is_dhrd(base):
        model_type = getattr(getattr(base, "config", None), "model_type", None)
        raise TypeError(
            f"{purpose} expects a DHRD model (DHRDForSequenceClassification or DHRDForMultipleChoice), got "
            f"{type(base).__name__} (model_type {model_type!r}).{' ' + hint if hint else ''}"
        )
    return base
