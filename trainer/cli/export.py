"""`dhrd export`: `export_classifier` to a folder with a model card, optionally uploaded to the Hub."""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from transformers import AutoConfig, AutoModelForMultipleChoice, AutoModelForSequenceClassification, AutoTokenizer

from modeling_dhrd import export_classifier
from modeling_dhrd.atomic import atomic_write_text
from modeling_dhrd.unwrap import is_dhrd

from ..inference.classify import TRAINING_RECORD, load_pretrained, training_record
from ..kinds.registry import kind_of
from ..training.model_card import model_card_fields, render_model_card
from .checks import model_argument


@dataclass
class ExportArguments:
    model: str = model_argument("A DHRD checkpoint folder (as written by `dhrd train`).")
    output_dir: str = field(metadata={"help": "Where the exported classifier goes (written atomically)."})
    overwrite: bool = field(default=False, metadata={"help": "Replace an existing output_dir."})
    push_to_hub: str | None = field(default=None, metadata={"help": "Upload the export to this Hub repo id."})
    private: bool = field(default=False, metadata={"help": "Create the Hub repo as private."})
    token_env: str = field(default="HF_TOKEN", metadata={"help": "Env variable holding the Hub token."})


def push_folder_to_hub(folder: str | os.PathLike, repo_id: str, token: str | None = None, private: bool = False):
    """Create (if needed) the model repo and upload the exported folder in one commit."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    return api.upload_folder(
        folder_path=str(folder),
        repo_id=repo_id,
        repo_type="model",
        commit_message="Upload DHRD classifier (reasoning head dropped)",
    )


def run_export(args: ExportArguments) -> str:
    source = Path(args.model)
    if not (source / "config.json").is_file():
        raise FileNotFoundError(f"{source} is not a model folder (no config.json).")
    import modeling_dhrd  # noqa: F401 - registers DHRD with the Auto classes

    config = AutoConfig.from_pretrained(source)
    option_scorer = kind_of(config).scores_options  # exports as a one-output option scorer
    auto_class = AutoModelForMultipleChoice if option_scorer else AutoModelForSequenceClassification
    model = load_pretrained(auto_class, str(source), config=config)
    if not is_dhrd(model):
        raise ValueError(f"{source} holds a {model.config.model_type!r} model, not a DHRD checkpoint.")
    tokenizer = AutoTokenizer.from_pretrained(source)
    result = export_classifier(model, args.output_dir, tokenizer, overwrite=args.overwrite)
    record = training_record(str(source))
    card = render_model_card(
        repo_id=args.push_to_hub or Path(args.output_dir).name,
        base_model=record.get("base_model"),
        architecture=result.architecture,
        native=result.native,
        **model_card_fields(model.config),
        training=record.get("training"),
        metrics=record.get("eval_metrics"),
        datasets=record.get("datasets", []),
    )
    atomic_write_text(Path(args.output_dir) / "README.md", card)
    if record:  # predict reads the truncation and input format the model was trained with from it
        atomic_write_text(Path(args.output_dir) / TRAINING_RECORD, json.dumps(record, indent=2) + "\n")
    line = f"exported {result.architecture} to {args.output_dir} (max logit diff {result.max_abs_diff:.2e})"
    if args.push_to_hub:
        commit = push_folder_to_hub(args.output_dir, args.push_to_hub, os.environ.get(args.token_env), args.private)
        line += f"\npushed to {getattr(commit, 'commit_url', args.push_to_hub)}"
    return line
