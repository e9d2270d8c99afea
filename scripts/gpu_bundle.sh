#!/usr/bin/env bash
# Build .whl/site.tar.xz: the Python packages the GPU check needs beyond the device image.
#
# The rented GPU machine has no internet and a Python 3.12 with CUDA torch, numpy, scipy, timm,
# tqdm, tabulate, filelock (its 'cuda' image), but not hydra, MONAI, SimpleITK, nibabel or
# scikit-survival. Our .venv cannot travel (6 GB; its interpreter is a link into ~/.pyenv), and
# what travels is capped at 64 MiB: so this script downloads the cp312 wheels of the pinned
# versions (pyproject.toml) here, unpacks them into one folder, drops their tests, and packs it
# with xz (SimpleITK alone is 53 MB zipped, 29 MB as xz). scripts/gpu_check.sh unpacks it into
# /tmp/site and puts it first on PYTHONPATH.
#
#   bash scripts/gpu_bundle.sh          # writes .whl/site.tar.xz (about 55 MB), a few minutes
#
# .whl/ is git-ignored; the device run carries it with carry=[".whl"].
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT_DIR=.whl
STAGE=$(mktemp -d)
WHEELS=$(mktemp -d)
trap 'rm -rf "$STAGE" "$WHEELS"' EXIT

# Pinned as in pyproject.toml. pandas and scikit-learn are pinned too: scikit-survival 0.28
# needs scikit-learn 1.9.x, and the device image's versions are not ours.
PACKAGES=(
  simpleitk==2.5.7 monai==1.6.1 hydra-core==1.3.8 omegaconf==2.3.1 nibabel==5.4.2
  scikit-survival==0.28.0 ecos==2.0.14 osqp==1.1.3 numexpr==2.14.2 narwhals==2.29.0
  scikit-learn==1.9.1 pandas==3.1.1 timm==1.0.31 tabulate==0.10.0 filelock==4.3.1
)
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$WHEELS" "${PACKAGES[@]}"

for wheel in "$WHEELS"/*.whl; do
  "$PY" -m zipfile -e "$wheel" "$STAGE"
done
# antlr4-python3-runtime 4.9.3 (hydra/omegaconf's parser) exists only as an sdist: it is pure
# Python, so the installed copy of our .venv is taken as it is.
SITE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cp -r "$SITE"/antlr4 "$SITE"/antlr4_python3_runtime-4.9.3.dist-info "$STAGE"/
# Tests and caches are not needed to run (nibabel's test data alone is 10 MB).
find "$STAGE" -depth -type d \( -name tests -o -name __pycache__ \) -exec rm -rf {} +

mkdir -p "$OUT_DIR"
tar -C "$STAGE" -cf - . | xz -T0 -6 > "$OUT_DIR/site.tar.xz.tmp"
mv "$OUT_DIR/site.tar.xz.tmp" "$OUT_DIR/site.tar.xz"
ls "$WHEELS" > "$OUT_DIR/site.txt"
du -h "$OUT_DIR/site.tar.xz"
