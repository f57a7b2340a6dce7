"""Average checkpoints' weights into one (stochastic weight averaging offline, or a "model soup").

Usage: python scripts/average_snapshots.py RUN/snapshots --last K --out AVG
       python scripts/average_snapshots.py RUN_A/last.safetensors RUN_B/last.safetensors --out AVG

A folder stands for its K newest iter_N.safetensors (written with keep_snapshots: true); a
file stands for itself. Every tensor is averaged uniformly over all of them and AVG.safetensors
+ AVG.json are written: the last source's description plus the list it was averaged from.
Runs averaged together must have started from the same weights (the same --init-from), or
their average lies between unrelated minima. The sidecar's training time counts every run
that contributed, each once. Score AVG on BSDS500/val like any checkpoint
(`srlab eval --model AVG.safetensors ...`) before preferring it to a run's last.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import srlab
from srlab.checkpoint import save_model


def _expand(source: Path, last: int | None) -> list[Path]:
    if not source.is_dir():
        return [source]
    if last is None:
        raise SystemExit(f"{source}: a snapshots folder needs --last K")
    return sorted(source.glob("iter_*.safetensors"))[-last:]


def _run_of(path: Path) -> Path:
    """The run folder a checkpoint belongs to: RUN/last.safetensors or RUN/snapshots/iter_N.safetensors."""
    return path.parent.parent if path.parent.name == "snapshots" else path.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", type=Path, nargs="+", help="checkpoint files and/or runs' snapshots/ folders")
    parser.add_argument("--last", type=int, default=None, metavar="K", help="how many of each folder's newest snapshots to average")
    parser.add_argument("--out", required=True, help="output path without extension")
    args = parser.parse_args()
    files = [f for source in args.sources for f in _expand(source, args.last)]
    if len(files) < 2:
        raise SystemExit(f"{' '.join(map(str, args.sources))}: needs at least 2 snapshots to average, found {len(files)}")
    models = [srlab.load_model(f) for f in files]
    kinds = {(m.registry_name, m.scale, json.dumps(m.checkpoint_meta.get("args"), sort_keys=True)) for m in models}
    if len(kinds) > 1:
        raise SystemExit(f"these checkpoints are different models ({', '.join(f'{n} x{s}' for n, s, _ in sorted(kinds))}); "
                         "only one architecture at one scale can be averaged")
    # A shipped file keeps its path while later sessions replace its weights, so the start is
    # the path together with the training time its weights carried.
    starts = {(str((m.checkpoint_meta.get("config") or {}).get("init_from")), m.checkpoint_meta.get("init_from_elapsed_s"))
              for m in models}
    if len(starts) > 1:
        listed = ", ".join(path if seconds is None else f"{path} after {seconds:.0f} s of training"
                           for path, seconds in sorted(starts, key=str))
        raise SystemExit(f"these runs started from different weights ({listed}); averaging them is meaningless")
    newest = models[-1]
    with torch.no_grad():
        for name, tensor in newest.state_dict().items():
            tensor.copy_(torch.stack([m.state_dict()[name].double() for m in models]).mean(0))
    meta = dict(newest.checkpoint_meta)
    for key in ("format", "name", "arch", "args", "scale", "color", "srlab_version", "tensors"):
        meta.pop(key, None)
    # Two runs side by side each spent their own training time: count each run once, at its longest.
    per_run: dict[Path, float] = {}
    for f, m in zip(files, models):
        run = _run_of(f)
        per_run[run] = max(per_run.get(run, 0.0), m.checkpoint_meta.get("elapsed_s") or 0.0)
    if "elapsed_s" in meta:
        meta["elapsed_s"] = sum(per_run.values())
    named = [f.name for f in files] if len(per_run) == 1 else [str(f) for f in files]
    save_model(newest, args.out, **meta, averaged_from=named)
    print(f"averaged {len(files)} checkpoints from {len(per_run)} run(s) into {args.out}.safetensors")


if __name__ == "__main__":
    main()
