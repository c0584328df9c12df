"""Finding the DHRD model a caller holds: itself, or the base model inside a PEFT wrapper."""

from collections.abc import Callable

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


def full_precision_forward(model: torch.nn.Module) -> Callable:
    """`model`'s own forward, without the autocast wrapper that accelerate patches onto a model trained with bf16 or
    fp16 mixed precision (transformers' `Trainer` leaves it on the instance after training). An export holds the
    full-precision weights and computes in full precision, so it is checked against this forward: through the
    wrapper the same weights give bf16-rounded logits (0.03 apart on the demo's classifier)."""
    return model.__dict__.get("_original_forward", model)
