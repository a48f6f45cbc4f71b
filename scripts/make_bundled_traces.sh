#!/bin/sh
# Regenerate the bundled traces from the committed checkpoints
# (workloads/data/{tiny,small}-{silu,relu}.pt): 50 DDIM steps, batch 4 (tiny) or 2 (small: keeps
# the bundled data under 25 MB), measurement seed 0, calibration seed 1000, one torch thread. Deterministic on a given machine and torch build
# (another CPU may differ in the last float32 bits of a statistic).
#   sh scripts/make_bundled_traces.sh [MODEL ...]     # default: all four
set -e
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python
export OMP_NUM_THREADS=1
MODELS="${*:-tiny-silu tiny-relu small-silu small-relu}"
for m in $MODELS; do
  case "$m" in small-*) batch=2 ;; *) batch=4 ;; esac
  "$PY" -m difftlm.cli trace capture --model "$m" --steps 50 --batch "$batch" --seed 0 \
      --out "workloads/data/traces/$m-50.trace.zip"
  "$PY" -m difftlm.cli trace validate "workloads/data/traces/$m-50.trace.zip"
done
