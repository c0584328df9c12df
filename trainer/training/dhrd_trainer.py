"""`DHRDTrainer`: the HF `Trainer` with DHRD's single-pass joint loss.

- One backbone pass per batch gives both losses (the classifier pools at the input positions).
- Gradient accumulation is exact: the classification loss is divided by the number of examples and the LM loss by
  the number of LM target tokens of the whole accumulation window (over all processes), so batch 1 x 4 steps gives
  the gradients of batch 4.
- Evaluation and prediction use the inference path: the input alone, no rationale.
"""

import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from peft import LoraConfig, PeftConfig, PeftModel, get_peft_model
from transformers import EarlyStoppingCallback, EvalPrediction, PreTrainedModel, PreTrainedTokenizerBase, Trainer
from transformers.trainer_callback import PrinterCallback, ProgressCallback
from transformers.trainer_utils import has_length

from modeling_dhrd.atomic import atomic_write_text, give_default_permissions
from modeling_dhrd.classification_loss import example_weight
from modeling_dhrd.input_contract import InputContract
from modeling_dhrd.unwrap import unwrap_dhrd

from ..data.normalise import OPTIONS, TEXT
from ..jobs.progress import interactive
from ..kinds.base import ProblemKind
from ..kinds.metrics import eval_scores
from ..kinds.multi_label import require_multi_label
from ..kinds.registry import compute_classification_metrics, infer_kind, kind_of, named_kind
from ..tokenization import padding_id
from .arguments import (
    CONFIG_OVERRIDES,
    DHRDTrainingArguments,
    require_validation_rows,
)
from .choice_sequences import ChoiceSequenceBuilder, DHRDMultipleChoiceCollator
from .packing import check_packed_attention, pack_batch, packed_width
from .run_progress import RunProgressCallback, run_label
from .sequences import (
    PREPARED_COLUMNS,
    DHRDDataCollator,
    PreparationReport,
    SequenceBuilder,
    inference_view,
    prepare_dhrd_dataset,
)

logger = logging.getLogger(__name__)

# What the training logs report, summed between two logs: the classification and LM losses with what they are
# averaged over (examples, counted by their class weights; LM target tokens), and right answers over the rows the
# problem kind judges (all of them; none where it has no right answer).
METRIC_SUMS = ("cls_loss", "examples", "lm_loss", "lm_tokens", "correct", "judged")
PAPER_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
TUNE_ON_ONE_SET = "--tune_thresholds tunes on the validation rows: give one eval_dataset."


def paper_lora_config(r: int = 16, lora_alpha: int = 32, lora_dropout: float = 0.05, **kwargs) -> LoraConfig:
    """The paper's LoRA: r=16, alpha=32 on q, k, v, o, gate, up, down; the `score` head is trained in full."""
    kwargs.setdefault("target_modules", list(PAPER_LORA_TARGETS))
    return LoraConfig(r=r, lora_alpha=lora_alpha, lora_dropout=lora_dropout, modules_to_save=["score"], **kwargs)


class DHRDTrainer(Trainer):
    """Trainer for [`DHRDForSequenceClassification`] and [`DHRDForMultipleChoice`].

    `push_to_hub()` publishes the checkpoint with the DHRD model card (`create_model_card`), the same card as
    `dhrd export --push_to_hub` (which uploads the exported classifier instead).

    Datasets may be raw, with the columns of the data layer's normalised rows (`text`, `label`, `rationale` where
    there is one, and `options` for multiple choice: what `LabelledData.rows` gives; rename others with
    `dataset.rename_columns`), tokenised with `processing_class`, or already prepared with [`prepare_dhrd_dataset`].

    The model's config gets its input contract (`config.input_contract`: input format, `max_input_length`,
    truncation side), so every checkpoint, `save_model()` and `push_to_hub()` carries how inputs were built.

    Args:
        peft_config: a `peft` config (e.g. [`paper_lora_config`]) to train adapters on the backbone; `score` is
            trained and saved (`modules_to_save`), the reasoning head stays frozen.
        input_format: how raw rows were rendered into their `text` column before they reached the trainer (the
            `text_column` / `text_columns` / `input_template` / `options_column` of `dhrd train`'s data description),
            recorded in the input contract. Default: the datasets' own `text` (and `options` for multiple choice).
    """

    def __init__(
        self,
        model: PreTrainedModel,
        args: DHRDTrainingArguments,
        train_dataset: Dataset | None = None,
        eval_dataset: Dataset | dict[str, Dataset] | None = None,
        processing_class: PreTrainedTokenizerBase | None = None,
        data_collator: Callable | None = None,
        compute_metrics: Callable[[EvalPrediction], dict] | None = compute_classification_metrics,
        peft_config: PeftConfig | None = None,
        input_format: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(args, DHRDTrainingArguments):
            raise TypeError(f"DHRDTrainer needs DHRDTrainingArguments, got {type(args).__name__}.")
        if args.n_gpu > 1:  # one process seeing several GPUs: the Trainer would wrap the model in DataParallel
            raise ValueError(
                f"{args.n_gpu} GPUs in one process (torch.nn.DataParallel) would count DHRD's loss twice (it is "
                "normalised over the global batch, then averaged over replicas); launch one process per GPU: "
                f"`torchrun --nproc_per_node {args.n_gpu} ...` (or `accelerate launch`), or pick one GPU with "
                "CUDA_VISIBLE_DEVICES."
            )
        if args.tune_thresholds and isinstance(eval_dataset, dict):
            raise ValueError(TUNE_ON_ONE_SET)
        dhrd = unwrap_dhrd(model, "DHRDTrainer")
        _apply_config_overrides(dhrd.config, args)
        dhrd.config.input_contract = _input_contract(dhrd, args, processing_class, input_format).to_dict()
        if peft_config is not None:
            model = _wrap_with_peft(dhrd, peft_config, args.activation_checkpointing)
        self.preparation_reports: dict[str, PreparationReport] = {}
        self._dhrd_config = dhrd.config
        self._scores_options = kind_of(dhrd.config).scores_options
        if processing_class is not None:
            train_dataset = self._prepare(train_dataset, "train", processing_class, args, include_rationale=True)
            if isinstance(eval_dataset, dict):
                eval_dataset = {
                    name: self._prepare(data, f"eval_{name}", processing_class, args, include_rationale=False)
                    for name, data in eval_dataset.items()
                }
            else:
                eval_dataset = self._prepare(eval_dataset, "eval", processing_class, args, include_rationale=False)
        if args.tune_thresholds:
            require_multi_label(dhrd.config.problem_type)
            require_validation_rows(args, eval_dataset is not None)
        if args.class_weights:
            _set_class_weights(dhrd, args, train_dataset)
        if args.early_stopping_patience is not None:
            require_validation_rows(args, eval_dataset is not None)
        kind = _kind_before_training(dhrd, train_dataset, eval_dataset)
        _choose_best_model_metric(kind, args, eval_dataset, compute_metrics is compute_classification_metrics)
        if args.early_stopping_patience is not None:
            kwargs["callbacks"] = [
                *(kwargs.get("callbacks") or []),
                EarlyStoppingCallback(early_stopping_patience=args.early_stopping_patience),
            ]
        if compute_metrics is compute_classification_metrics:  # decided at the model's tuned thresholds, if any
            compute_metrics = self._classification_metrics
        if data_collator is None:
            collator_class = DHRDMultipleChoiceCollator if self._scores_options else DHRDDataCollator
            data_collator = collator_class(padding_id(processing_class), args.lm_loss_scope)
        super().__init__(
            model=model,
            args=args,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=processing_class,
            data_collator=data_collator,
            compute_metrics=compute_metrics,
            **kwargs,
        )
        if args.fsdp and not self.is_fsdp_enabled:  # accelerate runs CPU processes as DDP and drops --fsdp
            raise ValueError(
                "--fsdp was given, but these processes would train without it (accelerate shards only on GPUs; CPU "
                "processes run as DDP): drop --fsdp on the CPU, or run on GPUs."
            )
        self._label_progress(args)
        if hasattr(self.model, "add_model_tags"):
            self.model.add_model_tags(self._tag_names)  # the Hub finds DHRD models by this tag
        self.loss_is_scaled_for_ga = True  # compute_loss normalises over the whole accumulation window
        self._pack_pad_id = getattr(self.data_collator, "pad_token_id", 0)
        if args.padding_free:
            self._pack_width = packed_width(self.model)
            self._packing_checked = False  # at the first step, once the model is placed and wrapped
        self._metric_sums = dict.fromkeys(METRIC_SUMS, 0.0)  # since the last log, on this process

    @property
    def problem_kind(self):
        """The model's problem kind (`trainer.kinds`); before training, a classifier without one is decided by its
        first labels, as in transformers."""
        return kind_of(self._dhrd_config)

    def _classification_metrics(self, eval_prediction: EvalPrediction) -> dict:
        return compute_classification_metrics(eval_prediction, self.problem_kind, self._dhrd_config.label_thresholds)

    def train(self, *args: Any, **kwargs: Any):
        """As `Trainer.train`; with `tune_thresholds`, then tunes the multi-label thresholds on the validation rows."""
        result = super().train(*args, **kwargs)
        if self.args.tune_thresholds:
            self.tune_thresholds()
        return result

    def tune_thresholds(self, eval_dataset: Dataset | None = None) -> list[float]:
        """Each label's decision threshold for F1 on `eval_dataset` (default: the trainer's), saved in the model's
        config (`label_thresholds`): what evaluation, the export and `dhrd predict` decide with."""
        from ..kinds.thresholds import tune_thresholds

        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        require_multi_label(self._dhrd_config.problem_type)
        if dataset is None or isinstance(dataset, dict):
            raise ValueError(TUNE_ON_ONE_SET)
        output = super().predict(self._prepare(dataset, "eval", self.processing_class, self.args, False))
        logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
        thresholds = tune_thresholds(1 / (1 + np.exp(-np.asarray(logits, dtype=np.float64))), output.label_ids)
        self._dhrd_config.label_thresholds = thresholds
        names = [self._dhrd_config.id2label[i] for i in range(len(thresholds))]
        logger.info("Thresholds tuned on %d validation rows: %s", len(output.label_ids), dict(zip(names, thresholds)))
        return thresholds

    def _label_progress(self, args: DHRDTrainingArguments) -> None:
        """transformers' progress output (an unlabelled bar, or bare log dicts) becomes `RunProgressCallback`: the
        run's name on every line, and no redrawn bar when stderr is not a terminal. A notebook's widget stays."""
        replaced = [c for c in self.callback_handler.callbacks if type(c) in (ProgressCallback, PrinterCallback)]
        if replaced:
            for callback in replaced:
                self.remove_callback(callback)
            self.add_callback(RunProgressCallback(run_label(args), bar=not args.disable_tqdm and interactive()))

    def _prepare(self, dataset, name, tokenizer, args, include_rationale):
        """Tokenise a raw dataset (one without `input_ids`) into DHRD sequences; prepared ones pass through, and so
        do what `Trainer.evaluate` resolves itself: a name of one of the trainer's dict of eval sets (prepared when the
        trainer was made), and a dict, whose sets come back here one by one."""
        if dataset is None or isinstance(dataset, (str, dict)) or tokenizer is None:
            return dataset
        if "input_ids" in (dataset.column_names or []):
            return dataset
        config = self._dhrd_config
        builder = (ChoiceSequenceBuilder if self._scores_options else SequenceBuilder)(
            tokenizer=tokenizer,
            id2label=config.id2label,
            reason_marker=config.reason_marker,
            answer_marker=config.answer_marker,
            max_input_length=args.max_input_length,
            max_rationale_length=args.max_rationale_length,
            max_length=args.max_length,
            # the teacher-free scope models the input alone: no rationale is read, none is required
            include_rationale=include_rationale and config.lm_weight > 0 and args.lm_loss_scope != "input",
            require_rationales=args.require_rationales,
            problem_kind=config.problem_kind,
        )
        # Rank 0 tokenises first and the other processes read the result from the datasets cache.
        with args.main_process_first(desc=f"preparing the {name} dataset"):
            prepared, report = prepare_dhrd_dataset(dataset, builder, num_proc=args.dataset_num_proc)
        if report is not None:
            logger.info("Prepared %s: %s", name, report)
            self.preparation_reports[name] = report
        return prepared

    _tag_names = ["dhrd"]

    def create_model_card(
        self,
        model_name: str | None = None,
        dataset_name: str | list[str] | None = None,
        tags: str | list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Write `README.md` in `args.output_dir`: the DHRD card (labels, settings, latest evaluation metrics as a
        `model-index`), as TRL's trainers do instead of the stock Trainer card."""
        if not self.is_world_process_zero():
            return
        from ..embedded import base_model_id
        from .model_card import build_model_card, model_card_fields

        config = self._dhrd_config
        backbone = getattr(config, "_name_or_path", "")
        evaluations = [log for log in self.state.log_history if "eval_loss" in log]
        datasets = [dataset_name] if isinstance(dataset_name, str) else list(dataset_name or [])
        card = build_model_card(
            repo_id=self.hub_model_id or model_name or Path(self.args.output_dir).name,
            base_model=base_model_id(backbone) if backbone else None,
            architecture=type(self.accelerator.unwrap_model(self.model)).__name__,
            native=False,
            **model_card_fields(config),
            training=self.training_summary(),
            metrics=eval_scores(evaluations[-1]) if evaluations else None,
            datasets=datasets,
            tags=[tags] if isinstance(tags, str) else list(tags or []),
            exported=False,
        )
        atomic_write_text(Path(self.args.output_dir) / "README.md", str(card))

    def training_summary(self) -> dict:
        """The settings a training record and a model card report."""
        return {
            "lm_loss_scope": self.args.lm_loss_scope,
            "max_input_length": self.args.max_input_length,
            "learning_rate": self.args.learning_rate,
            "steps": self.state.global_step,
            "seed": self.args.seed,
        }

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
        """As `Trainer.evaluate`; a raw dataset (text / label columns) is prepared first."""
        eval_dataset = self._prepare(eval_dataset, metric_key_prefix, self.processing_class, self.args, False)
        return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)

    def predict(self, test_dataset, ignore_keys=None, metric_key_prefix: str = "test"):
        """As `Trainer.predict`; a raw dataset (text / label columns) is prepared first."""
        test_dataset = self._prepare(test_dataset, metric_key_prefix, self.processing_class, self.args, False)
        return super().predict(test_dataset, ignore_keys, metric_key_prefix)

    def _get_eval_sampler(self, eval_dataset) -> torch.utils.data.Sampler | None:
        """Evaluation and prediction read the rows in their order, whatever the training sampler: transformers
        groups them by length under `train_sampling_strategy="group_by_length"` (its metrics follow `label_ids`),
        and then `predict`'s rows no longer line up with the dataset's (`dhrd compare` pairs them across arms)."""
        if eval_dataset is None or not has_length(eval_dataset) or self.args.world_size > 1:
            return None  # as transformers: several processes shard the rows in order and gather them back in order
        return torch.utils.data.SequentialSampler(eval_dataset)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """As `Trainer._save` (final model and checkpoints); the weights file gets the umask's permissions instead
        of the owner-only mode of the temporary file transformers writes it through."""
        super()._save(output_dir, state_dict)
        if self.args.should_save:
            output_dir = output_dir if output_dir is not None else self.args.output_dir
            if hasattr(self.accelerator.unwrap_model(self.model), "peft_config"):
                # a PEFT adapter's files hold no DHRD config: keep the run's (its trained state) beside it, so a
                # LoRA checkpoint or adapter folder says how inputs were built and what was tuned
                self._dhrd_config.save_pretrained(output_dir)
            give_default_permissions(output_dir)

    def _loss_problem_type(self) -> str:
        """The problem type the model's loss uses (an option scorer's: a cross-entropy over the options)."""
        return self.problem_kind.problem_type or "single_label_classification"

    def _class_weights(self) -> torch.Tensor | None:
        weights = self._dhrd_config.class_weights
        return torch.tensor(weights, dtype=torch.float32) if weights else None

    # The mean class weight of the rows being evaluated (None: the rows count alike); set by `evaluation_loop`.
    _eval_mean_weight: float | None = None

    def _mean_example_weight(self, dataset) -> float | None:
        """The mean weight of a prepared dataset's rows in the classification loss (`example_weight` / rows), or
        None where they all count 1: no class weights, a kind they do not weight that way, or no labels to read."""
        weights, problem_type = self._class_weights(), self._loss_problem_type()
        if weights is None or problem_type != "single_label_classification":
            return None
        if not isinstance(dataset, Dataset) or "labels" not in (dataset.column_names or []) or not len(dataset):
            return None
        labels = torch.tensor(list(dataset["labels"]))
        return float(example_weight(labels, problem_type, weights)) / len(labels)

    def evaluation_loop(self, dataloader, *args: Any, **kwargs: Any):
        """As `Trainer.evaluation_loop`, with the class-weighted loss over the whole set. transformers averages the
        batches' losses weighted by their rows, which is the weighted mean sum(w_i l_i) / sum(w_i) only if every
        batch's rows weigh the same on average: so each batch's loss is divided by its rows times the set's mean
        weight (`prediction_step`), counted once here from the prepared rows, and eval_loss no longer depends on
        --per_device_eval_batch_size."""
        self._eval_mean_weight = self._mean_example_weight(getattr(dataloader, "dataset", None))
        try:
            return super().evaluation_loop(dataloader, *args, **kwargs)
        finally:
            self._eval_mean_weight = None

    def _set_signature_columns_if_needed(self) -> None:
        # Segment lengths are not forward arguments but the collator needs them: keep them.
        if self._signature_columns is None:
            self._signature_columns = list(PREPARED_COLUMNS)

    def _get_num_items_in_batch(self, batch_samples: list, device: torch.device) -> torch.Tensor | None:
        """Examples (their summed class weights, with single-label class weights) and LM target tokens in the
        accumulation window, summed over processes: `[examples, tokens]`."""
        if not batch_samples or "labels" not in batch_samples[0]:
            return None
        weights, problem_type = self._class_weights(), self._loss_problem_type()
        examples = sum(float(example_weight(batch["labels"], problem_type, weights)) for batch in batch_samples)
        tokens = sum(
            int((batch["lm_labels"][..., 1:] != -100).sum()) for batch in batch_samples if "lm_labels" in batch
        )
        counts = torch.tensor([examples, tokens], dtype=torch.float32, device=device)
        if self.args.world_size > 1:
            counts = self.accelerator.gather(counts).view(-1, 2).sum(0)
        return counts

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | None = None,
    ):
        if num_items_in_batch is not None:
            inputs = {
                **inputs,
                "num_examples": num_items_in_batch[0],
                "num_lm_tokens": num_items_in_batch[1].clamp(min=1),
            }
        if self.args.padding_free and model.training:
            if not self._packing_checked:
                check_packed_attention(model, inputs["input_ids"].device)
                self._packing_checked = True
            inputs = pack_batch(inputs, self._pack_pad_id, self._pack_width)
        outputs = model(**inputs)
        loss = outputs.loss
        if num_items_in_batch is not None and self.accelerator.num_processes > 1:
            loss = loss * self.accelerator.num_processes  # DDP averages gradients; counts are already global
        if model.training:
            self._track_metrics(outputs, inputs)
        return (loss, outputs) if return_outputs else loss

    @torch.no_grad()
    def _track_metrics(self, outputs, inputs) -> None:
        labels, sums = inputs["labels"], self._metric_sums
        weight = float(example_weight(labels, self._loss_problem_type(), self._class_weights()))
        sums["examples"] += weight
        correct = self.problem_kind.correct(outputs.logits, labels)
        if correct is not None:
            sums["correct"] += float(correct)
            sums["judged"] += labels.shape[0]
        if outputs.cls_loss is not None:
            sums["cls_loss"] += float(outputs.cls_loss) * float(inputs.get("num_examples", weight))
        if outputs.lm_loss is not None:
            tokens = float((inputs["lm_labels"][..., 1:] != -100).sum())
            lm_scale = float(inputs["num_lm_tokens"]) if "num_lm_tokens" in inputs else tokens
            sums["lm_loss"] += float(outputs.lm_loss) * lm_scale
            sums["lm_tokens"] += tokens

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._metric_sums["examples"] > 0:
            sums = self._metric_sums
            if self.accelerator.num_processes > 1:  # one reduction for all of them, over every process
                values = torch.tensor(list(sums.values()), dtype=torch.float64, device=self.accelerator.device)
                sums = dict(zip(sums, self.accelerator.reduce(values, reduction="sum").tolist()))
            logs["cls_loss"] = round(sums["cls_loss"] / sums["examples"], 4)
            if sums["lm_tokens"] > 0:
                logs["lm_loss"] = round(sums["lm_loss"] / sums["lm_tokens"], 4)
            if sums["judged"] > 0:  # multi-label: the label set, exactly
                logs["train_accuracy"] = round(sums["correct"] / sums["judged"], 4)
            self._metric_sums = dict.fromkeys(METRIC_SUMS, 0.0)
        super().log(logs, start_time)

    def prediction_step(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor],
        prediction_loss_only: bool,
        ignore_keys: list[str] | None = None,
    ):
        """The inference path: the classifier runs over the input alone; the loss is the classification loss."""
        inputs = self._prepare_inputs(inputs)
        labels = inputs.get("labels")
        share = {}  # with class weights: this batch's share of the whole set's weight (`evaluation_loop`)
        if labels is not None and self._eval_mean_weight is not None:
            share["num_examples"] = labels.shape[0] * self._eval_mean_weight
        with torch.no_grad():
            outputs = model(**inference_view(inputs), labels=labels, **share)
        loss = outputs.cls_loss.detach() if outputs.cls_loss is not None else None
        if prediction_loss_only:
            return loss, None, None
        return loss, outputs.logits.detach(), labels


def _kind_before_training(dhrd: PreTrainedModel, *datasets) -> ProblemKind:
    """The model's kind when the trainer is made: the one its config names, else the one its first labels will make
    it (the model decides at its first batch, as transformers' classifiers do): a multi-label model whose config names
    no problem type must not be judged as single-label before then."""
    named = named_kind(dhrd.config)
    if named is not None:
        return named
    for dataset in datasets:
        for data in dataset.values() if isinstance(dataset, dict) else [dataset]:
            if data is not None and "labels" in (data.column_names or []) and len(data):
                return infer_kind(data[0]["labels"], dhrd.config.num_labels)
    return kind_of(dhrd.config)


def _metric_choices(kind: ProblemKind, eval_dataset) -> dict[str, bool]:
    """What `--metric_for_best_model` may name (less the `eval_` prefix) -> whether greater is better: the kind's
    metrics and the loss; with a dict of eval sets, per set, as transformers reports them (`eval_<set>_<metric>`)."""
    directions = {**kind.metric_directions, "loss": False}
    prefixes = [f"{name}_" for name in eval_dataset] if isinstance(eval_dataset, dict) else [""]
    return {f"{prefix}{metric}": better for prefix in prefixes for metric, better in directions.items()}


def _choose_best_model_metric(kind: ProblemKind, args: DHRDTrainingArguments, eval_dataset, kind_scores: bool) -> None:
    """The metric that picks the best checkpoint (early stopping's, `load_best_model_at_end`'s), in the problem
    kind's terms: early stopping follows the kind's headline metric unless one is named; a named metric of the kind
    takes the kind's direction unless `--greater_is_better` was given (transformers guesses it from the name, and
    would keep the highest MSE). With the kind's own metrics (`kind_scores`; a custom `compute_metrics` names its
    own), a name they do not report is refused now, not by a KeyError at the first evaluation."""
    if args.early_stopping_patience is not None and not args.metric_given:
        args.metric_for_best_model = kind.best_metric[0]
        if not args.greater_is_better_given:
            args.greater_is_better = kind.best_metric[1]
    metric = args.metric_for_best_model
    if metric is None:
        return
    if kind_scores:
        choices = _metric_choices(kind, eval_dataset)
        if metric.removeprefix("eval_") not in choices:
            raise ValueError(_unknown_metric(kind, args, eval_dataset, choices))
        if not args.greater_is_better_given:
            args.greater_is_better = choices[metric.removeprefix("eval_")]
    direction = f"{metric} ({'higher' if args.greater_is_better else 'lower'} is better)"
    if args.early_stopping_patience is not None:
        logger.info("Early stopping: patience %d evaluations on %s", args.early_stopping_patience, direction)
    else:
        logger.info("The best checkpoint is the one with the best %s", direction)


def _unknown_metric(kind: ProblemKind, args: DHRDTrainingArguments, eval_dataset, choices: dict[str, bool]) -> str:
    """The one-line refusal of a best-model metric the evaluations will not report, with the names they will."""
    if not isinstance(eval_dataset, dict):
        given = args.metric_for_best_model
        return f"--metric_for_best_model {given} is not a {kind.name} metric: give one of {', '.join(choices)}."
    names = ", ".join(f"eval_{choice}" for choice in choices)
    if args.metric_given:
        return (
            f"--metric_for_best_model {args.metric_for_best_model} names no metric of the several validation sets "
            f"(transformers reports eval_<set>_<metric>): give one of {names}."
        )
    # The default (early stopping's headline metric, or transformers' "loss") names no set.
    if args.early_stopping_patience is not None:
        flag = "--early_stopping_patience"
    elif args.load_best_model_at_end:
        flag = "--load_best_model_at_end"
    else:
        flag = "--save_strategy best"
    return f"{flag} with several validation sets follows one of them: give --metric_for_best_model, one of {names}."


def _set_class_weights(dhrd: PreTrainedModel, args: DHRDTrainingArguments, train_dataset: Dataset | None) -> None:
    """`--class_weights` into the model's config (which validates them against its labels): the numbers given, or
    'balanced' counted from the prepared training rows."""
    kind = kind_of(dhrd.config)
    if not kind.weights_classes:
        raise ValueError(f"--class_weights are not part of the {kind.name} loss: drop it.")
    weights = args.given_class_weights()
    if weights is None:
        if train_dataset is None or "labels" not in (train_dataset.column_names or []):
            raise ValueError("--class_weights balanced counts the training rows' labels: give a train_dataset.")
        weights = kind.balanced_class_weights(train_dataset["labels"], dhrd.config.id2label)
    logger.info("Class weights: %s", dict(zip(dhrd.config.id2label.values(), weights)))
    dhrd.config.class_weights = weights
    try:
        dhrd.config.validate()
    except Exception as error:  # `@strict`'s wrapper: raise the rule's own ValueError
        raise ValueError(str(error.__cause__ or error)) from None


def _input_contract(
    dhrd: PreTrainedModel, args: DHRDTrainingArguments, tokenizer, input_format: dict[str, str] | None
) -> InputContract:
    """How this run builds inputs: an option row loses its context's start (left), others the tokenizer's side."""
    kind = kind_of(dhrd.config)
    if input_format is None:
        input_format = {"text_column": TEXT}
        if kind.scores_options:
            input_format["options_column"] = OPTIONS
    side = kind.truncation_side or getattr(tokenizer, "truncation_side", "right")
    return InputContract(dict(input_format), args.max_input_length, side)


def _apply_config_overrides(config, args: DHRDTrainingArguments) -> None:
    """Arguments given explicitly override the model's settings (said in the log); the config validates them."""
    changed = {
        name: getattr(args, name)
        for name in CONFIG_OVERRIDES
        if getattr(args, name) is not None and getattr(args, name) != getattr(config, name)
    }
    for name, value in changed.items():
        logger.info(
            "%s=%s from the training arguments (the model's config had %s)", name, value, getattr(config, name)
        )
        setattr(config, name, value)
    try:
        config.validate()
    except Exception as error:  # `@strict`'s wrapper: raise the rule's own ValueError, which says what is wrong
        raise ValueError(str(error.__cause__ or error)) from None


def _wrap_with_peft(dhrd: PreTrainedModel, peft_config: PeftConfig, activation_checkpointing: bool) -> PeftModel:
    modules_to_save = set(getattr(peft_config, "modules_to_save", None) or [])
    if "score" not in modules_to_save:
        peft_config.modules_to_save = sorted(modules_to_save | {"score"})
    if activation_checkpointing:
        dhrd.enable_input_require_grads()
    with warnings.catch_warnings():  # peft 0.21 reads transformers' deprecated alias; nothing a user can change
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        model = get_peft_model(dhrd, peft_config)
    if dhrd.lm_head is not None:
        dhrd.lm_head.requires_grad_(False)  # the reasoning head reads the backbone; it is not an adapter target
    return model
