#!/usr/bin/env bash
# The GPU check: installs what the GPU machine lacks, measures raynas on the GPU and writes every figure into
# one file. Meant for a machine with a CUDA device and the image's python3 (torch with CUDA); prepare, where
# the package registry and the reference checkouts are:
#
#   bash tools/gpu_wheels.sh [--darts PATH --nb201 PATH]   # here: .whl/ (packages) and .refs/ (the two
#                                                           # reference implementations' imported files)
#   bash tools/gpu_check.sh [FIGURES_FILE [STEP ...]]      # there, carrying .whl and .refs;
#                                                           # default $OUT/gpu_figures.txt, every step
#
# Steps, in this order (name some to run only those):
#   reference   the supernet search step on the GPU against the references, DARTS and NB201 at batch 64 (the
#               papers' search batch) and 256 (tools/bench_reference.py --device cuda: step time, images/s,
#               peak GPU memory of both sides; raynas' side alone when .refs is missing)
#   population  a quickstart-sized population on the GPU: quickstart.yaml with 4 seeds, search.device=cuda and
#               resources.gpus_per_trial=0.25 (4 trials share the GPU), timed end to end, with each trial's
#               status
#   shards      tools/bench_shards.py --device cuda: K=1 and K=2 shards (NCCL with a GPU per shard; on one
#               GPU the two shards share it over gloo) and K = the GPU count when there are more
#   build       the ground-truth build on the GPU: raynas bench build --cells 32 --seeds 0 with no base table,
#               4 trials of 8 cells at --gpus-per-trial 0.25; wall time and cell-seeds per hour
#   cpu         the same population and build on the CPUs only (4 trials, one CPU each), for the ratio
#   tier        raynas' GPU test tier (pytest -m gpu)
# The whole run is bounded by GPU_CHECK_BUDGET_S (default 540 s, so that it fits one 10-minute command): each
# step has its own time limit, never more than what is left, and a step that no longer fits is skipped with a
# line saying so (run it again on its own: bash tools/gpu_check.sh FILE tier). Without a CUDA device the GPU
# steps are skipped with a line. GPU_CHECK_WORK (default /tmp/raynas-gpu-check) holds the steps' outputs and
# logs, GPU_CHECK_SITE (default /tmp/raynas-site) the installed packages; PY is the Python (python3).
set -uo pipefail
cd "$(dirname "$0")/.."
figures=${1:-${OUT:-/tmp}/gpu_figures.txt}
shift $(( $# > 0 ? 1 : 0 ))
ALL_STEPS=(reference population shards build cpu tier)
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=("${ALL_STEPS[@]}")
for step in "${steps[@]}"; do
  [[ " ${ALL_STEPS[*]} " == *" $step "* ]] || { echo "error: step '$step': not one of ${ALL_STEPS[*]}" >&2; exit 2; }
done
PY=${PY:-python3}
budget=${GPU_CHECK_BUDGET_S:-540}
site=${GPU_CHECK_SITE:-/tmp/raynas-site}        # where .whl installs
work=${GPU_CHECK_WORK:-/tmp/raynas-gpu-check}   # the steps' outputs and logs (emptied first)
mkdir -p "$(dirname "$figures")" "$site"
rm -rf "$work" && mkdir -p "$work"
: > "$figures"
say() { printf '%s\n' "$*" | tee -a "$figures"; }
left() { echo $(( budget - SECONDS )); }
# limit CAP: a step's time limit: CAP seconds or what is left of the budget, whichever is less
limit() { local l; l=$(left); echo $(( l < $1 ? l : $1 )); }
# wanted STEP MIN: whether STEP was asked for and MIN seconds of the budget are left (else it says why not)
wanted() {
  [[ " ${steps[*]} " == *" $1 "* ]] || return 1
  (( $(left) >= $2 )) && return 0
  say "== $1: skipped, $(left) s of the ${budget}-s budget left and it needs at least $2 (run it on its own)"
  return 1
}
# bounded CAP COMMAND...: run COMMAND within limit CAP (Ctrl+C first, so raynas and Ray shut down cleanly,
# then a kill), its output into the figures file, then its exit code
bounded() {
  local cap; cap=$(limit "$1"); shift
  timeout -s INT -k 20 "$cap" "$@" 2>&1 | tee -a "$figures"
  local rc=${PIPESTATUS[0]}
  if (( rc == 124 || rc == 137 )); then say "stopped at its ${cap}-s limit (exit $rc)"; else say "exit $rc"; fi
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
seconds_since() { local ms=$(( $(now_ms) - $1 )); printf '%d.%03d' $(( ms / 1000 )) $(( ms % 1000 )); }

say "== machine"
{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -8
  echo "cpus: $(nproc)"; $PY --version; } 2>&1 | tee -a "$figures"

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
gpus=$($PY -c 'import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)' 2>/dev/null)
gpus=${gpus:-0}
if [ -d .refs ]; then say "reference copies: $(du -sb .refs | cut -f1) bytes in .refs"; else say "no .refs"; fi
say "install done at ${SECONDS} s"
if (( gpus == 0 )); then
  say "torch sees no CUDA device: the GPU steps (reference, population, shards, build, tier) are skipped"
fi

# trial_statuses TABLE: each trial of a trials.parquet: status, epochs, wall time, error
trial_statuses() {
  $PY - "$1" <<'PY' 2>&1 | tee -a "$figures"
import collections, sys
import pyarrow.parquet as pq
rows = pq.read_table(sys.argv[1]).to_pylist()
for r in rows:
    wall = f"{r['wall_time_s']:.1f} s" if r["wall_time_s"] is not None else "-"
    error = f"  error: {' '.join(str(r['error']).split())[:300]}" if r["error"] else ""
    print(f"  trial {r['trial_id']} seed {r['seed']}: {r['status']}, epochs {r['epochs_done']}/{r['epochs_planned']},"
          f" trial wall {wall}{error}")
print("  statuses:", dict(collections.Counter(r["status"] for r in rows)))
PY
}

# population DEVICE GPUS_PER_TRIAL CAP: quickstart.yaml with 4 seeds on DEVICE, timed end to end
population() {
  local out="$work/population-$1" log="$work/population-$1.log" t0 rc cap
  cap=$(limit "$3"); t0=$(now_ms)
  timeout -s INT -k 20 "$cap" $PY -m raynas.cli search search_configs/quickstart.yaml --out "$out" \
    --set 'tune.grid={search.seed: [0, 1, 2, 3]}' --set "search.device=$1" \
    --set "resources.gpus_per_trial=$2" --set resources.cpus_per_trial=1 > "$log" 2>&1
  rc=$?
  say "population on $1 (4 trials, gpus_per_trial $2, 1 CPU each): exit $rc, wall $(seconds_since "$t0") s" \
      "(limit $cap s; Ray's start-up included)"
  if [ -f "$out/quickstart/tables/trials.parquet" ]; then trial_statuses "$out/quickstart/tables/trials.parquet"
  else say "  no trials table"; fi
  if (( rc != 0 )); then tail -n 30 "$log" | tee -a "$figures"; else tail -n 4 "$log" | tee -a "$figures"; fi
}

# build NAME GPUS_PER_TRIAL CAP: raynas bench build of 32 cells with seed 0 and no base table (so every
# pair trains), 4 trials of 8 cells, into the work folder (never the repository's table)
build() {
  local out="$work/build" log="$work/build-$1.log" t0 rc cap
  mkdir -p "$work/no-base" "$out"
  cap=$(limit "$3"); t0=$(now_ms)
  timeout -s INT -k 20 "$cap" $PY -m raynas.cli bench build --cells 32 --seeds 0 --base "$work/no-base" \
    --cells-per-trial 8 --cpus-per-trial 1 --gpus-per-trial "$2" --out "$out" --name "$1" > "$log" 2>&1
  rc=$?
  local wall; wall=$(seconds_since "$t0")
  say "build $1 (32 cells, seed 0, 4 trials of 8 cells, gpus_per_trial $2, 1 CPU each): exit $rc, wall $wall s" \
      "(limit $cap s; Ray's start-up included)"
  grep '^\[bench ' "$log" | tail -n 1 | tee -a "$figures"
  $PY - "$out/$1" "$wall" <<'PY' 2>&1 | tee -a "$figures"
import statistics, sys
from pathlib import Path
import pyarrow.parquet as pq
folder, wall = Path(sys.argv[1]), float(sys.argv[2])
parts = sorted((folder / "parts").glob("*.parquet"))
times = [pq.read_table(p).column("train_time_s")[0].as_py() for p in parts]
if times:
    print(f"  {len(times)} cell-seeds trained: {3600 * len(times) / wall:.0f} cell-seeds per hour end to end; "
          f"per cell {statistics.median(times):.2f} s median ({min(times):.2f}-{max(times):.2f} s), "
          f"{3600 / statistics.median(times):.0f} cell-seeds per hour per trial")
else:
    print("  no cell trained")
PY
  if (( rc != 0 )); then tail -n 30 "$log" | tee -a "$figures"; fi
}

if (( gpus > 0 )) && wanted reference 60; then
  say "== 1. supernet search step on the GPU against the references (first order, C=16; DARTS 8 cells, NB201 N=5)"
  if [ -f .refs/darts/cnn/model_search.py ] && [ -d .refs/autodl/xautodl ]; then
    for batch in 64 256; do
      say "-- batch $batch: tools/bench_reference.py --device cuda --batch $batch --steps 5 --warmup 2 --threads 4"
      bounded 150 $PY tools/bench_reference.py --device cuda --darts .refs/darts --nb201 .refs/autodl \
        --batch "$batch" --steps 5 --warmup 2 --threads 4
    done
  else
    say "no reference copies in .refs/ (here: python tools/copy_references.py --darts PATH --nb201 PATH, then" \
        "carry .refs): raynas' side alone (tools/bench_supernet.py --device cuda)"
    for batch in 64 256; do
      say "-- batch $batch"
      bounded 90 $PY tools/bench_supernet.py --device cuda --steps 5 --warmup 2 --threads 4 --batch "$batch"
    done
  fi
fi

if (( gpus > 0 )) && wanted population 90; then
  say "== 2. quickstart-sized population on the GPU (search_configs/quickstart.yaml, 4 seeds, search.device=cuda)"
  population cuda 0.25 180
fi

if (( gpus > 0 )) && wanted shards 60; then
  say "== 3. shards on the GPU: tools/bench_shards.py --device cuda --image-size 16 --epochs 3 ($gpus GPU(s))"
  counts=(1 2)
  (( gpus > 2 )) && counts+=("$gpus")
  if (( gpus == 1 )); then
    say "one GPU: NCCL refuses two ranks on one device, so K=2 shares the GPU over gloo on GPU tensors" \
        "(a measurement of the collectives only; a search needs one GPU per shard)"
  fi
  bounded 120 $PY tools/bench_shards.py --device cuda --shards "${counts[@]}" --image-size 16 --epochs 3
fi

if (( gpus > 0 )) && wanted build 60; then
  say "== 4. ground-truth build on the GPU (raynas bench build --gpus-per-trial 0.25)"
  build gpu 0.25 150
fi

if wanted cpu 60; then
  say "== the same population and build on the CPUs only (4 trials, one CPU each)"
  population cpu 0 120
  if wanted cpu 60; then build cpu 0 150; fi
fi

if (( gpus > 0 )) && wanted tier 60; then
  say "== GPU test tier (pytest -m gpu)"
  bounded 330 $PY -m pytest -q -m gpu -p no:cacheprovider tests/gpu
fi
say "== done in ${SECONDS} s; figures in $figures"
