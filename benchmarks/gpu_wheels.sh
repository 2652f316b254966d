#!/usr/bin/env bash
# Wheels of what benchmarks/gpu_check.sh needs beyond the GPU machine's own Python, at the lock's
# versions, for that machine (CPython 3.12, x86-64 manylinux), into .whl/ (in .gitignore). The lent GPU machines reach no package registry, so `pip install -r
# requirements/lock.txt` cannot run there; their image already holds torch (a CUDA build),
# torchvision, numpy, scipy, pandas, pillow, scikit-image, pytest... (/work/.library/device/KINDS.md).
# Run this on a connected machine, then pass `.whl` in the device call's `carry`:
#
#   bash benchmarks/gpu_wheels.sh            # ~8 MB; add --with-simpleitk for the real prepare (~+52 MB)
#
# Without SimpleITK, gpu_check.sh writes its phantom slices for part (d) straight into the slice
# layout instead of running `medgan phantoms` + `medgan prepare` (the working tree and carried
# paths must stay under 64 MiB together).
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGES=(jsonschema jsonschema-specifications referencing rpds-py nibabel monai pytorch-fid)
if [[ "${1:-}" == "--with-simpleitk" ]]; then PACKAGES+=(simpleitk); fi
PIP=(python3 -m pip)
[[ -n "${VIRTUAL_ENV:-}" ]] && PIP=(python -m pip)

mkdir -p .whl
for name in "${PACKAGES[@]}"; do
  version=$(grep -i -m1 -E "^${name}==" requirements/lock.txt | sed -E 's/^[^=]+==([^ ]+).*/\1/')
  [[ -n "$version" ]] || { echo "gpu_wheels: $name is not in requirements/lock.txt" >&2; exit 2; }
  "${PIP[@]}" download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "${name}==${version}"
done
ls -la .whl
du -sh .whl
