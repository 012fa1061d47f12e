#!/usr/bin/env bash
# GPU checks (one script, under 8 minutes on one H200), on a ~0.46B model built from a config:
# - the forward stages (bench/gpu_forward.py, about a minute): bf16 tokens/s of the score pass and of the local
#   logits judge against one plain forward pass;
# - the train stage (bench/gpu_train.py): bf16 tokens/s, MFU and peak memory of TRL training, full and LoRA, with and
#   without gradient checkpointing.
#
# On a machine with middo installed:     bash bench/gpu.sh
# On a bare GPU machine without internet: carry middo's missing dependencies as wheels in .whl/ (trl, datasets,
# polars, dvclive and what they need beyond the machine's own packages; transformers >= 5.24): they are installed
# into /tmp/site first. Ends with one JSON line: {"forward": gpu_forward.py's, "train": gpu_train.py's}.
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
OUT=$(mktemp -d)
timeout 120 "$PYTHON" bench/gpu_forward.py --samples 1024 > "$OUT/forward.json" || echo '{"error": "failed or timed out"}' > "$OUT/forward.json"
timeout 340 "$PYTHON" bench/gpu_train.py "$@" > "$OUT/train.json" || echo '{"error": "failed or timed out"}' > "$OUT/train.json"
"$PYTHON" -c 'import json, sys; print(json.dumps({name: json.loads(open(f"{sys.argv[1]}/{name}.json").read().strip().splitlines()[-1]) for name in ("forward", "train")}))' "$OUT"
