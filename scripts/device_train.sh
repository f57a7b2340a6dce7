#!/usr/bin/env bash
# One-shot GPU run for the shipped weights (see docs/RESULTS.md). Run from the repo root on the
# device machine with the training data under .devdata (BSDS500/train, BSDS500/val).
set -u
budget=${1:-470}
export PYTHONPATH=$PWD/src SRLAB_DATA=$PWD/.devdata PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch, safetensors, yaml, tqdm, PIL; print('torch', torch.__version__, torch.cuda.is_available())" || exit 1
timeout -s TERM $((budget + 90)) scripts/train_pretrained.sh "$budget" runs
pkill -TERM -f "srlab -q train" 2>/dev/null; sleep 2
tail -n 3 runs/*.log
mkdir -p "$OUT" && tar czf "$OUT/runs.tgz" runs
ls -la "$OUT"
