"""Copy a trained checkpoint into the package as shipped weights, with its provenance.

Usage: python scripts/ship_weights.py CHECKPOINT.safetensors [--phase "where | command" ...] [--prior-time-s SECONDS]

Given a shipped file itself (src/srlab/weights/NAME_xS.safetensors) with no --phase, it keeps the
weights and their phases and only re-writes the sidecar: with --prior-time-s, that repairs the
training time of a file shipped before the time was recorded right.

Writes src/srlab/weights/NAME_xS.{safetensors,json}; the sidecar keeps the checkpoint's
own description (architecture, args, config, iteration, metrics) and adds the list of
training phases that produced it (those of its --init-from checkpoint first), so `srlab.load_pretrained` users can see where the
weights came from.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import srlab
from srlab.checkpoint import read_sidecar, save_model, training_time_s

WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "srlab" / "weights"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--phase", action="append", default=[], help="'where | command' of one training phase, in order")
    parser.add_argument("--prior-time-s", type=float, default=None,
                        help="training seconds behind the --init-from weights, summed from their runs' logs; "
                        "for starting weights whose sidecar under-counts it (files from before the seventh session)")
    args = parser.parse_args()
    model = srlab.load_model(args.checkpoint)
    meta = dict(model.checkpoint_meta)
    for key in ("format", "name", "arch", "args", "scale", "color", "srlab_version", "tensors"):
        meta.pop(key, None)
    own_phases = meta.pop("training_phases", [])
    phases = [dict(zip(("where", "command"), (p.strip() for p in phase.split("|", 1)))) for phase in args.phase]
    target = WEIGHTS / f"{model.registry_name}_x{model.scale}"
    if Path(args.checkpoint).resolve().with_suffix("") == target.resolve():
        if phases:
            raise SystemExit(f"{args.checkpoint} is already shipped; --phase belongs to the run that continued it")
        if args.prior_time_s is not None:
            meta["init_from_elapsed_s"] = args.prior_time_s
        save_model(model.cpu(), target, **meta, training_phases=own_phases)
        print(f"re-wrote the sidecar of {target}.safetensors (weights unchanged)")
        return
    # A run started with --init-from continues the phases that made its starting weights
    # (read before writing: the source may be the very file being replaced).
    source = (meta.get("config") or {}).get("init_from")
    if source and Path(source).with_suffix(".json").is_file():
        before = read_sidecar(source)
        phases = before.get("training_phases", []) + phases
        # All the training time behind the starting weights, as srlab train now records it;
        # also repairs runs from before that fix, which recorded only the last phase's time.
        if training_time_s(before) is not None:
            meta["init_from_elapsed_s"] = training_time_s(before)
    if args.prior_time_s is not None:
        meta["init_from_elapsed_s"] = args.prior_time_s
    save_model(model.cpu(), target, **meta, training_phases=phases, trained_on="BSDS500/train (200 images, Y channel)")
    print(f"shipped {target}.safetensors")


if __name__ == "__main__":
    main()
