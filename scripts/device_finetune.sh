#!/usr/bin/env bash
# One GPU phase for the shipped weights: each of them fine-tuned at once on one GPU, every run its
# own `srlab train` process, within a wall-clock budget (docs/RESULTS.md, twenty-fifth session).
#
# Usage, from the repo root on the GPU machine, with BSDS500/{train,val} under .devdata:
#   scripts/device_finetune.sh BUDGET_S STOP_S OUT_DIR [RUN ...]
# RUN names pick some of the runs below (default: all 11). The GPU is busy with one run (an H200
# gave each of 11 runs about a seventh of its speed alone), so fewer runs go further each.
# BUDGET_S is each run's time_budget_s (its iteration count is measured from it during warm-up);
# STOP_S (from the script's start) is when any run still going is stopped (a run whose speed fell after its warm-up would
# otherwise overrun the machine's time; its snapshots and `last` are kept). The run folders are
# packed into OUT_DIR/*.tgz, one archive per SRCNN run (their snapshots are the largest) and one
# for the rest. SEED_OFFSET (default 0) is added to every run's seed, so a later phase draws
# patches in another order than the one before it. DEVICE (default cuda) and EXTRA (more --set options, applied last) are for trying the
# script out on a CPU: DEVICE=cpu EXTRA="--set batch_size=2 --set val_limit=2" ...
set -u
budget=${1:-420}; stop=${2:-540}; out=${3:-runs/gpu}
shift $(($# < 3 ? $# : 3)); selected=" $* "
read -r -a extra <<< "${EXTRA:-}"
off=${SEED_OFFSET:-0}
export PYTHONPATH=$PWD/src SRLAB_DATA=$PWD/.devdata PYTHONUNBUFFERED=1
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, safetensors, yaml, tqdm, PIL; print('torch', torch.__version__, torch.cuda.is_available())" || exit 1

# MPS lets the runs' kernels share the GPU at once instead of taking turns, filling the gaps
# between one run's small kernels (on the H200 that bought little: one run already kept it busy).
# Checked with one CUDA op; dropped if that fails.
if nvidia-cuda-mps-control -d 2>/dev/null; then
  if timeout 45 python3 -c "import torch; print('MPS client ok', (torch.ones(1, device='cuda') + 1).item())"; then
    echo "MPS on"
  else
    echo quit | nvidia-cuda-mps-control; sleep 2; echo "MPS did not work; the runs take turns on the GPU"
  fi
else
  echo "no MPS daemon; the runs take turns on the GPU"
fi

# What every run shares: the shipped weights as the start, the FSRCNN paper's scale augmentation,
# a 300-iteration warm-up, constant lr to 10% of the run, a cosine decay to 0, a weight average.
common=(--set "time_budget_s=$budget" --set iterations=100000000 --set keep_snapshots=true --set threads=1
        --set device=${DEVICE:-cuda} --set warmup=300 --set decay_start=0.1 --set min_lr_ratio=0.0 --set ema_decay=0.999
        --set "scale_augment=[0.9,0.8,0.7,0.6]")
run() {  # run NAME WEIGHTS CONFIG [--set ...]
  local name=$1 weights=$2 config=$3; shift 3
  [ "$selected" = "  " ] || [[ "$selected" == *" $name "* ]] || return 0
  echo "srlab train --config $config --out $out/$name --init-from src/srlab/weights/$weights.safetensors ${common[*]} $* ${extra[*]}" > "$out/$name.cmd"
  python3 -m srlab -q train --config "$config" --out "$out/$name" --init-from "src/srlab/weights/$weights.safetensors" \
    "${common[@]}" "$@" "${extra[@]}" > "$out/$name.log" 2>&1 &
}
fsrcnn=(--set batch_size=256 --set log_every=1000)
# FSRCNN: two peak learning rates each (BSDS500/val decides which, if either, is shipped).
run fsrcnn_x3 fsrcnn_x3 configs/cpu/fsrcnn_x3.yaml "${fsrcnn[@]}" --set lr_patch=24 --set lr=0.0003 --set seed=$((70 + off)) --set val_every=10000
run fsrcnn_x3_lo fsrcnn_x3 configs/cpu/fsrcnn_x3.yaml "${fsrcnn[@]}" --set lr_patch=24 --set lr=0.0001 --set seed=$((71 + off)) --set val_every=10000
run fsrcnn_x2 fsrcnn_x2 configs/cpu/fsrcnn_x3.yaml "${fsrcnn[@]}" --set scale=2 --set lr_patch=36 --set lr=0.0003 --set seed=$((72 + off)) --set val_every=5000
run fsrcnn_x2_lo fsrcnn_x2 configs/cpu/fsrcnn_x3.yaml "${fsrcnn[@]}" --set scale=2 --set lr_patch=36 --set lr=0.0001 --set seed=$((73 + off)) --set val_every=5000
run fsrcnn_x4 fsrcnn_x4 configs/cpu/fsrcnn_x3.yaml "${fsrcnn[@]}" --set scale=4 --set lr_patch=18 --set lr=0.0003 --set seed=$((74 + off)) --set val_every=10000
run fsrcnn_x4_lo fsrcnn_x4 configs/cpu/fsrcnn_x3.yaml "${fsrcnn[@]}" --set scale=4 --set lr_patch=18 --set lr=0.0001 --set seed=$((75 + off)) --set val_every=10000
run fsrcnn_s_x3 fsrcnn_s_x3 configs/cpu/fsrcnn_x3.yaml "${fsrcnn[@]}" --set model=fsrcnn_s --set lr_patch=24 --set lr=0.0003 --set seed=$((76 + off)) --set val_every=10000
run espcn_x3 espcn_x3 configs/cpu/fsrcnn_x3.yaml "${fsrcnn[@]}" --set model=espcn --set lr_patch=24 --set lr=0.0003 --set seed=$((77 + off)) --set val_every=10000
# SRCNN 9-5-5: compute-bound, so bfloat16 autocast (tensor cores); 72x72 HR patches as on the CPU.
srcnn=(--set batch_size=128 --set lr=0.0002 --set "lr_multipliers={}" --set loss_border=0 --set precision=bf16
       --set log_every=200 --set val_every=2000)
run srcnn_955_x2 srcnn_955_x2 configs/srcnn_955_x2.yaml "${srcnn[@]}" --set lr_patch=36 --set seed=$((78 + off))
run srcnn_955_x3 srcnn_955_x3 configs/srcnn_955_x3.yaml "${srcnn[@]}" --set lr_patch=24 --set seed=$((79 + off))
run srcnn_955_x4 srcnn_955_x4 configs/srcnn_955_x4.yaml "${srcnn[@]}" --set lr_patch=18 --set seed=$((80 + off))

while [ -n "$(jobs -rp)" ] && [ "$SECONDS" -lt "$stop" ]; do  # SECONDS: since this script started
  sleep 10
  [ $((SECONDS % 60)) -lt 10 ] && nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
done
[ -n "$(jobs -rp)" ] && { echo "stopping runs still going after ${stop}s:"; jobs -r; kill -TERM $(jobs -rp); sleep 5; }
echo quit | nvidia-cuda-mps-control 2>/dev/null
for log in "$out"/*.log; do echo "== $log"; tail -n 2 "$log"; done
for name in srcnn_955_x2 srcnn_955_x3 srcnn_955_x4; do
  [ -d "$out/$name" ] || continue
  tar czf "$out/$name.tgz" -C "$out" "$name" "$name.log" "$name.cmd"
done
# Written beside the folder it packs, then moved in (tar would otherwise read its own output).
tar czf "$out.others.tgz" -C "$out" --exclude='srcnn_955_*' --exclude='*.tgz' . && mv "$out.others.tgz" "$out/others.tgz"
ls -la "$out"
