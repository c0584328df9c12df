"""The model card (`README.md`) of a DHRD model on the Hub, built with `huggingface_hub.ModelCard`: the same card for
`dhrd export --push_to_hub` and `DHRDTrainer.push_to_hub()`. Metadata: `library_name`, `pipeline_tag`, `base_model`,
`datasets`, `tags` and, with metrics, a `model-index` the Hub renders as evaluation results."""

from collections.abc import Mapping, Sequence
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..kinds.registry import MULTIPLE_CHOICE, SINGLE_LABEL, kind_of

TAGS = ["dhrd", "text-classification", "reasoning-distillation"]
AFTER_EXPORT = "the reasoning head was dropped at export"
BEFORE_EXPORT = "this training checkpoint still carries the reasoning head, but inference never runs it"

CITATION = """@article{dhrd2025,
  title   = {Dual-Head Reasoning Distillation: Improving Classifier Accuracy with Train-Time-Only Reasoning},
  journal = {arXiv preprint arXiv:2509.21487},
  year    = {2025}
}"""

NATIVE_USAGE = """```python
from transformers import pipeline

classifier = pipeline("text-classification", model="{repo}")
classifier("{example}")
```

The checkpoint is a plain `{architecture}`: it also loads with
`AutoModelForSequenceClassification.from_pretrained("{repo}")` and serves with vLLM's pooling runner
(`vllm serve {repo} --runner pooling`). {truncation}"""

CHOICE_USAGE = """An option scorer: each option of a question is one input `<context>\\nAnswer: <option>`, the
model gives it one score, and the highest-scoring option is the answer.

```python
from transformers import AutoModelForSequenceClassification, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("{repo}")
scorer = AutoModelForSequenceClassification.from_pretrained("{repo}")
context = "Where would you keep a book you are reading?"
options = ["nightstand", "ocean", "oven"]
texts = [f"{{context}}\\nAnswer: {{option}}" for option in options]
scores = scorer(**tokenizer(texts, padding=True, return_tensors="pt")).logits[:, 0]
print(options[int(scores.argmax())])
```

The checkpoint is a plain `{architecture}` with one output; `dhrd predict --options_column ...` scores files of
questions. {truncation}"""

REMOTE_USAGE = """```python
from transformers import AutoModelForSequenceClassification, AutoTokenizer

model = AutoModelForSequenceClassification.from_pretrained("{repo}", trust_remote_code=True)
tokenizer = AutoTokenizer.from_pretrained("{repo}", trust_remote_code=True)
logits = model(**tokenizer(["{example}"], return_tensors="pt")).logits
```

This export uses `pooling={pooling}` / `head={head}`, which native classifiers do not have, so it ships the DHRD code
files (they import only torch and transformers)."""

REMOTE_CHOICE_USAGE = """An option scorer: each option of a question is one row `<context>\\nAnswer: <option>`, the
model gives it one score, and the highest-scoring option is the answer.

```python
from transformers import AutoModelForMultipleChoice, AutoTokenizer

scorer = AutoModelForMultipleChoice.from_pretrained("{repo}", trust_remote_code=True)
tokenizer = AutoTokenizer.from_pretrained("{repo}", trust_remote_code=True)
context = "Where would you keep a book you are reading?"
options = ["nightstand", "ocean", "oven"]
batch = tokenizer([f"{{context}}\\nAnswer: {{option}}" for option in options], padding=True, return_tensors="pt")
scores = scorer(**{{name: tensor[None] for name, tensor in batch.items()}}).logits[0]  # [1, options, tokens] in
print(options[int(scores.argmax())])
```

This export uses `pooling={pooling}` / `head={head}`, which native classifiers do not have, so it ships the DHRD code
files (they import only torch and transformers)."""


def build_model_card(
    *,
    repo_id: str,
    base_model: str | None,
    architecture: str,
    native: bool,
    label_names: Sequence[str],
    dhrd: Mapping[str, Any],
    scores_options: bool = False,
    input_contract: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    datasets: Sequence[str] = (),
    tags: Sequence[str] = (),
    exported: bool = True,
    example: str = "Premise: A man plays a guitar. Hypothesis: A person makes music.",
    labels_line: str | None = None,
) -> ModelCard:
    """The card: Hub metadata through `ModelCardData` (metrics as `model-index` results) and a usage section that
    fits the checkpoint (native classifier, or DHRD remote code; `exported=False` for a training checkpoint)."""
    name = repo_id.split("/")[-1]
    dataset = datasets[0] if datasets else None
    eval_results = [
        EvalResult(
            task_type="multiple-choice" if scores_options else "text-classification",
            dataset_type=dataset or "custom",
            dataset_name=dataset or "custom",
            dataset_split="validation",  # what `dhrd train` and the Trainer evaluate on
            metric_type=metric,
            metric_value=float(value),
        )
        for metric, value in (metrics or {}).items()
    ]
    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag="multiple-choice" if scores_options else "text-classification",
        tags=list(dict.fromkeys([*TAGS, *tags])),
        base_model=base_model or None,
        datasets=list(datasets) or None,
        model_name=name,
        eval_results=eval_results or None,
    )
    training = dict(training or {})
    usages = {(True, True): CHOICE_USAGE, (False, True): NATIVE_USAGE, (True, False): REMOTE_CHOICE_USAGE}
    usage = usages.get((scores_options, native), REMOTE_USAGE).format(
        repo=repo_id,
        example=example.replace('"', "'"),
        architecture=architecture,
        truncation=_truncation_advice(input_contract),
        pooling=dhrd.get("pooling"),
        head=dhrd.get("head"),
    )
    settings = "\n".join(f"| {key} | {value} |" for key, value in {**dhrd, **training}.items())
    scores = "\n".join(f"| {key} | {value:.4f} |" for key, value in (metrics or {}).items()) or "| (not evaluated) | |"
    if metrics and dhrd.get("label_thresholds"):  # `--tune_thresholds` tunes them on the rows scored here
        scores += (
            "\n\nThe decision thresholds (`label_thresholds`) were tuned on these validation rows, so these scores "
            "are optimistic: score held-out rows (`dhrd evaluate --split test`) for an unbiased figure."
        )
    # the kind's words (`model_card_fields` gives them); without them, those of an option scorer or of classes
    what = labels_line or (MULTIPLE_CHOICE if scores_options else SINGLE_LABEL).card_labels(label_names)
    body = f"""# {name}

A text classifier trained with **Dual-Head Reasoning Distillation** (DHRD, arXiv 2509.21487) from
`{base_model or "a decoder-only LM"}`. During training a reasoning head learned teacher rationales next to the
pooled classification head; {AFTER_EXPORT if exported else BEFORE_EXPORT}, so inference costs exactly what a pooled
classifier costs.

{what}

{_input_section(input_contract)}

## Usage

{usage}

## Training

| setting | value |
|---|---|
{settings}

## Evaluation

| metric | value |
|---|---|
{scores}

## Citation

```bibtex
{CITATION}
```

Made with transformers-dhrd.
"""
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n{body}")


def _truncation_advice(contract: Mapping[str, Any] | None) -> str:
    if not contract or not contract.get("max_input_length"):
        return "Tokenise inputs with right padding (as saved) and `truncation=True` to match training."
    return (
        f"The saved tokenizer cuts inputs as training did (`model_max_length={contract['max_input_length']}`, "
        f'`truncation_side="{contract.get("truncation_side", "right")}"`): call it, or the pipeline, with '
        "`truncation=True`."
    )


def _input_section(contract: Mapping[str, Any] | None) -> str:
    """How a row became the model's input in training (its input contract, also in `config.json`)."""
    if not contract:
        return "## Input\n\nThis model was saved without an input contract: build inputs as its training did."
    rows = {**(contract.get("input_format") or {}), "max_input_length": contract.get("max_input_length")}
    rows["truncation_side"] = contract.get("truncation_side", "right")
    table = "\n".join(f"| {key} | `{value!r}` |" for key, value in rows.items() if value is not None)
    return (
        "## Input\n\nBuilt as in training (the input contract, `config.input_contract`; `dhrd predict` reads it):\n\n"
        f"| setting | value |\n|---|---|\n{table}"
    )


def model_card_fields(config) -> dict[str, Any]:
    """`label_names`, whether it scores options, `dhrd` (the settings a card shows) and the input contract of a DHRD
    config."""
    kind, names = kind_of(config), [config.id2label[i] for i in range(config.num_labels)]
    return {
        "input_contract": getattr(config, "input_contract", None),
        "scores_options": kind.scores_options,
        "label_names": names,
        "labels_line": kind.card_labels(names),
        "dhrd": {
            name: getattr(config, name)
            for name in ("pooling", "head", "cls_weight", "lm_weight", "class_weights", "label_thresholds")
            if getattr(config, name, None) is not None
        },
    }


def render_model_card(**kwargs: Any) -> str:
    """`build_model_card(...)` as the text of a `README.md`."""
    return str(build_model_card(**kwargs))


def parse_front_matter(card: str) -> dict:
    """The metadata block of a model card (what the Hub reads), through `huggingface_hub.ModelCard`."""
    if not card.startswith("---\n"):
        raise ValueError("A model card must start with a YAML block delimited by '---'.")
    return ModelCard(card).data.to_dict()
