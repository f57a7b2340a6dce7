"""``srlab train``: train a model from a YAML config (works under torchrun too)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..train import load_config, train
from .common import progress_enabled


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model on patches (resumable; torchrun for several processes)")
    p.add_argument("--config", help="YAML file (keys: see srlab.train.TrainConfig); defaults if omitted, the run's own config.yaml with --resume")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key (repeatable)")
    p.add_argument("--out", required=True, help="run folder: config, metrics.jsonl, last/best checkpoints")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--init-from", help="start from this checkpoint's weights (fine-tuning)")
    p.add_argument("--reinit", default="", help="comma-separated module prefixes to re-initialise after --init-from ('last_part' = the last layer)")
    p.set_defaults(run=run)


def run(args) -> int:
    overrides = list(args.set)
    if args.init_from:
        overrides.append(f"init_from={args.init_from}")
    if args.reinit:
        overrides.append("reinit=[" + ",".join(args.reinit.split(",")) + "]")
    config = args.config
    saved = Path(args.out) / "config.yaml"
    if args.resume and config is None and saved.is_file():
        config = saved  # resuming with the defaults instead of the run's own config would change the run
    cfg = load_config(config, overrides)
    summary = train(cfg, args.out, resume=args.resume, progress=progress_enabled(args))
    best = summary["best_val_psnr"]
    print(f"trained {cfg.model} x{cfg.scale} for {summary['iterations']} iterations -> {args.out}" + (f" (best val PSNR {best:.2f} dB)" if best else ""), file=sys.stderr)
    return 0
