"""transformers' `problem_type`s on the pooled head: regression and multi-label losses equal transformers' own loss
function on the same logits, single-label is unchanged, accumulation stays exact, and bad targets are one clear
error."""

import pytest
import torch
from conftest import tiny_dhrd
from transformers.loss.loss_utils import ForSequenceClassificationLoss

IDS = torch.tensor([[5, 9, 13, 2, 7], [4, 4, 8, 0, 0], [11, 3, 6, 9, 0], [7, 7, 7, 7, 7]])
MASK = (IDS != 0).long()
MASK[3] = 1


def _targets(problem_type: str, num_labels: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    if problem_type == "regression":
        return torch.rand(4, num_labels, generator=generator).squeeze(-1) * 5
    if problem_type == "multi_label_classification":
        return (torch.rand(4, num_labels, generator=generator) > 0.5).float()
    return torch.randint(0, num_labels, (4,), generator=generator)


@pytest.mark.parametrize(
    "problem_type, num_labels",
    [("regression", 1), ("regression", 2), ("multi_label_classification", 3), ("single_label_classification", 3)],
)
def test_pooled_loss_equals_transformers_loss_function(problem_type, num_labels):
    model = tiny_dhrd("llama", num_labels=num_labels, problem_type=problem_type)
    labels = _targets(problem_type, num_labels)
    output = model(input_ids=IDS, attention_mask=MASK, labels=labels)
    expected = ForSequenceClassificationLoss(labels, output.logits, model.config)
    torch.testing.assert_close(output.cls_loss, expected, atol=1e-6, rtol=1e-5)
    assert output.loss.item() == pytest.approx(output.cls_loss.item())  # no rationale: the loss is the pooled loss


@pytest.mark.parametrize(
    "labels, expected",
    [
        (torch.tensor([0.5, 1.5, 2.0, 3.0]), "regression"),
        (torch.tensor([[1.0, 0.0, 1.0]] * 4), "multi_label_classification"),
        (torch.tensor([0, 1, 2, 1]), "single_label_classification"),
    ],
)
def test_problem_type_is_inferred_from_the_first_labels_as_transformers_does(labels, expected):
    model = tiny_dhrd("llama", num_labels=1 if expected == "regression" else 3)
    model(input_ids=IDS, attention_mask=MASK, labels=labels)
    assert model.config.problem_type == expected


@pytest.mark.parametrize("problem_type, num_labels", [("regression", 1), ("multi_label_classification", 3)])
def test_accumulating_four_single_examples_equals_the_batch(problem_type, num_labels):
    model = tiny_dhrd("llama", num_labels=num_labels, problem_type=problem_type)
    labels = _targets(problem_type, num_labels)
    full = model(input_ids=IDS, attention_mask=MASK, labels=labels).cls_loss
    parts = sum(
        model(
            input_ids=IDS[i : i + 1], attention_mask=MASK[i : i + 1], labels=labels[i : i + 1], num_examples=4
        ).cls_loss
        for i in range(4)
    )
    torch.testing.assert_close(parts, full, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(
    "problem_type, num_labels, labels, message",
    [
        ("multi_label_classification", 3, torch.ones(4, 2), "multi-hot rows of width num_labels=3"),
        ("multi_label_classification", 3, torch.full((4, 3), 2.0), "must lie in \\[0, 1\\]"),
        ("regression", 2, torch.ones(4, 3), "3 values per example; num_labels=2"),
        ("single_label_classification", 3, torch.tensor([0, 1, 5, 1]), "Label 5 is out of range"),
    ],
)
def test_bad_targets_are_one_clear_error(problem_type, num_labels, labels, message):
    model = tiny_dhrd("llama", num_labels=num_labels, problem_type=problem_type)
    with pytest.raises(ValueError, match=message):
        model(input_ids=IDS, attention_mask=MASK, labels=labels)


@pytest.mark.parametrize("problem_type, num_labels", [("regression", 1), ("multi_label_classification", 3)])
def test_native_export_carries_the_problem_type_and_its_loss(tmp_path, tokenizer, problem_type, num_labels):
    from transformers import AutoModelForSequenceClassification

    from modeling_dhrd import export_classifier

    model = tiny_dhrd("llama", num_labels=num_labels, problem_type=problem_type)
    export_classifier(model, tmp_path / "exported", tokenizer)
    native = AutoModelForSequenceClassification.from_pretrained(tmp_path / "exported").eval()
    assert native.config.problem_type == problem_type
    from transformers import AutoTokenizer

    texts, labels = ["a short one", "a longer input sentence"], _targets(problem_type, num_labels)[:2]
    exported_tokenizer = AutoTokenizer.from_pretrained(tmp_path / "exported")  # with the export's own pad token
    ours = model(**tokenizer(texts, padding=True, return_tensors="pt"), labels=labels)
    theirs = native(**exported_tokenizer(texts, padding=True, return_tensors="pt"), labels=labels)
    torch.testing.assert_close(theirs.logits, ours.logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(theirs.loss, ours.cls_loss, atol=1e-5, rtol=1e-4)  # transformers' own loss, same value
