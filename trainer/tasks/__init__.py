"""Task adapters: the seven SuperGLUE tasks of the paper, plus CommonsenseQA, e-SNLI and COPA-SSE's COPA test set."""

from .base import Task, TaskDataError, exact_match
from .reasoning import COMMONSENSE_QA, COPA_SSE, ESNLI
from .superglue import BOOLQ, CB, COPA, MULTIRC, RTE, SUPERGLUE_TASKS, WIC, WSC, wsc_choice_items
from .synthetic import SYNTHETIC, SYNTHETIC_MULTISTEP, SYNTHETIC_MULTISTEP_WORKED, synthetic_rows

TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        *SUPERGLUE_TASKS,
        COMMONSENSE_QA,
        ESNLI,
        COPA_SSE,
        SYNTHETIC,
        SYNTHETIC_MULTISTEP,
        SYNTHETIC_MULTISTEP_WORKED,
    )
}


def get_task(name: str) -> Task:
    try:
        return TASKS[name.lower()]
    except KeyError:
        raise KeyError(f"Unknown task {name!r}; known tasks: {sorted(TASKS)}.") from None


__all__ = [
    "BOOLQ",
    "CB",
    "COMMONSENSE_QA",
    "COPA",
    "COPA_SSE",
    "ESNLI",
    "MULTIRC",
    "RTE",
    "SUPERGLUE_TASKS",
    "SYNTHETIC",
    "SYNTHETIC_MULTISTEP",
    "SYNTHETIC_MULTISTEP_WORKED",
    "TASKS",
    "WIC",
    "WSC",
    "Task",
    "TaskDataError",
    "exact_match",
    "get_task",
    "synthetic_rows",
    "wsc_choice_items",
]
