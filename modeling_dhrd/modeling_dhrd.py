"""Dual-Head Reasoning Distillation (DHRD, arXiv 2509.21487) for sequence classification.

A decoder-only backbone carries two heads:

- `score`, the pooled classification head, used in training *and* inference;
- `lm_head`, the reasoning head (the backbone's own LM head), supervised on teacher rationales in training only.

With causal attention the hidden states of the input `x` do not depend on the tokens after it, so one backbone pass
over `[x, reason marker, rationale, answer marker, label]` serves both heads: the classifier pools at the input
positions and the reasoning head reads every position. At inference the model runs over `x` alone and never computes
vocabulary logits, so it costs exactly what a pooled classifier costs.

This file is copied into every saved checkpoint (remote code), so it imports only torch, transformers and its
siblings.
"""

from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoModel, AutoModelForCausalLM, PreTrainedModel
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple

from .chunked_lm_loss import IGNORE_INDEX, causal_lm_loss_sum
from .classification_loss import classification_loss_sum, example_weight, infer_problem_type
from .configuration_dhrd import MULTIPLE_CHOICE, DHRDConfig
from .pooling import (
    packed_segments,
    pool_hidden_states,
    pool_packed_hidden_states,
    position_ids_from_attention_mask,
)


@dataclass
class DHRDSequenceClassifierOutput(ModelOutput):
    """Output of [`DHRDForSequenceClassification`].

    Args:
        loss: `cls_weight * cls_loss + lm_weight * lm_loss` over the parts that were computed.
        cls_loss: cross-entropy of the pooled classifier (when `labels` are given).
        lm_loss: token-level LM loss of the reasoning head (when `lm_labels` are given and `lm_weight > 0`).
        logits: `[batch, num_labels]` classification scores.
        hidden_states, attentions: as returned by the backbone when asked for.
    """

    loss: torch.Tensor | None = None
    cls_loss: torch.Tensor | None = None
    lm_loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


class DHRDMLPHead(nn.Module):
    """The paper's 2-layer pooling MLP: `out_proj(dropout(gelu(dense(pooled))))`."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.act = nn.GELU()
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(hidden_size, num_labels)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.out_proj(self.dropout(self.act(self.dense(pooled))))


def build_score_head(config: DHRDConfig) -> nn.Module:
    """`score` head: a bias-free linear layer named like transformers' native classifiers, or the MLP."""
    hidden_size = config.text_config.hidden_size
    if config.head == "mlp":
        return DHRDMLPHead(hidden_size, config.num_labels, config.classifier_dropout)
    return nn.Linear(hidden_size, config.num_labels, bias=False)


class DHRDPreTrainedModel(PreTrainedModel):
    config_class = DHRDConfig
    config: DHRDConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules: list[str] = []  # the backbone's own are taken from `self.model` by transformers
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True


class DHRDDualHeadModel(DHRDPreTrainedModel):
    """The shared base of DHRD's heads: a decoder-only backbone, the pooled `score` head (training and inference)
    and the training-only reasoning head (`lm_head`), with one backbone pass serving both (`_two_heads`). The model
    classes, [`DHRDForSequenceClassification`] and [`DHRDForMultipleChoice`], differ in their inputs and loss, as
    transformers' `*ForSequenceClassification` and `*ForMultipleChoice` do."""

    def __init__(
        self, config: DHRDConfig, backbone: PreTrainedModel | None = None, lm_head: nn.Module | None = None
    ) -> None:
        """`backbone` / `lm_head` let `from_backbone` transplant an already loaded causal LM instead of building
        randomly initialised ones from `config.text_config`."""
        super().__init__(config)
        self.num_labels = config.num_labels
        # Transplanted modules hold pretrained weights: mark them so `post_init` does not re-initialise them.
        for module in [*(backbone.modules() if backbone is not None else ()), *(lm_head.modules() if lm_head else ())]:
            module._is_hf_initialized = True
        if backbone is None:
            backbone = AutoModel.from_config(config.text_config)
        self.model = backbone
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.score = build_score_head(config)
        if config.has_reasoning_head:
            text_config = config.text_config
            self.lm_head = lm_head or nn.Linear(text_config.hidden_size, text_config.vocab_size, bias=False)
            self._tied_weights_keys = {"lm_head.weight": f"model.{self._input_embeddings_name()}.weight"}
        else:
            self.lm_head = None
            self._tied_weights_keys = None
        self.post_init()

    @classmethod
    def from_backbone(
        cls,
        pretrained_model_name_or_path: str,
        *,
        num_labels: int | None = None,
        id2label: dict[int, str] | None = None,
        label2id: dict[str, int] | None = None,
        dtype: torch.dtype | str | None = None,
        gguf_file: str | None = None,
        attn_implementation: str | None = None,
        backbone_kwargs: dict | None = None,
        **config_kwargs,
    ) -> "DHRDDualHeadModel":
        """Build a DHRD model around a pretrained causal LM, keeping its LM head as the reasoning head.

        Args:
            pretrained_model_name_or_path: Hub id or local folder of any causal LM (`AutoModelForCausalLM`).
            num_labels, id2label, label2id: the classification labels (give `num_labels` or `id2label`).
            dtype: dtype to load the backbone in; the new heads follow it.
            gguf_file: a GGUF file inside `pretrained_model_name_or_path` (de-quantised to dense weights on load).
            attn_implementation: the backbone's attention kernel (`"sdpa"`, `"eager"`, `"flash_attention_2"`, ...), as
                in `from_pretrained`; unset, the backbone's default. Not saved: a saved model loads with the default.
            backbone_kwargs: extra keyword arguments for `AutoModelForCausalLM.from_pretrained` (e.g. `revision`,
                `attn_implementation`, `trust_remote_code`).
            config_kwargs: [`DHRDConfig`] fields (`pooling`, `head`, `lm_weight`, ...).
        """
        load_kwargs = dict(backbone_kwargs or {})
        if dtype is not None:
            load_kwargs["dtype"] = dtype
        if gguf_file is not None:
            load_kwargs["gguf_file"] = gguf_file
        if attn_implementation is not None:
            load_kwargs["attn_implementation"] = attn_implementation
        causal_lm = AutoModelForCausalLM.from_pretrained(pretrained_model_name_or_path, **load_kwargs)
        quantizer = getattr(causal_lm, "hf_quantizer", None)
        if quantizer is not None:
            if gguf_file is None:
                raise NotImplementedError(
                    f"{pretrained_model_name_or_path} loads quantized ({type(quantizer).__name__}); DHRD needs "
                    "dense backbone weights. Load it in a float dtype (LoRA adapters train on top of them)."
                )
            # GGUF tensors are de-quantized on load; without this the model refuses to save or train.
            quantizer.remove_quantization_config(causal_lm)
        for name, value in (("num_labels", num_labels), ("id2label", id2label), ("label2id", label2id)):
            if value is not None:
                config_kwargs[name] = value
        # Keep the attention implementation the backbone was loaded with (the composite config would reset it).
        config_kwargs.setdefault("attn_implementation", causal_lm.config._attn_implementation)
        config = cls.config_class(text_config=causal_lm.config, **config_kwargs)
        config._name_or_path = str(pretrained_model_name_or_path)
        backbone = getattr(causal_lm, causal_lm.base_model_prefix)
        model = cls(config, backbone=backbone, lm_head=causal_lm.get_output_embeddings())
        return model.to(backbone.dtype)

    def _input_embeddings_name(self) -> str:
        embeddings = self.model.get_input_embeddings()
        return next(name for name, module in self.model.named_modules() if module is embeddings)

    def get_input_embeddings(self) -> nn.Module:
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module | None:
        return self.lm_head

    def set_output_embeddings(self, new_embeddings: nn.Module) -> None:
        self.lm_head = new_embeddings

    def _two_heads(
        self,
        *,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        pooling_mask: torch.Tensor | None = None,
        lm_labels: torch.LongTensor | None = None,
        num_lm_tokens: int | torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None, ModelOutput]:
        """One backbone pass over `[batch, seq]` rows: the pooled head's logits, the reasoning head's LM loss (when
        `lm_labels` are given and `lm_weight > 0`) and the backbone's outputs.

        Packed rows (no `attention_mask`, `position_ids` restarting at each sequence: transformers' padding-free
        format, `trainer.training.packing`) give one logit row per packed sequence that `pooling_mask` marks, in
        the order they lie in the packs; attention stays within each sequence (the backbone derives the mask from
        the positions) and no sequence's last token is trained to predict the next one's first."""
        if lm_labels is not None and pooling_mask is None:
            raise ValueError(
                "`lm_labels` were given without `pooling_mask`: the classifier would pool at the end of the "
                "rationale instead of the end of the input. Pass `pooling_mask` marking the input tokens."
            )
        if attention_mask is not None and position_ids is None:
            position_ids = position_ids_from_attention_mask(attention_mask)
        segments = packed_segments(position_ids) if attention_mask is None and position_ids is not None else None
        if segments is not None:
            if pooling_mask is None:
                raise ValueError(
                    "Packed rows (position_ids restarting, no attention_mask) need `pooling_mask` marking each "
                    "sequence's input tokens: without it a padding tail would be pooled as a sequence."
                )
            if lm_labels is not None:
                starts = torch.ones_like(segments, dtype=torch.bool)
                starts[:, 1:] = segments[:, 1:] != segments[:, :-1]
                lm_labels = lm_labels.masked_fill(starts, IGNORE_INDEX)
        backbone_kwargs = dict(kwargs)
        if output_attentions is not None:
            backbone_kwargs["output_attentions"] = output_attentions
        if output_hidden_states is not None:
            backbone_kwargs["output_hidden_states"] = output_hidden_states
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            use_cache=False,
            **backbone_kwargs,
        )
        hidden_states = outputs.last_hidden_state
        if pooling_mask is None:
            pooling_mask = attention_mask if attention_mask is not None else torch.ones_like(hidden_states[..., 0])
        if segments is not None:
            pooled = pool_packed_hidden_states(hidden_states, pooling_mask, segments, self.config.pooling)
        else:
            pooled = pool_hidden_states(hidden_states, pooling_mask, self.config.pooling)
        logits = self.score(self.dropout(pooled))

        lm_loss = None
        if lm_labels is not None and self.config.lm_weight > 0:
            if self.lm_head is None:
                raise ValueError("`lm_labels` were given but this model has no reasoning head (an exported model?).")
            lm_sum, lm_count = causal_lm_loss_sum(
                hidden_states, lm_labels, self.lm_head, self.config.lm_loss_chunk_size
            )
            denominator = num_lm_tokens if num_lm_tokens is not None else lm_count.clamp(min=1)
            lm_loss = lm_sum / denominator
        return logits, lm_loss, outputs

    def _joint_loss(self, cls_loss: torch.Tensor | None, lm_loss: torch.Tensor | None) -> torch.Tensor | None:
        """`cls_weight * cls_loss + lm_weight * lm_loss` over the parts that were computed."""
        loss = None
        if cls_loss is not None:
            loss = self.config.cls_weight * cls_loss
        if lm_loss is not None:
            weighted = self.config.lm_weight * lm_loss
            loss = weighted if loss is None else loss + weighted
        return loss


class DHRDForSequenceClassification(DHRDDualHeadModel):
    """Decoder-only classifier with a pooled `score` head and a training-only reasoning head (`lm_head`):
    single-label, multi-label, regression or ordered classes (`config.problem_kind`)."""

    def __init__(
        self, config: DHRDConfig, backbone: PreTrainedModel | None = None, lm_head: nn.Module | None = None
    ) -> None:
        if config.problem_kind == MULTIPLE_CHOICE:
            raise ValueError(
                "This is a multiple-choice option scorer (problem_kind='multiple_choice'): load it with "
                "AutoModelForMultipleChoice or DHRDForMultipleChoice, not as a sequence classifier."
            )
        super().__init__(config, backbone=backbone, lm_head=lm_head)

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        pooling_mask: torch.Tensor | None = None,
        lm_labels: torch.LongTensor | None = None,
        num_examples: int | torch.Tensor | None = None,
        num_lm_tokens: int | torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ) -> DHRDSequenceClassifierOutput:
        r"""
        Args:
            labels (`torch.Tensor`, *optional*):
                Targets of the pooled head, by `config.problem_type` (inferred from the first labels when unset, as
                in transformers): class indices `(batch_size,)` for single-label classification, multi-hot floats
                `(batch_size, num_labels)` for multi-label classification, floats for regression.
            pooling_mask (`torch.Tensor` of shape `(batch_size, sequence_length)`, *optional*):
                1 on the tokens of the classifier input `x`, 0 elsewhere (rationale, markers, label, padding). The
                classifier pools over these positions. Defaults to `attention_mask` (the sequence *is* the input, as
                at inference). Required whenever `lm_labels` is given.
            lm_labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
                Targets of the reasoning head: the token ids themselves, `-100` where no LM loss is wanted. Position
                `t` predicts `lm_labels[t + 1]`.
            num_examples (`int`, *optional*):
                Divisor of the summed classification loss; pass the number of examples in the whole gradient
                accumulation window (across processes; with single-label class weights, their summed weights:
                `example_weight`) to make accumulation exact. Defaults to this batch's.
            num_lm_tokens (`int`, *optional*):
                Divisor of the summed LM loss, likewise over the accumulation window. Defaults to this batch's count.
        """
        logits, lm_loss, outputs = self._two_heads(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            pooling_mask=pooling_mask,
            lm_labels=lm_labels,
            num_lm_tokens=num_lm_tokens,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            **kwargs,
        )
        cls_loss = None
        if labels is not None:
            if self.config.problem_type is None:  # as transformers' classifiers: decided by the first labels seen
                self.config.problem_type = infer_problem_type(self.num_labels, labels)
                self.config.problem_kind = self.config.problem_type
            problem_type = self.config.problem_type
            weights = torch.tensor(self.config.class_weights) if self.config.class_weights else None
            loss = self.config.problem_kind or problem_type  # ordered classes train with their own loss
            loss_sum, per_example = classification_loss_sum(logits, labels, loss, weights)
            denominator = num_examples if num_examples is not None else example_weight(labels, problem_type, weights)
            cls_loss = loss_sum / (denominator * per_example)
        loss = self._joint_loss(cls_loss, lm_loss)

        return DHRDSequenceClassifierOutput(
            loss=loss,
            cls_loss=cls_loss,
            lm_loss=lm_loss,
            logits=logits,
            hidden_states=outputs.hidden_states if output_hidden_states else None,
            attentions=outputs.attentions if output_attentions else None,
        )


class DHRDForMultipleChoice(DHRDDualHeadModel):
    """Decoder-only option scorer with a training-only reasoning head (`AutoModelForMultipleChoice`).

    Each option is one row `[context, option]`; the pooled `score` head gives it one scalar (the head has a single
    output), and the options of an example compete through a softmax: cross-entropy over the gold option, as in
    transformers' `*ForMultipleChoice`. Inputs are `[batch, num_choices, seq]`, all rows go through the backbone in
    one pass.

    The rationale is appended once per example, to the **gold option's row**: `[context, gold option, reason marker,
    rationale, answer marker, gold option, eos]`. That is the row whose content the rationale explains (a teacher
    says why *this* answer is right), it costs no extra sequence, and causal attention keeps every option's pooled
    position (the end of `[context, option]`) blind to it, so each option is scored exactly as at inference. Other
    rows carry no LM targets. Gradient accumulation is exact as for the classifier (`num_examples`, `num_lm_tokens`).
    """

    def __init__(
        self, config: DHRDConfig, backbone: PreTrainedModel | None = None, lm_head: nn.Module | None = None
    ) -> None:
        if config.problem_kind != MULTIPLE_CHOICE:
            raise ValueError(
                f"DHRDForMultipleChoice scores each option with one output: it needs a multiple-choice config "
                f"(DHRDConfig(problem_kind='multiple_choice', ...), or `DHRDForMultipleChoice.from_backbone`), got "
                f"problem_kind={config.problem_kind!r} with {config.num_labels} labels. The number of options comes "
                "from the inputs."
            )
        super().__init__(config, backbone=backbone, lm_head=lm_head)

    @classmethod
    def from_backbone(cls, pretrained_model_name_or_path: str, **kwargs) -> "DHRDForMultipleChoice":
        """As [`DHRDDualHeadModel.from_backbone`], with the one-output option-scoring head."""
        if kwargs.get("num_labels", 1) != 1 or len(kwargs.get("id2label") or [0]) != 1:
            raise ValueError("DHRDForMultipleChoice has a one-output head; do not pass num_labels or id2label.")
        kwargs.pop("num_labels", None)
        kwargs.pop("id2label", None)
        return super().from_backbone(pretrained_model_name_or_path, problem_kind=MULTIPLE_CHOICE, **kwargs)

    def score_rows(
        self, input_ids: torch.LongTensor | None = None, attention_mask: torch.Tensor | None = None, **kwargs
    ) -> torch.Tensor:
        """`[rows, 1]` scores of `[rows, seq]` option rows `[context, option]`, each scored as `forward` scores it
        among its example's options: what batched inference over flat option rows calls (`dhrd predict`)."""
        scores, _, _ = self._two_heads(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        return scores

    def _rationale_rows_apart(
        self,
        input_ids: torch.LongTensor | None,
        attention_mask: torch.Tensor,
        position_ids: torch.LongTensor | None,
        inputs_embeds: torch.FloatTensor | None,
        pooling_mask: torch.Tensor | None,
        lm_labels: torch.LongTensor,
        num_lm_tokens: int | torch.Tensor | None,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor | None, ModelOutput]:
        """`_two_heads` over `[rows, seq]`, with the rows that carry a rationale run apart from the others, which are
        cut to their own longest row first.

        Why: a batch pads every option row to the gold row's length, rationale included, so the other options (most
        rows: four of five on CommonsenseQA, ~30 tokens each against the gold row's ~80) would run mostly padding.
        Where the LM targets lie within the inputs (`lm_loss_scope="input"`), rows differ by an option's few tokens
        and one pass is cheaper.
        Each row attends only to its own tokens, so scores and LM loss are those of one pass (tested).
        """
        carries = (lm_labels != IGNORE_INDEX).any(-1)
        others = ~carries
        inputs = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "position_ids": position_ids,
            "inputs_embeds": inputs_embeds,
            "pooling_mask": pooling_mask,
        }
        if not carries.any() or not others.any():
            return self._two_heads(**inputs, lm_labels=lm_labels, num_lm_tokens=num_lm_tokens, **kwargs)
        positions = torch.arange(1, attention_mask.shape[-1] + 1, device=attention_mask.device)
        width = int((attention_mask[others] * positions).max())  # past the last attended token of any other row
        past_inputs = pooling_mask is None or ((lm_labels != IGNORE_INDEX) & (pooling_mask == 0)).any()
        if width >= int((attention_mask[carries] * positions).max()) or not past_inputs:  # nothing to cut: one pass
            return self._two_heads(**inputs, lm_labels=lm_labels, num_lm_tokens=num_lm_tokens, **kwargs)

        def part(tensor: torch.Tensor | None, selected: torch.Tensor, cut: int | None = None) -> torch.Tensor | None:
            return None if tensor is None else tensor[selected][:, :cut]

        carried, lm_loss, outputs = self._two_heads(
            **{name: part(t, carries) for name, t in inputs.items()},
            lm_labels=lm_labels[carries],
            num_lm_tokens=num_lm_tokens,
            **kwargs,
        )
        rest, _, _ = self._two_heads(**{name: part(t, others, width) for name, t in inputs.items()}, **kwargs)
        scores = carried.new_empty(carries.shape[0], carried.shape[-1])
        scores[carries], scores[others] = carried, rest.to(carried.dtype)
        return scores, lm_loss, outputs

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        pooling_mask: torch.Tensor | None = None,
        lm_labels: torch.LongTensor | None = None,
        num_examples: int | torch.Tensor | None = None,
        num_lm_tokens: int | torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ) -> DHRDSequenceClassifierOutput:
        r"""
        Args:
            input_ids, attention_mask, position_ids, pooling_mask, lm_labels (`[batch, num_choices, seq]`):
                as for [`DHRDForSequenceClassification`], one row per option (`inputs_embeds`: `[batch,
                num_choices, seq, hidden]`). `lm_labels` mark the rationale in the gold option's row.
            labels (`torch.LongTensor` of shape `(batch_size,)`, *optional*): index of the gold option.
            num_examples, num_lm_tokens: divisors over the accumulation window, as for the classifier.

        Returns the output with `logits` of shape `[batch, num_choices]` (one score per option).
        """
        reference = input_ids if input_ids is not None else inputs_embeds
        if reference is not None and reference.dim() == 2 and attention_mask is None and position_ids is not None:
            return self._packed_forward(
                input_ids, position_ids, inputs_embeds, labels, pooling_mask, lm_labels, num_examples, num_lm_tokens
            )
        if reference is None or reference.dim() < 3:
            raise ValueError("DHRDForMultipleChoice expects inputs of shape [batch, num_choices, seq].")
        batch_size, num_choices = reference.shape[:2]
        if num_choices < 2:
            raise ValueError(f"Each example needs at least two options to choose from, got {num_choices}.")

        def rows(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return None if tensor is None else tensor.reshape(batch_size * num_choices, *tensor.shape[2:])

        flat = {
            "input_ids": rows(input_ids),
            "attention_mask": rows(attention_mask),
            "position_ids": rows(position_ids),
            "inputs_embeds": rows(inputs_embeds),
            "pooling_mask": rows(pooling_mask),
            "lm_labels": rows(lm_labels),
        }
        # the rows that carry a rationale run apart from the other options; hidden states and attentions need one pass
        apart = lm_labels is not None and attention_mask is not None
        if apart and not (output_attentions or output_hidden_states):
            scores, lm_loss, outputs = self._rationale_rows_apart(**flat, num_lm_tokens=num_lm_tokens, **kwargs)
        else:
            scores, lm_loss, outputs = self._two_heads(
                **flat,
                num_lm_tokens=num_lm_tokens,
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
                **kwargs,
            )
        logits = scores.view(batch_size, num_choices)
        cls_loss = self._choice_loss(logits, labels, num_examples)
        return DHRDSequenceClassifierOutput(
            loss=self._joint_loss(cls_loss, lm_loss),
            cls_loss=cls_loss,
            lm_loss=lm_loss,
            logits=logits,
            hidden_states=outputs.hidden_states if output_hidden_states else None,
            attentions=outputs.attentions if output_attentions else None,
        )

    def _packed_forward(
        self,
        input_ids: torch.LongTensor | None,
        position_ids: torch.LongTensor,
        inputs_embeds: torch.FloatTensor | None,
        labels: torch.LongTensor | None,
        pooling_mask: torch.Tensor | None,
        lm_labels: torch.LongTensor | None,
        num_examples: int | torch.Tensor | None,
        num_lm_tokens: int | torch.Tensor | None,
    ) -> DHRDSequenceClassifierOutput:
        """`forward` over packed option rows (`trainer.training.packing`): each example's options lie one after
        another, so the `[sequences, 1]` scores fold into `[batch, num_choices]` with `num_choices` = sequences per
        gold label."""
        if labels is None:
            raise ValueError(
                "Packed option rows need `labels` (one gold option per example) to tell how many options each "
                "example has; score flat option rows with `score_rows`."
            )
        scores, lm_loss, _ = self._two_heads(
            input_ids=input_ids,
            attention_mask=None,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            pooling_mask=pooling_mask,
            lm_labels=lm_labels,
            num_lm_tokens=num_lm_tokens,
        )
        batch_size = labels.numel()
        if scores.shape[0] % batch_size:
            raise ValueError(f"{scores.shape[0]} packed option rows do not split into {batch_size} examples.")
        logits = scores.view(batch_size, -1)
        cls_loss = self._choice_loss(logits, labels, num_examples)
        return DHRDSequenceClassifierOutput(
            loss=self._joint_loss(cls_loss, lm_loss), cls_loss=cls_loss, lm_loss=lm_loss, logits=logits
        )

    @staticmethod
    def _choice_loss(
        logits: torch.Tensor, labels: torch.LongTensor | None, num_examples: int | torch.Tensor | None
    ) -> torch.Tensor | None:
        """Cross-entropy over each example's options (summed, divided by `num_examples`, else the batch size)."""
        if labels is None:
            return None
        batch_size, num_choices = logits.shape
        labels = labels.view(-1)
        if labels.is_floating_point() or ((labels < 0) | (labels >= num_choices)).any():
            bad = labels[(labels < 0) | (labels >= num_choices)] if not labels.is_floating_point() else labels
            raise ValueError(
                f"Gold option {bad[0].item()} is not an option index in [0, {num_choices}) "
                f"({num_choices} options per example)."
            )
        loss_sum, _ = classification_loss_sum(logits, labels, "single_label_classification")
        return loss_sum / (num_examples if num_examples is not None else batch_size)


__all__ = [
    "DHRDDualHeadModel",
    "DHRDForMultipleChoice",
    "DHRDForSequenceClassification",
    "DHRDPreTrainedModel",
    "DHRDSequenceClassifierOutput",
    "DHRDMLPHead",
]
