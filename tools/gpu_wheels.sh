#!/usr/bin/env bash
# Prepare, on a machine with the package registry, the Python packages that the GPU machine's image lacks,
# for tools/gpu_check.sh to install there (that machine reaches no registry). Writes them into .whl/ at the
# repository root (ignored by git); the GPU run carries that folder. With --darts PATH and --nb201 PATH
# (checkouts of quark0/darts and D-X-Y/AutoDL-Projects) it first copies the files the reference benchmark
# imports into .refs/ (ignored by git; tools/copy_references.py), which the GPU run carries too.
#
# The image holds torch, pyarrow, pandas, pyyaml, click, matplotlib, scikit-learn, psutil, pytest,
# pytest-timeout and onnx*, on Python 3.12; missing are Ray and Optuna with the dependencies listed below.
# Ray's wheel (about 80 MB) is over what one GPU run can carry (64 MiB in all), so it travels repacked as
# a tar.xz without its Java jars (raynas runs no Java workers): about 33 MB.
#
#   bash tools/gpu_wheels.sh [--darts PATH --nb201 PATH]   # then: tools/gpu_check.sh there, carrying .whl .refs
#
# Ends with the sizes of what a GPU run sends: the working tree (tracked and untracked-not-ignored files),
# .whl and .refs, against the 64 MiB a run can carry.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
darts="" nb201=""
while [ $# -gt 0 ]; do
  case $1 in
    --darts) darts=${2:?error: --darts needs a checkout path}; shift 2 ;;
    --nb201) nb201=${2:?error: --nb201 needs a checkout path}; shift 2 ;;
    *) echo "error: $1: not an argument of gpu_wheels.sh (--darts PATH, --nb201 PATH)" >&2; exit 2 ;;
  esac
done
if [ -n "$darts$nb201" ]; then
  # the references' imports need torch: the project's environment when there is one
  COPY_PY=${COPY_PY:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo "$PY")}
  "$COPY_PY" tools/copy_references.py ${darts:+--darts "$darts"} ${nb201:+--nb201 "$nb201"} --dest .refs
fi
RAY_VERSION=$(sed -n 's/^ray==//p' constraints.txt)
dest=.whl
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || grep -qx '/.whl/' .gitignore || echo '/.whl/' >> .git/info/exclude
rm -rf "$dest" && mkdir -p "$dest"
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$p")
done
# What ray[tune], optuna and raynas' allocator need beyond the image (pinned where this project pins them).
packages=(
  "optuna" "alembic" "mako" "sqlalchemy" "greenlet" "colorlog"
  "jsonschema" "jsonschema-specifications" "referencing" "rpds-py" "tensorboardX"
  "cmeel-mimalloc==$(sed -n 's/^cmeel-mimalloc==//p' constraints.txt)" "cmeel==$(sed -n 's/^cmeel==//p' constraints.txt)"
)
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" \
  -d "$dest" "${packages[@]}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" \
  -d "$work" "ray==$RAY_VERSION"
mkdir "$work/tree"
(cd "$work/tree" && $PY -m zipfile -e "$work"/ray-*.whl . && rm -rf ray/jars && tar cf - . | xz -T0 -6 > "$OLDPWD/$dest/ray-$RAY_VERSION.tar.xz")
ls -la "$dest"
tree=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1 || true)
wheels=$(du -sb "$dest" | cut -f1)
refs=$( (du -sb .refs 2>/dev/null || echo 0) | cut -f1)
echo "a GPU run sends: working tree $tree + .whl $wheels + .refs $refs = $(( (tree + wheels + refs) >> 20 )) MiB" \
     "(at most 64 MiB)"
