#!/usr/bin/env bash
# Prepare, on a machine with the package registry, the Python packages that the GPU machine's image lacks,
# for tools/gpu_check.sh to install there (that machine reaches no registry). Writes them into .whl/ at the
# repository root (ignored by git); the GPU run carries that folder.
#
# The image holds torch, pyarrow, pandas, pyyaml, click, matplotlib, scikit-learn, psutil, pytest,
# pytest-timeout and onnx*, on Python 3.12; missing are Ray and Optuna with the dependencies listed below.
# Ray's wheel (about 80 MB) is over what one GPU run can carry (64 MiB in all), so it travels repacked as
# a tar.xz without its Java jars (raynas runs no Java workers): about 33 MB.
#
#   bash tools/gpu_wheels.sh            # then: run tools/gpu_check.sh there, carrying .whl
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
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
du -sh "$dest"
ls -la "$dest"
