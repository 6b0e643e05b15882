#!/usr/bin/env bash
# Retrain the shipped pocket decoder (lyra/assets/decoder) from scratch on CPU; every step resumes when re-run.
#   bash configs/pocket/retrain.sh            (from the repository root, the shipped tokenizer in place)
# Environment: THREADS (torch threads per process, default 1), SCENES (default 72), NICE (default 5).
set -euo pipefail
THREADS=${THREADS:-1}
SCENES=${SCENES:-120}
PY=${PYTHON:-python}
RUN="nice -n ${NICE:-5} $PY -m"
mkdir -p runs/pocket
# 1. data: procedural worlds (kind mix: rooms, yards and photo worlds) rendered exactly along the six trajectories
#    (2x2 anti-aliased RGB: photo textures alias at 64x112 otherwise), round-tripped through the tokenizer
$RUN lyra.cli.main sdg --scenes "$SCENES" --out runs/pocket/sdg --frames 17 --height 64 --width 112 \
    --kind mix --supersample 2 --tokenizer pocket-v1 --seed 0 --threads "$THREADS" --quiet
# 2. the three stages (each initialised from the previous one; relative step counts)
for s in 1 2 3; do
    $RUN lyra.cli.train_cmd configs/pocket/stage$s.yaml --set threads="$THREADS" --quiet
done
# 3. held-out evaluation (scene keys whose hash falls in the 10 % test share are never trained on)
$RUN lyra.cli.eval_cmd --data runs/pocket/sdg --decoder runs/pocket/stage3/final --tokenizer pocket-v1 \
    --out runs/pocket/eval --split-method hash --test-fraction 0.1 --stride 4 --threads "$THREADS" --quiet
# 4. ship: config.json + model.safetensors (the model card is written by hand from runs/pocket/*/summary.json)
mkdir -p lyra/assets/decoder
cp runs/pocket/stage3/final/config.json runs/pocket/stage3/final/model.safetensors lyra/assets/decoder/
