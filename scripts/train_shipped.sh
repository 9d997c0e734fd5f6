#!/usr/bin/env bash
# Reproduce the shipped encoder (coversearch/resources/encoder.pt + .json):
# generate the synthetic training set (train profile, seed 1, works disjoint
# from the benchmark ids), then train on it. Seeds are fixed, so with one
# generator version the data is identical and the weights identical up to
# torch's CPU nondeterminism. NOTE: the shipped encoder (1cc1716364a60ad3) was
# trained on data from generator commit dbae197 (before generator_version 2);
# today's generator gives different training data (see README, Results).
#   bash scripts/train_shipped.sh            # writes models/encoder.pt
#   OUT=coversearch/resources/encoder.pt bash scripts/train_shipped.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
N_WORKS=${N_WORKS:-2516}
EPOCHS=${EPOCHS:-14}
OUT=${OUT:-models/encoder.pt}
DATA=${DATA:-data/train-s1}
if [ ! -f "$DATA/.coversearch-synth.json" ]; then
  coversearch synth "$DATA" --profile train --seed 1 --n-works "$N_WORKS" --hop 4096 \
    --features hpcp --layout per-feature --jobs 2
fi
coversearch train --data "$DATA" --out "$OUT" --epochs "$EPOCHS" --dim 128 --loss supcon --seed 0 --skip-bad
