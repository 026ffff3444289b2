#!/usr/bin/env bash
# The GPU check: installs what the GPU machine lacks, runs raynas' GPU test tier and the supernet benchmark
# on the GPU, and writes every figure into one file. Meant for a machine with a CUDA device and the image's
# python3 (torch with CUDA); prepare the packages first where the registry is reachable:
#
#   bash tools/gpu_wheels.sh                   # here: fills .whl/ (ignored by git)
#   bash tools/gpu_check.sh [FIGURES_FILE]     # there, carrying .whl; default $OUT/gpu_figures.txt
#
# Bounded to about 9 minutes in all (each step has its own time limit), so that it fits one 10-minute run.
set -uo pipefail
cd "$(dirname "$0")/.."
figures=${1:-${OUT:-/tmp}/gpu_figures.txt}
PY=${PY:-python3}
site=/tmp/raynas-site
mkdir -p "$(dirname "$figures")" "$site"
: > "$figures"
say() { printf '%s\n' "$*" | tee -a "$figures"; }

say "== machine"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -4
  nproc; $PY --version; } 2>&1 | tee -a "$figures"

say "== install"
if [ -d .whl ]; then
  for archive in .whl/*.tar.xz; do [ -e "$archive" ] && tar xJf "$archive" -C "$site"; done
  ls .whl/*.whl >/dev/null 2>&1 && $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target "$site" .whl/*.whl 2>&1 | tail -3 | tee -a "$figures"
fi
export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export RAY_USAGE_STATS_ENABLED=0 PYTHONUNBUFFERED=1
$PY - <<'PY' 2>&1 | tee -a "$figures"
import importlib
for name in ("torch", "ray", "optuna", "pyarrow", "raynas"):
    try:
        module = importlib.import_module(name)
        print(name, getattr(module, "__version__", "?"))
    except Exception as exc:  # report and go on: the steps below say what they could not run
        print(name, "MISSING:", type(exc).__name__, exc)
import torch
print("cuda", torch.cuda.is_available(), torch.cuda.device_count(), torch.version.cuda)
PY

say "== GPU test tier (pytest -m gpu)"
timeout 330 $PY -m pytest -q -m gpu -p no:cacheprovider tests/gpu 2>&1 | tail -25 | tee -a "$figures"
say "gpu tier exit: ${PIPESTATUS[0]}"

say "== supernet step on the GPU (tools/bench_supernet.py --device cuda), batch 64, then the papers' batch sizes"
# DARTS searched with batch 64 and NB201 with 64 in their papers; 256 shows how the step scales.
for batch in 64 256; do
  timeout 90 $PY tools/bench_supernet.py --device cuda --allocator system --steps 5 --batch "$batch" --json 2>&1 \
    | tail -1 | sed "s/^/batch $batch: /" | tee -a "$figures"
done
say "== supernet step on this machine's CPU, for the ratio"
timeout 90 $PY tools/bench_supernet.py --device cpu --allocator system --steps 2 --threads "$(nproc)" --json 2>&1 \
  | tail -1 | tee -a "$figures"
say "== done; figures in $figures"
