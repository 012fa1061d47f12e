#!/usr/bin/env bash
# GPU checks of the train stage (one script, under 8 minutes on one H200): bf16 tokens/s, MFU and peak memory of
# TRL training on a ~0.46B model built from a config, full and LoRA, with and without gradient checkpointing.
#
# On a machine with middo installed:     bash bench/gpu.sh
# On a bare GPU machine without internet: carry middo's missing dependencies as wheels in .whl/ (trl, datasets,
# polars, dvclive and what they need beyond the machine's own packages; transformers >= 5.24): they are installed
# into /tmp/site first. Ends with one JSON line (bench/gpu_train.py's).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD/src:$PWD
else
  export PYTHONPATH=$PWD/src:$PWD:${PYTHONPATH:-}
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >&2
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] && PYTHON=.venv/bin/python
exec timeout 470 "$PYTHON" bench/gpu_train.py "$@"
