"""Average the weights of a run's last snapshots into one checkpoint (stochastic weight averaging, offline).

Usage: python scripts/average_snapshots.py RUN/snapshots --last K --out AVG

Reads the K newest RUN/snapshots/iter_N.safetensors (written with keep_snapshots: true),
averages every tensor uniformly and writes AVG.safetensors + AVG.json: the newest snapshot's
description plus the list it was averaged from. Score it as any checkpoint
(`srlab eval --model AVG.safetensors ...`) on BSDS500/val before preferring it to RUN/last.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import srlab
from srlab.checkpoint import save_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("snapshots", type=Path, help="a run's snapshots/ folder")
    parser.add_argument("--last", type=int, required=True, metavar="K", help="how many of the newest snapshots to average")
    parser.add_argument("--out", required=True, help="output path without extension")
    args = parser.parse_args()
    files = sorted(args.snapshots.glob("iter_*.safetensors"))[-args.last :]
    if len(files) < 2:
        raise SystemExit(f"{args.snapshots}: needs at least 2 snapshots to average, found {len(files)}")
    models = [srlab.load_model(f) for f in files]
    newest = models[-1]
    with torch.no_grad():
        for name, tensor in newest.state_dict().items():
            tensor.copy_(torch.stack([m.state_dict()[name].double() for m in models]).mean(0))
    meta = dict(newest.checkpoint_meta)
    for key in ("format", "name", "arch", "args", "scale", "color", "srlab_version", "tensors"):
        meta.pop(key, None)
    save_model(newest, args.out, **meta, averaged_from=[f.name for f in files])
    print(f"averaged {len(files)} snapshots ({files[0].name} .. {files[-1].name}) into {args.out}.safetensors")


if __name__ == "__main__":
    main()
