"""`dhrd`: the command line. Each subcommand parses its arguments with transformers' `HfArgumentParser` (every
dataclass field is a flag, `--snake_case` or `--dash-case`), or reads them from one YAML/JSON file:

    dhrd rationales --task copa --data_dir ../shared/data --join copa_sse --output_dir rationales/copa
    dhrd train --task copa --train_file rationales/copa/rationales.jsonl --output_dir runs/copa --lm-weight 1
    dhrd evaluate --model runs/copa --task copa --data_dir ../shared/data
    dhrd export --model runs/copa --output_dir exported/copa [--push_to_hub user/copa-dhrd]
    dhrd demo [--quick]

Bad input ends with one line on stderr and a non-zero exit, not a traceback.
"""

import logging
import sys
from collections.abc import Callable, Sequence

from transformers import HfArgumentParser

USAGE = __doc__.split("\n\n", 1)[1]


def _parse(dataclass_types: tuple, argv: Sequence[str], prog: str):
    parser = HfArgumentParser(dataclass_types, prog=prog)
    if len(argv) == 1 and argv[0].endswith((".yaml", ".yml")):
        return parser.parse_yaml_file(argv[0])
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(argv[0])
    return parser.parse_args_into_dataclasses(args=list(argv))


def cmd_rationales(argv: Sequence[str]) -> str:
    from .dataset_args import DatasetArguments
    from .rationale_command import RationaleArguments, run_rationales

    args, data_args = _parse((RationaleArguments, DatasetArguments), argv, "dhrd rationales")
    return run_rationales(args, data_args)


def cmd_train(argv: Sequence[str]) -> str:
    from .dataset_args import DatasetArguments
    from .run_training import ModelArguments, TrainCommandArguments, run_training

    model_args, data_args, training_args = _parse(
        (ModelArguments, DatasetArguments, TrainCommandArguments), argv, "dhrd train"
    )
    trainer = run_training(model_args, data_args, training_args)
    return f"saved {training_args.output_dir} ({trainer.state.global_step} steps)"


def cmd_evaluate(argv: Sequence[str]) -> str:
    from .dataset_args import DatasetArguments
    from .evaluate_command import EvaluateArguments, run_evaluate

    args, data_args = _parse((EvaluateArguments, DatasetArguments), argv, "dhrd evaluate")
    return run_evaluate(args, data_args)


def cmd_predict(argv: Sequence[str]) -> str:
    from .dataset_args import DatasetArguments
    from .predict_command import PredictArguments, run_predict

    args, data_args = _parse((PredictArguments, DatasetArguments), argv, "dhrd predict")
    return run_predict(args, data_args)


def cmd_export(argv: Sequence[str]) -> str:
    from .export_command import ExportArguments, run_export

    (args,) = _parse((ExportArguments,), argv, "dhrd export")
    return run_export(args)


def cmd_demo(argv: Sequence[str]) -> str:
    from .demo import DemoArguments, run_demo

    (args,) = _parse((DemoArguments,), argv, "dhrd demo")
    return run_demo(args)


COMMANDS: dict[str, Callable[[Sequence[str]], str]] = {
    "rationales": cmd_rationales,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "export": cmd_export,
    "demo": cmd_demo,
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
    try:
        print(COMMANDS[name](rest))
    except KeyboardInterrupt:
        print(f"dhrd {name}: interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, ImportError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"dhrd {name}: error: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
