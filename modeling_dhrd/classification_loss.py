"""The pooled head's loss for transformers' three `problem_type`s and for ordered classes, as sums (the caller
divides by the examples of the whole gradient-accumulation window, which makes accumulation exact).

Same semantics as transformers' `ForSequenceClassificationLoss`: `"regression"` (MSE on float targets; inferred when
`num_labels == 1`), `"single_label_classification"` (cross-entropy on class indices; inferred for integer labels)
and `"multi_label_classification"` (binary cross-entropy on multi-hot float targets). transformers averages over
every element, so the sum here comes with the number of elements per example to divide by as well.

Ordered classes (`ORDINAL_REGRESSION`, this project's kind, trained as `"single_label_classification"` to
transformers) add to the cross-entropy the squared earth mover's distance between the predicted and the true
cumulative distributions (`ordinal_loss_sum`).

Class weights (`config.class_weights`) follow torch: single-label cross-entropy's `weight` (whose mean divides by the
summed weights of the rows' classes: `example_weight`), multi-label's `pos_weight` (the weight of each label's
positives; the mean is unchanged). Regression has no classes to weight.

This file is copied into every saved checkpoint (remote code): it imports only torch.
"""

import torch
import torch.nn.functional as F

# transformers' three problem types, written once: the config types its field with them, the kinds are named by them.
PROBLEM_TYPES = ("single_label_classification", "multi_label_classification", "regression")
ORDINAL_REGRESSION = "ordinal_regression"  # ordered classes: one softmax, an ordinal loss (`ordinal_loss_sum`)


def problem_type_for(num_labels: int, several_per_row: bool) -> str:
    """transformers' rule for an unset `problem_type`: one output regresses; several outputs classify, one label per
    row (class indices) or several (multi-hot rows). The one place the rule is written (the data's kinds use it)."""
    if num_labels == 1:
        return "regression"
    return "multi_label_classification" if several_per_row else "single_label_classification"


def infer_problem_type(num_labels: int, labels: torch.Tensor) -> str:
    """`problem_type_for` the first labels a model sees: class indices are integers, multi-hot rows floats."""
    integers = labels.dtype in (torch.long, torch.int, torch.int16, torch.int8, torch.uint8)
    return problem_type_for(num_labels, several_per_row=not integers)


def class_indices(labels: torch.Tensor, num_labels: int) -> torch.Tensor:
    """`labels` as a flat tensor of class indices in `[0, num_labels)`; anything else raises a `ValueError`."""
    if labels.is_floating_point():
        raise ValueError(f"`labels` must hold class indices (integers), got dtype {labels.dtype}.")
    labels = labels.view(-1).long()
    out_of_range = (labels < 0) | (labels >= num_labels)
    if out_of_range.any():
        bad = labels[out_of_range][0].item()
        raise ValueError(f"Label {bad} is out of range for a classifier with num_labels={num_labels}.")
    return labels


def ordinal_loss_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy plus the squared earth mover's distance between the predicted and the true cumulative
    distributions over the ordered classes (Hou, Yu & Samaras 2016, "Squared Earth Mover's Distance-based Loss for
    Training Deep Neural Networks"; for a one-hot truth it is Epstein's 1969 ranked probability score), summed over
    the batch. Cross-entropy alone costs a prediction one class off as much as one three classes off; the EMD term
    grows with the distance, and the cross-entropy keeps the gradient strong where the EMD's is flat (Hou et al.
    train with both). Why a softmax over the K classes rather than cumulative logits (K - 1 threshold outputs) or
    one regressed number: the head keeps one output per class, so the export is a plain K-class classifier whose
    `pipeline` returns the classes' probabilities, the same ones `dhrd predict` decides on."""
    num_labels = logits.shape[-1]
    labels = class_indices(labels, num_labels)
    logits = logits.float()
    below = torch.softmax(logits, dim=-1).cumsum(-1)[:, :-1]  # P(y <= k), k = 0..K-2
    truth = (torch.arange(num_labels - 1, device=logits.device) >= labels[:, None]).float()
    squared_emd = ((below - truth) ** 2).sum(-1)
    return F.cross_entropy(logits, labels, reduction="sum") + squared_emd.sum()


def classification_loss_sum(
    logits: torch.Tensor, labels: torch.Tensor, problem_type: str, class_weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, int]:
    """`(loss summed over the batch, elements per example)` for `problem_type` (one of transformers', or
    `ORDINAL_REGRESSION`); bad labels raise a `ValueError`."""
    num_labels = logits.shape[-1]
    logits = logits.float()
    if class_weights is not None:
        class_weights = class_weights.to(device=logits.device, dtype=torch.float32)
    if problem_type == ORDINAL_REGRESSION:
        if class_weights is not None:
            raise ValueError("Class weights are not part of the ordinal loss (drop class_weights).")
        return ordinal_loss_sum(logits, labels), 1
    if problem_type == "single_label_classification":
        labels = class_indices(labels, num_labels)
        return F.cross_entropy(logits, labels, weight=class_weights, reduction="sum"), 1
    if problem_type == "regression":
        if class_weights is not None:
            raise ValueError("Class weights weight classes; regression has none (drop class_weights).")
        targets = labels.float().view(logits.shape[0], -1)
        if targets.shape[-1] != num_labels:
            raise ValueError(
                f"Regression targets have {targets.shape[-1]} values per example; num_labels={num_labels}."
            )
        return F.mse_loss(logits, targets, reduction="sum"), num_labels
    if problem_type == "multi_label_classification":
        if labels.dim() != 2 or labels.shape[-1] != num_labels:
            raise ValueError(
                f"Multi-label targets must be multi-hot rows of width num_labels={num_labels}, got shape "
                f"{tuple(labels.shape)}."
            )
        targets = labels.float()
        if ((targets < 0) | (targets > 1)).any():
            raise ValueError("Multi-label targets must lie in [0, 1] (multi-hot).")
        loss = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=class_weights, reduction="sum")
        return loss, num_labels
    raise ValueError(f"`problem_type` must be one of {(*PROBLEM_TYPES, ORDINAL_REGRESSION)}, got {problem_type!r}.")


def example_weight(labels: torch.Tensor, problem_type: str, class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """What a batch counts for the mean of its classification loss: its number of rows, or with single-label class
    weights the summed weights of its rows' classes (as `F.cross_entropy(weight=...)` divides). Summed over a whole
    gradient-accumulation window, it makes accumulation exact."""
    rows = labels.shape[0]
    if class_weights is None or problem_type != "single_label_classification":
        return torch.tensor(float(rows), device=labels.device)
    return class_weights.to(device=labels.device, dtype=torch.float32)[labels.view(-1).long()].sum()
