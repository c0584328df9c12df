"""The `README.md` model card written next to an exported classifier (Hub metadata + how to use it)."""

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

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
(`vllm serve {repo} --runner pooling`). Tokenise inputs with right padding (as saved) and
`truncation=True, max_length={max_input_length}` to match training."""

REMOTE_USAGE = """```python
from transformers import AutoModelForSequenceClassification, AutoTokenizer

model = AutoModelForSequenceClassification.from_pretrained("{repo}", trust_remote_code=True)
tokenizer = AutoTokenizer.from_pretrained("{repo}", trust_remote_code=True)
logits = model(**tokenizer(["{example}"], return_tensors="pt")).logits
```

This export uses `pooling={pooling}` / `head={head}`, which native classifiers do not have, so it ships the DHRD code
files (they import only torch and transformers)."""


def render_model_card(
    *,
    repo_id: str,
    base_model: str | None,
    architecture: str,
    native: bool,
    label_names: Sequence[str],
    dhrd: Mapping[str, Any],
    training: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    datasets: Sequence[str] = (),
    example: str = "Premise: A man plays a guitar. Hypothesis: A person makes music.",
) -> str:
    """Markdown with YAML front matter (`library_name`, `pipeline_tag`, `base_model`, `datasets`, `tags`)."""
    metadata: dict[str, Any] = {
        "library_name": "transformers",
        "pipeline_tag": "text-classification",
        "tags": ["dhrd", "text-classification", "reasoning-distillation"],
    }
    if base_model:
        metadata["base_model"] = base_model
    if datasets:
        metadata["datasets"] = list(datasets)
    training = dict(training or {})
    usage = (NATIVE_USAGE if native else REMOTE_USAGE).format(
        repo=repo_id,
        example=example.replace('"', "'"),
        architecture=architecture,
        max_input_length=training.get("max_input_length", 512),
        pooling=dhrd.get("pooling"),
        head=dhrd.get("head"),
    )
    settings = "\n".join(f"| {key} | {value} |" for key, value in {**dhrd, **training}.items())
    scores = "\n".join(f"| {key} | {value:.4f} |" for key, value in (metrics or {}).items()) or "| (not evaluated) | |"
    labels = ", ".join(f"`{name}`" for name in label_names)
    return f"""---
{yaml.safe_dump(metadata, sort_keys=False).strip()}
---

# {repo_id.split("/")[-1]}

A text classifier trained with **Dual-Head Reasoning Distillation** (DHRD, arXiv 2509.21487) from
`{base_model or "a decoder-only LM"}`. During training a reasoning head learned teacher rationales next to the
pooled classification head; the reasoning head was dropped at export, so inference costs exactly what a pooled
classifier costs.

Labels: {labels}.

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

Exported with transformers-dhrd.
"""


def parse_front_matter(card: str) -> dict:
    """The YAML metadata block of a model card (what the Hub reads)."""
    if not card.startswith("---\n"):
        raise ValueError("A model card must start with a YAML block delimited by '---'.")
    return yaml.safe_load(card.split("---\n", 2)[1])
