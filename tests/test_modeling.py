"""Semantics of DHRDForSequenceClassification, checked with numbers on tiny Llama / Qwen2 / GPT-2 backbones."""

import pytest
import torch
import torch.nn.functional as F
from conftest import ARCHITECTURES, tiny_dhrd, tiny_text_config
from transformers import AutoConfig, AutoModelForSequenceClassification, BertConfig, LlamaForCausalLM, T5Config

from modeling_dhrd import DHRDConfig, DHRDForSequenceClassification


def _random_ids(batch: int, length: int, vocab: int = 200, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(1, vocab, (batch, length), generator=generator)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_pooled_logits_of_input_plus_rationale_equal_input_alone(architecture, pooling):
    model = tiny_dhrd(architecture, pooling=pooling, head="mlp" if pooling == "mean" else "linear")
    x = _random_ids(2, 6)
    rationale = _random_ids(2, 9, seed=2)
    full = torch.cat([x, rationale], dim=1)
    pooling_mask = torch.cat([torch.ones_like(x), torch.zeros_like(rationale)], dim=1)
    with torch.no_grad():
        alone = model(input_ids=x, attention_mask=torch.ones_like(x)).logits
        joint = model(input_ids=full, attention_mask=torch.ones_like(full), pooling_mask=pooling_mask).logits
    torch.testing.assert_close(joint, alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_left_and_right_padding_give_the_same_logits(architecture):
    model = tiny_dhrd(architecture)
    lengths = [7, 3, 5]
    rows = [_random_ids(1, n, seed=n)[0] for n in lengths]
    width = max(lengths)
    right_ids = torch.zeros(3, width, dtype=torch.long)
    left_ids = torch.zeros(3, width, dtype=torch.long)
    right_mask = torch.zeros(3, width, dtype=torch.long)
    left_mask = torch.zeros(3, width, dtype=torch.long)
    for i, row in enumerate(rows):
        right_ids[i, : len(row)], right_mask[i, : len(row)] = row, 1
        left_ids[i, width - len(row) :], left_mask[i, width - len(row) :] = row, 1
    with torch.no_grad():
        right = model(input_ids=right_ids, attention_mask=right_mask).logits
        left = model(input_ids=left_ids, attention_mask=left_mask).logits
        single = torch.cat([model(input_ids=row[None]).logits for row in rows])
    torch.testing.assert_close(left, right, atol=1e-5, rtol=0)
    torch.testing.assert_close(right, single, atol=1e-5, rtol=0)


def _training_batch():
    x = _random_ids(3, 5)
    rationale = _random_ids(3, 8, seed=3)
    input_ids = torch.cat([x, rationale], dim=1)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, -3:] = 0  # a right-padded row
    pooling_mask = torch.cat([torch.ones_like(x), torch.zeros_like(rationale)], dim=1)
    lm_labels = input_ids.masked_fill(attention_mask == 0, -100)
    return input_ids, attention_mask, pooling_mask, lm_labels, torch.tensor([0, 2, 1])


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_joint_loss_is_weighted_sum_of_independently_computed_parts(architecture):
    model = tiny_dhrd(architecture, cls_weight=0.7, lm_weight=0.3)
    input_ids, attention_mask, pooling_mask, lm_labels, labels = _training_batch()
    with torch.no_grad():
        out = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            pooling_mask=pooling_mask,
            lm_labels=lm_labels,
            labels=labels,
        )
        hidden = model.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        full_logits = model.lm_head(hidden)  # [batch, seq, vocab], all at once
        expected_lm = F.cross_entropy(
            full_logits[:, :-1].reshape(-1, full_logits.shape[-1]), lm_labels[:, 1:].reshape(-1), ignore_index=-100
        )
        expected_cls = F.cross_entropy(model.score(hidden[:, 4]), labels)
    torch.testing.assert_close(out.lm_loss, expected_lm, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.cls_loss, expected_cls, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.loss, 0.7 * out.cls_loss + 0.3 * out.lm_loss)


@pytest.mark.parametrize("architecture", ["llama", "qwen2"])  # tied and untied reasoning heads
@pytest.mark.parametrize("chunk_size", [1, 7, 4096])
def test_chunked_lm_loss_matches_unchunked_loss_and_gradients(architecture, chunk_size):
    """The fused chunked loss against plain autograd through full `[batch, seq, vocab]` logits."""
    input_ids, attention_mask, pooling_mask, lm_labels, labels = _training_batch()
    results = []
    for fused in (True, False):
        model = tiny_dhrd(architecture, lm_loss_chunk_size=chunk_size).train()
        if fused:
            out = model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                pooling_mask=pooling_mask,
                lm_labels=lm_labels,
                labels=labels,
            )
            loss, lm_loss = out.loss, out.lm_loss
        else:
            hidden = model.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            logits = model.lm_head(hidden)
            lm_loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), lm_labels[:, 1:].flatten(), ignore_index=-100)
            loss = F.cross_entropy(model.score(hidden[:, 4]), labels) + lm_loss
        loss.backward()
        grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
        results.append((lm_loss.detach(), grads))
    (fused_loss, fused_grads), (plain_loss, plain_grads) = results
    torch.testing.assert_close(fused_loss, plain_loss, atol=1e-5, rtol=0)
    assert fused_grads.keys() == plain_grads.keys()
    for name in plain_grads:
        torch.testing.assert_close(fused_grads[name], plain_grads[name], atol=1e-5, rtol=1e-4, msg=name)


def test_vocabulary_projection_is_one_chunk_at_a_time_and_never_at_inference(monkeypatch):
    model = tiny_dhrd("llama", lm_loss_chunk_size=5).train()
    vocab = model.config.text_config.vocab_size
    projected_rows = []
    linear = F.linear

    def recording_linear(input, weight, bias=None):
        output = linear(input, weight, bias)
        if output.shape[-1] == vocab:
            projected_rows.append(output.numel() // vocab)
        return output

    monkeypatch.setattr(F, "linear", recording_linear)
    with torch.no_grad():
        model(input_ids=_random_ids(4, 12))
    assert projected_rows == []  # inference: no vocabulary logits at all
    input_ids, attention_mask, pooling_mask, lm_labels, labels = _training_batch()
    out = model(input_ids=input_ids, attention_mask=attention_mask, pooling_mask=pooling_mask, lm_labels=lm_labels)
    out.loss.backward()
    n_targets = int((lm_labels[:, 1:] != -100).sum())
    assert max(projected_rows) <= 5
    assert sum(projected_rows) == n_targets  # targets only, each projected once (no recomputation)


def test_non_linear_reasoning_head_falls_back_to_checkpointed_chunks():
    input_ids, attention_mask, pooling_mask, lm_labels, labels = _training_batch()
    grads = []
    for chunk_size in (3, 10**9):
        model = tiny_dhrd("qwen2", lm_loss_chunk_size=chunk_size).train()
        model.lm_head = torch.nn.Sequential(model.lm_head)  # not an nn.Linear: no fused path
        out = model(input_ids=input_ids, attention_mask=attention_mask, pooling_mask=pooling_mask, lm_labels=lm_labels)
        out.loss.backward()
        grads.append((out.loss.detach(), model.lm_head[0].weight.grad.clone()))
    torch.testing.assert_close(grads[0][0], grads[1][0], atol=1e-5, rtol=0)
    torch.testing.assert_close(grads[0][1], grads[1][1], atol=1e-6, rtol=1e-4)


def test_lm_weight_zero_skips_the_reasoning_head():
    model = tiny_dhrd("llama", lm_weight=0.0)
    input_ids, attention_mask, pooling_mask, lm_labels, labels = _training_batch()
    out = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        pooling_mask=pooling_mask,
        lm_labels=lm_labels,
        labels=labels,
    )
    assert out.lm_loss is None
    torch.testing.assert_close(out.loss, out.cls_loss)


def test_explicit_normalisers_divide_the_summed_losses():
    model = tiny_dhrd("llama")
    input_ids, attention_mask, pooling_mask, lm_labels, labels = _training_batch()
    kwargs = dict(input_ids=input_ids, attention_mask=attention_mask, pooling_mask=pooling_mask, lm_labels=lm_labels)
    with torch.no_grad():
        mean = model(**kwargs, labels=labels)
        scaled = model(**kwargs, labels=labels, num_examples=12, num_lm_tokens=1000)
    n_tokens = int((lm_labels[:, 1:] != -100).sum())
    torch.testing.assert_close(scaled.cls_loss, mean.cls_loss * 3 / 12)
    torch.testing.assert_close(scaled.lm_loss, mean.lm_loss * n_tokens / 1000)


def test_label_out_of_range_names_the_label():
    model = tiny_dhrd("llama", num_labels=3)
    with pytest.raises(ValueError, match="Label 3 is out of range.*num_labels=3"):
        model(input_ids=_random_ids(2, 4), labels=torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="class indices"):
        model(input_ids=_random_ids(2, 4), labels=torch.tensor([0.0, 1.0]))


def test_lm_labels_without_pooling_mask_is_refused():
    model = tiny_dhrd("llama")
    ids = _random_ids(2, 4)
    with pytest.raises(ValueError, match="pooling_mask"):
        model(input_ids=ids, lm_labels=ids)


@pytest.mark.parametrize(
    "config_factory, message",
    [
        (lambda: BertConfig(), "not causal"),
        (lambda: T5Config(), "encoder-decoder"),
    ],
)
def test_non_decoder_backbones_are_refused(config_factory, message):
    with pytest.raises(ValueError, match=message):
        DHRDConfig(text_config=config_factory())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"pooling": "max"}, "pooling"),
        ({"head": "conv"}, "head"),
        ({"lm_weight": -1.0}, "lm_weight"),
        ({"cls_weight": 0.0, "lm_weight": 0.0}, "both be 0"),
        ({"classifier_dropout": 1.5}, "classifier_dropout"),
        ({"lm_loss_chunk_size": 0}, "lm_loss_chunk_size"),
    ],
)
def test_invalid_config_fields_raise_clear_errors(kwargs, message):
    from huggingface_hub.errors import StrictDataclassError

    with pytest.raises((ValueError, StrictDataclassError), match=message):
        DHRDConfig(text_config=tiny_text_config("llama"), **kwargs)


def test_auto_classes_resolve_dhrd_and_round_trip_logits(tmp_path):
    model = tiny_dhrd("gpt2", num_labels=2, head="mlp")
    config = AutoConfig.for_model("dhrd", text_config=tiny_text_config("gpt2").to_dict(), num_labels=2)
    assert isinstance(config, DHRDConfig)
    assert isinstance(AutoModelForSequenceClassification.from_config(config), DHRDForSequenceClassification)
    model.save_pretrained(tmp_path)
    saved = sorted(path.name for path in tmp_path.iterdir())
    assert {"configuration_dhrd.py", "modeling_dhrd.py", "model.safetensors", "config.json"} <= set(saved)
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert type(reloaded) is DHRDForSequenceClassification
    assert (
        reloaded.config.auto_map["AutoModelForSequenceClassification"] == "modeling_dhrd.DHRDForSequenceClassification"
    )
    ids = _random_ids(2, 6)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=ids).logits, model(input_ids=ids).logits, atol=0, rtol=0)
    assert reloaded.lm_head.weight is reloaded.model.get_input_embeddings().weight  # GPT-2 ties


def test_loading_with_mismatched_num_labels_is_an_error(tmp_path):
    tiny_dhrd("llama", num_labels=3).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="num_labels=5 conflicts with the 3 labels"):
        AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=5)
    with pytest.raises(ValueError, match="num_labels=5 conflicts with the 3 labels"):
        DHRDConfig(text_config=tiny_text_config("llama"), id2label={0: "a", 1: "b", 2: "c"}, num_labels=5)


@pytest.mark.parametrize("tie", [True, False])
def test_from_backbone_keeps_pretrained_weights_and_lm_head(tmp_path, tie):
    torch.manual_seed(0)
    text_config = tiny_text_config("llama")
    text_config.tie_word_embeddings = tie
    causal_lm = LlamaForCausalLM(text_config).eval()
    causal_lm.save_pretrained(tmp_path)
    model = DHRDForSequenceClassification.from_backbone(str(tmp_path), num_labels=4, head="mlp").eval()
    assert model.config.num_labels == 4 and model.config.head == "mlp"
    assert (model.lm_head.weight is model.model.embed_tokens.weight) == tie
    ids = _random_ids(2, 7)
    with torch.no_grad():
        expected = causal_lm(input_ids=ids).logits
        hidden = model.model(input_ids=ids).last_hidden_state
        torch.testing.assert_close(model.lm_head(hidden), expected, atol=1e-5, rtol=0)
    assert model.config.text_config._attn_implementation == causal_lm.config._attn_implementation


def test_gradient_checkpointing_gives_the_same_gradients():
    input_ids, attention_mask, pooling_mask, lm_labels, labels = _training_batch()
    grads = []
    for checkpointing in (False, True):
        model = tiny_dhrd("llama").train()
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        out = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            pooling_mask=pooling_mask,
            lm_labels=lm_labels,
            labels=labels,
        )
        out.loss.backward()
        grads.append(model.model.layers[0].self_attn.q_proj.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], atol=1e-6, rtol=1e-5)
