#!/usr/bin/env bash
# The accuracy tables of docs/RESULTS.md, one command per table, in the order they were run (2 CPU cores, bf16).
# Budgets were set so that the whole queue fits a 2-hour CPU session; see docs/RESULTS.md for what each took.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
STUDY="$PY examples/accuracy_study.py --bf16 --lm-loss-scope rationale"

# e-SNLI, PaLM-540B rationales vs human explanations; CoT accuracy of the trained reasoning head on 96 rows.
$STUDY --study esnli --seeds 0,1,2 --only pooled,dhrd,dhrd_human --steps 200 --train-rows 1600 --eval-rows 600 \
  --cot-eval 96 --cot-tokens 96 --name esnli
# COPA with COPA-SSE human explanations: COPA val (100) + the 500 labelled COPA-SSE test items; alpha ablation.
$STUDY --study copa --seeds 0,1,2 --only pooled,dhrd,dhrd_a0.3 --epochs 3 --name copa
# The shuffled-rationale control on e-SNLI (rationales permuted across rows).
$STUDY --study esnli --seeds 0,1 --shuffled --only dhrd_shuffled --steps 200 --train-rows 1600 --eval-rows 600 \
  --name esnli_shuffled
# CB with rationales from the embedded teacher (SmolLM2-135M-Instruct, generated once and cached).
$STUDY --study cb --seeds 0,1,2 --only pooled,dhrd --epochs 3 --name cb
