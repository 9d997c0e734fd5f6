#!/usr/bin/env bash
# Install coversearch into ./.venv with a CPU build of PyTorch.
#   bash scripts/install.sh          # runtime (+ essentia for the generator, + the HTTP server)
#   bash scripts/install.sh --test   # + pytest, httpx, selenium, and the [scale] extra (Ray, Milvus Lite) its tests need
# PyTorch is installed first and pinned, so pip never resolves `torch` itself
# (an unpinned resolve pulls a multi-GB CUDA build). On machines where the CPU
# wheel is not on local disk, set TORCH_INDEX_URL to a CPU wheel index.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if ! python -c "import torch" >/dev/null 2>&1; then
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    python -m pip install -q "torch==${TORCH_VERSION}" --index-url "$TORCH_INDEX_URL"
  else
    python -m pip install -q "torch==${TORCH_VERSION}"
  fi
fi
extras="plot,serve"
if [ "${1:-}" = "--test" ]; then extras="test,plot,serve,scale"; fi
python -m pip install -q -e ".[${extras}]"
python -c "import torch, faiss, h5py, pyarrow; print('coversearch installed: torch', torch.__version__, '| faiss', faiss.__version__)"
