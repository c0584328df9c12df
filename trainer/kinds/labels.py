"""One rule for turning a label value into a class index, for every reader of labels: the data description
(`data`), the task readers (`tasks`) and the Trainer's raw datasets (`training.sequences.SequenceBuilder`).

A label is a name (one of the label names), an integer index in `[0, K)`, a bool (an index), or a float with no
fraction (CSV readers make those). Anything else is an error that says where: no label is ever invented.
"""

from collections.abc import Mapping
from typing import Any


class LabelError(ValueError):
    """A label value that is not a class; the message names where it is and what the labels are."""


def label_value(value: Any, where: str) -> int | str:
    """The label as an index or a name, before it is checked against the labels."""
    if value is None or (isinstance(value, float) and value != value):  # null, or NaN from an empty CSV cell
        raise LabelError(f"{where}: no label; fill it in or remove the row.")
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise LabelError(f"{where}: label {value} is neither a class index nor a label name.")
        return int(value)
    if isinstance(value, (int, str)):
        return value
    raise LabelError(f"{where}: label {value!r} ({type(value).__name__}) is neither a class index nor a label name.")


def label_index(value: Any, label2id: Mapping[str, int], where: str) -> int:
    """The class index of `value` given the labels (`name -> index`)."""
    value = label_value(value, where)
    names = list(label2id)
    if isinstance(value, str):
        if value not in label2id:
            raise LabelError(f"{where}: label {value!r} is not one of the labels {names}.")
        return label2id[value]
    if not 0 <= value < len(names):
        hint = " (-1: the row has no label)" if value == -1 else ""
        raise LabelError(f"{where}: label {value}{hint} is out of range [0, {len(names)}) for the labels {names}.")
    return value
