#!/usr/bin/env bash
# Train every shipped model at once, each in its own process, within a wall-clock budget.
# Usage: scripts/train_pretrained.sh BUDGET_SECONDS OUT_DIR [config ...]
# Meant for a machine with a GPU (all processes share it); on a CPU give each run its own budget.
set -u
budget=${1:?budget in seconds}; out=${2:?output folder}; shift 2
configs=("$@"); [ ${#configs[@]} -eq 0 ] && configs=(configs/pretrained/*.yaml)
mkdir -p "$out"
for cfg in "${configs[@]}"; do
  name=$(basename "$cfg" .yaml)
  python3 -m srlab -q train --config "$cfg" --set time_budget_s="$budget" --out "$out/$name" > "$out/$name.log" 2>&1 &
done
wait
grep -h "trained\|error" "$out"/*.log
