#!/usr/bin/env bash
# Reproduce the shipped encoder (coversearch/resources/encoder.pt + .json):
# generate the synthetic training set (train profile, seed 1, 5,000 works
# disjoint from the benchmark ids, generator_version 2), then train on it.
# Seeds are fixed, so the data is identical and the weights identical up to
# torch's CPU nondeterminism. ~45 CPU-min to generate, ~40-60 min to train on
# 2 cores.
#   bash scripts/train_shipped.sh            # writes models/encoder.pt
#   OUT=coversearch/resources/encoder.pt bash scripts/train_shipped.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
N_WORKS=${N_WORKS:-5000}
EPOCHS=${EPOCHS:-40}
OUT=${OUT:-models/encoder.pt}
DATA=${DATA:-data/train-v2}
if [ ! -f "$DATA/.coversearch-synth.json" ]; then
  coversearch synth "$DATA" --profile train --seed 1 --n-works "$N_WORKS" --hop 4096 \
    --features hpcp --layout per-feature --jobs 2
fi
coversearch train --data "$DATA" --out "$OUT" --epochs "$EPOCHS" --dim 128 --loss supcon --seed 0 --skip-bad
