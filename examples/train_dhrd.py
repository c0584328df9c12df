"""Train a DHRD classifier (or the pooled baseline with --lm_weight 0) on a Hub dataset, a local one or data files.

Every DHRDTrainingArguments / TrainingArguments field is a flag. The same script scales out unchanged:

    python examples/train_dhrd.py --train_file train.jsonl --output_dir out --max_steps 100
    torchrun --nproc_per_node 2 examples/train_dhrd.py ...                 # DDP (gloo on CPU, nccl on GPU)
    accelerate launch --config_file examples/accelerate/fsdp.yaml examples/train_dhrd.py ...
    accelerate launch --config_file examples/accelerate/deepspeed_zero2.yaml examples/train_dhrd.py ...
"""

import logging

from transformers import HfArgumentParser

from trainer.cli.train import ModelArguments, TrainCommandArguments, run_training
from trainer.data.description import DatasetArguments


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = HfArgumentParser((ModelArguments, DatasetArguments, TrainCommandArguments))
    model_args, data_args, training_args = parser.parse_args_into_dataclasses()
    run_training(model_args, data_args, training_args)


if __name__ == "__main__":
    main()
