#!/bin/sh
# Regenerate the bundled default traces from the committed tiny checkpoints
# (workloads/data/tiny-{silu,relu}.pt): 50 DDIM steps, batch 4, measurement seed 0,
# calibration seed 1000, one torch thread. Deterministic on a given torch build.
#   sh scripts/make_bundled_traces.sh
set -e
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python
export OMP_NUM_THREADS=1
for m in tiny-silu tiny-relu; do
  "$PY" -m difftlm.cli trace capture --model "$m" --steps 50 --batch 4 --seed 0 \
      --out "workloads/data/traces/$m-50.trace.zip"
  "$PY" -m difftlm.cli trace validate "workloads/data/traces/$m-50.trace.zip"
done
