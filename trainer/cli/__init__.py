"""`dhrd`: the command line. Each subcommand parses its arguments with transformers' `HfArgumentParser` (every
dataclass field is a flag, `--snake_case` or `--dash-case`), or reads them from one YAML/JSON file:

    dhrd rationales --task copa --data_dir ../shared/data --join copa_sse --output_dir rationales/copa
    dhrd train --task copa --train_file rationales/copa/rationales.jsonl --output_dir runs/copa --lm-weight 1
    dhrd evaluate --model runs/copa --task copa --data_dir ../shared/data
    dhrd export --model runs/copa --output_dir exported/copa [--push_to_hub user/copa-dhrd]
    dhrd predict --model exported/copa --test_file new_rows.csv --output_file predictions.parquet
    dhrd demo [--quick]
    dhrd compare --train_file rationales/tickets/rationales.jsonl --validation_file valid.csv --output_dir cmp

Your own data: every data subcommand takes the same description (`--dataset_name` or `--train_file` /
`--validation_file` / `--test_file`, `--text_column(s)`, `--input_template`, `--label_column`, `--label_names`);
see `dhrd train --help` and the README's "Your own data".

Bad input ends with one line on stderr and a non-zero exit, not a traceback.
"""

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from transformers import HfArgumentParser

SUMMARIES = {
    "rationales": "teacher rationales for a labelled dataset (a local model or a server), or an existing set joined",
    "train": "train DHRD (or the pooled baseline, --lm_weight 0) on rows with rationales",
    "evaluate": "metrics of a classifier on a labelled split, or of CoT decoding (--method cot / reasoning_head)",
    "predict": "labels and probabilities for every row of a dataset or file (resumable, any size)",
    "explain": "rationales from the trained reasoning head for the rows asked for (e.g. the least confident)",
    "export": "drop the reasoning head: a plain transformers classifier (pipeline, vLLM, the Hub)",
    "demo": "pooled vs DHRD on the embedded model (the shuffled control on request), export, speed (`make demo`)",
    "compare": "does the teacher pay on my data? pooled, input-LM, shuffled and DHRD arms over seeds, paired",
}
USAGE = "\n".join(
    [
        "usage: dhrd <command> [--flag value ...]   or   dhrd <command> config.yaml",
        "",
        "commands:",
        *(f"  {name:<11} {summary}" for name, summary in SUMMARIES.items()),
        "",
        "`dhrd <command> --help` lists a command's flags. Examples:",
        "",
        __doc__.split("\n\n", 2)[1],
    ]
)


def _parse(
    dataclass_types: tuple,
    argv: Sequence[str],
    prog: str,
    defaults: dict | None = None,
    check_flags: Callable[[argparse.Namespace], None] | None = None,
):
    """Flags, or one YAML/JSON file whose keys are the flags' names (its values go through the same argparse types,
    so a wrong type in the file is reported like a wrong flag). `defaults` replace the dataclasses' defaults;
    `check_flags` sees argparse's values before the dataclasses are built (and run their own checks)."""
    parser = HfArgumentParser(dataclass_types, prog=prog, allow_abbrev=False)  # `--learning_rat` is no flag
    if defaults:
        parser.set_defaults(**defaults)
    parser.error = _refuse  # argparse's usage + message + exit(2) becomes one line
    if len(argv) == 1 and argv[0].endswith((".yaml", ".yml", ".json")):
        argv = _config_file_argv(argv[0])
    if check_flags is not None:
        check_flags(parser.parse_args(list(argv)))
    return parser.parse_args_into_dataclasses(args=list(argv))


def _refuse(message: str):
    raise ValueError(message)


def _config_file_argv(path: str) -> list[str]:
    import json

    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle) if path.endswith(".json") else yaml.safe_load(handle)
    except (yaml.YAMLError, json.JSONDecodeError) as error:
        problem = " ".join(str(error).split())
        raise ValueError(f"{path}: not valid {'JSON' if path.endswith('.json') else 'YAML'} ({problem}).") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: the config file must map argument names to values, got {type(config).__name__}.")
    argv = []
    for key, value in config.items():
        if value is None:
            continue
        if isinstance(value, list):
            argv += [f"--{key}", *map(str, value)]
        elif isinstance(value, dict):
            argv += [f"--{key}", json.dumps(value)]
        else:
            argv += [f"--{key}", str(value)]
    return argv


def cmd_rationales(argv: Sequence[str]) -> str:
    from ..data.description import DatasetArguments
    from ..device import DeviceArguments
    from .rationales import RationaleArguments, run_rationales

    args, device, data_args = _parse((RationaleArguments, DeviceArguments, DatasetArguments), argv, "dhrd rationales")
    return run_rationales(args, data_args, device)


def cmd_train(argv: Sequence[str]) -> str:
    from ..data.description import DatasetArguments
    from .train import ModelArguments, TrainCommandArguments, run_training

    model_args, data_args, training_args = _parse(
        (ModelArguments, DatasetArguments, TrainCommandArguments), argv, "dhrd train"
    )
    trainer = run_training(model_args, data_args, training_args)
    return f"saved {training_args.output_dir} ({trainer.state.global_step} steps)"


def cmd_evaluate(argv: Sequence[str]) -> str:
    from ..data.description import DatasetArguments
    from ..device import DeviceArguments
    from .evaluate import EvaluateArguments, run_evaluate

    args, device, data_args = _parse((EvaluateArguments, DeviceArguments, DatasetArguments), argv, "dhrd evaluate")
    return run_evaluate(args, data_args, device)


def cmd_explain(argv: Sequence[str]) -> str:
    from ..data.description import DatasetArguments
    from ..device import DeviceArguments
    from .explain import ExplainArguments, run_explain

    args, device, data_args = _parse((ExplainArguments, DeviceArguments, DatasetArguments), argv, "dhrd explain")
    return run_explain(args, data_args, device)


def cmd_predict(argv: Sequence[str]) -> str:
    from ..data.description import DatasetArguments
    from ..device import DeviceArguments
    from .predict import PredictArguments, run_predict

    args, device, data_args = _parse((PredictArguments, DeviceArguments, DatasetArguments), argv, "dhrd predict")
    return run_predict(args, data_args, device)


def cmd_export(argv: Sequence[str]) -> str:
    from .export import ExportArguments, run_export

    (args,) = _parse((ExportArguments,), argv, "dhrd export")
    return run_export(args)


DEMO_CHOOSES_ON_HELD_OUT_ROWS = (
    "dhrd demo compares its methods at a fixed step count on held-out rows, and early stopping, the best checkpoint "
    "or a plateau/greedy scheduler would choose on those rows: use them with `dhrd train --validation_file ...`."
)


def _refuse_choosing_on_held_out_rows(flags: argparse.Namespace) -> None:
    """Before the training arguments are built: early stopping's own check would refuse first, naming the demo's
    `--save_strategy no`, a flag the user never gave."""
    if flags.early_stopping_patience is not None or flags.load_best_model_at_end:
        raise ValueError(DEMO_CHOOSES_ON_HELD_OUT_ROWS)


def cmd_demo(argv: Sequence[str]) -> str:
    from ..device import DeviceArguments
    from ..training.arguments import DHRDTrainingArguments
    from .demo import DemoArguments, run_demo
    from .demo_setting import DEMO_TRAINING_DEFAULTS

    args, device, training = _parse(
        (DemoArguments, DeviceArguments, DHRDTrainingArguments),
        argv,
        "dhrd demo",
        DEMO_TRAINING_DEFAULTS,
        check_flags=_refuse_choosing_on_held_out_rows,
    )
    if training.chooses_on_validation:  # a plateau or greedy scheduler
        raise ValueError(DEMO_CHOOSES_ON_HELD_OUT_ROWS)
    if training.lm_loss_scope == "input":
        raise ValueError(
            "dhrd demo trains DHRD on rationales; --lm_loss_scope input reads none (its 'DHRD' rows would be the "
            "teacher-free control): compare the two with `dhrd compare --arms input_lm,dhrd`."
        )
    return run_demo(args, training, device)


def cmd_compare(argv: Sequence[str]) -> str:
    from ..data.description import DatasetArguments
    from .compare import CompareArguments, run_compare
    from .train import ModelArguments, TrainCommandArguments

    args, model_args, data_args, training = _parse(
        (CompareArguments, ModelArguments, DatasetArguments, TrainCommandArguments), argv, "dhrd compare"
    )
    return run_compare(args, model_args, data_args, training)


COMMANDS: dict[str, Callable[[Sequence[str]], str]] = {
    "rationales": cmd_rationales,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "explain": cmd_explain,
    "export": cmd_export,
    "demo": cmd_demo,
    "compare": cmd_compare,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"dhrd: unknown command {name!r}; choose from {', '.join(COMMANDS)}.", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from ..jobs.progress import quiet_library_bars

    quiet_library_bars()  # in a log file, `datasets`' and transformers' redrawn bars are noise
    try:
        print(COMMANDS[name](rest))
    except KeyboardInterrupt:
        print(f"dhrd {name}: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exit_:  # `--help` (0) and anything that exits on purpose
        return exit_.code if isinstance(exit_.code, int) else 1
    except Exception as error:  # every failure ends in one line; DHRD_DEBUG=1 shows the traceback too
        if os.environ.get("DHRD_DEBUG"):
            traceback.print_exc()
        print(f"dhrd {name}: error: {describe(error)}", file=sys.stderr)
        return 1
    return 0


def describe(error: BaseException) -> str:
    """One line: the message of the errors this project raises on purpose; type and message of anything else."""
    if isinstance(error, KeyError) and error.args:
        message = str(error.args[0])
    elif isinstance(error, (OSError, ValueError, KeyError, TypeError, RuntimeError, ImportError)):
        message = str(error)
    else:
        message = f"{type(error).__name__}: {error}"
    message = " ".join(message.split()) or type(error).__name__
    return message if len(message) <= 600 else message[:597] + "..."


if __name__ == "__main__":
    sys.exit(main())
