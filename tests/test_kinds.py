"""The problem kinds: one registry of what DHRDConfig names, a model's kind read from its config (DHRD checkpoints,
native exports, checkpoints saved before configs named it), metrics chosen by the kind (never by array shapes), and
the option scorer's row scores equal to its forward's."""

from typing import get_args

import numpy as np
import pytest
import torch
from conftest import tiny_text_config
from huggingface_hub.errors import StrictDataclassError
from transformers import LlamaConfig

from configuration_dhrd import DHRDConfig
from modeling_dhrd import DHRDForMultipleChoice
from modeling_dhrd.configuration_dhrd import ProblemKindName
from trainer.kinds.registry import (
    KINDS,
    MULTI_LABEL,
    MULTIPLE_CHOICE,
    REGRESSION,
    SINGLE_LABEL,
    get_kind,
    infer_kind,
    kind_of,
    named_kind,
)


def test_every_kind_the_config_names_has_a_module():
    assert tuple(KINDS) == get_args(ProblemKindName)
    assert all(get_kind(name).name == name for name in KINDS)
    with pytest.raises(ValueError, match="Unknown problem kind 'ranking'"):
        get_kind("ranking")


def test_a_models_kind_comes_from_its_config():
    assert kind_of(DHRDConfig(num_labels=3, problem_type="multi_label_classification")) is MULTI_LABEL
    assert kind_of(DHRDConfig(problem_kind="multiple_choice")) is MULTIPLE_CHOICE
    # a plain transformers config (a native export) names no kind: its one output named option_score does
    assert kind_of(LlamaConfig(id2label={0: "option_score"})) is MULTIPLE_CHOICE
    assert kind_of(LlamaConfig(num_labels=1)) is REGRESSION  # what transformers infers for one output
    assert named_kind(LlamaConfig(num_labels=3)) is None and kind_of(LlamaConfig(num_labels=3)) is SINGLE_LABEL
    assert infer_kind([1, 0, 1], 3) is MULTI_LABEL and infer_kind("a", 3) is SINGLE_LABEL


def test_a_config_that_contradicts_its_kind_is_refused():
    with pytest.raises((ValueError, StrictDataclassError), match="contradicts problem_type"):
        DHRDConfig(num_labels=2, problem_kind="regression", problem_type="multi_label_classification")


def test_metrics_are_the_kinds_not_the_shapes():
    """Four option scores per row and gold option indices: multiple choice reports accuracy only (a macro-F1 over
    option positions means nothing); the same arrays as single-label logits also get macro-F1."""
    logits = np.array([[0.1, 2.0, 0.3, 0.0], [3.0, 0.0, 0.1, 0.2], [0.0, 0.1, 0.2, 4.0]])
    gold = np.array([1, 0, 2])
    assert MULTIPLE_CHOICE.metrics(logits, gold) == {"accuracy": pytest.approx(2 / 3)}
    single = SINGLE_LABEL.metrics(logits, gold)
    assert single["accuracy"] == pytest.approx(2 / 3) and "macro_f1" in single


def test_records_and_decisions_per_kind():
    names = ["a", "b"]
    assert SINGLE_LABEL.record([0.2, 0.8], names) == {"label": "b", "probs": {"a": 0.2, "b": 0.8}}
    assert MULTI_LABEL.record([0.7, 0.4], names, thresholds=[0.8, 0.3])["labels"] == ["b"]
    assert REGRESSION.record([2.5], ["score"]) == {"score": 2.5}
    choice = MULTIPLE_CHOICE.record([0.0, 2.0], options=["no", "yes"])
    assert choice["option"] == "yes" and choice["option_index"] == 1 and sum(choice["probs"]) == pytest.approx(1)
    assert REGRESSION.correct(torch.zeros(2, 1), torch.zeros(2)) is None  # no right answer to count


def test_option_scorer_scores_flat_rows_as_its_forward_scores_options():
    torch.manual_seed(0)
    model = DHRDForMultipleChoice(DHRDConfig(text_config=tiny_text_config("llama"), problem_kind="multiple_choice"))
    model.eval()
    ids = torch.randint(1, 50, (2, 3, 6))
    mask = torch.ones_like(ids)
    mask[0, 1, 4:] = 0
    with torch.no_grad():
        options = model(input_ids=ids, attention_mask=mask).logits
        rows = model.score_rows(input_ids=ids.view(6, 6), attention_mask=mask.view(6, 6))
    torch.testing.assert_close(rows.view(2, 3), options)


def test_only_a_single_label_kind_decodes_explains_or_serves_one_label():
    """CoT and reasoning-head decoding, `dhrd explain` and a vLLM /classify server read one label per row: every
    other kind is refused in one line naming the purpose, the kind and the fix."""
    SINGLE_LABEL.require_one_label("dhrd explain")  # no error
    for kind in (MULTI_LABEL, REGRESSION, MULTIPLE_CHOICE):
        message = rf"^--method cot reads one label per row .*; this is {kind.name}: fix\.$"
        with pytest.raises(ValueError, match=message):
            kind.require_one_label("--method cot", fix=": fix")
