"""Time-to-quality: test-set PSNR of a run's snapshots against training wall-clock.

Usage:
  python scripts/time_to_quality.py RUN/snapshots [MORE_SNAPSHOT_DIRS ...] --data Set5 \
      --target 33.16 [--figure docs/figures/time_to_quality.png] [--json out.json]

Snapshots are what `srlab train --set keep_snapshots=true` writes (one checkpoint per
validation step). Each is scored by the paper protocol (srlab.protocol.evaluate_folder);
test sets are only looked at here, after training, never to pick weights. Wall-clock is
the sidecar's elapsed_s plus, for a run started with --init-from, the elapsed_s of the
checkpoint it started from (so a continuation counts the training before it): srlab train
records it in every checkpoint (``init_from_elapsed_s``). For runs from before that, it is
read from the file as it is now; if that has been replaced since (shipping a continuation
over the weights it started from does that), or if the run predates the fix that made it
count the whole lineage, pass the right value with --offset-s, one per folder. Several
folders are one lineage: give them in order.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from srlab.checkpoint import load_model, read_sidecar, training_time_s  # noqa: E402
from srlab.data.folder import resolve_data_path  # noqa: E402
from srlab.imageio import atomic_write  # noqa: E402
from srlab.inference import prepare  # noqa: E402
from srlab.protocol import evaluate_folder  # noqa: E402


def elapsed_before(meta: dict) -> float:
    """Training time spent before this run: the elapsed_s of its --init-from checkpoint
    (recorded by srlab train since this script exists; read from that file for older runs)."""
    if isinstance(meta.get("init_from_elapsed_s"), (int, float)):
        return float(meta["init_from_elapsed_s"])
    source = (meta.get("config") or {}).get("init_from")
    if not source:
        return 0.0
    try:
        return training_time_s(read_sidecar(source)) or 0.0
    except (OSError, ValueError):
        return 0.0


def score_snapshots(folders: list[Path], data: Path, offsets_s: list[float] | None = None, start: Path | None = None) -> list[dict]:
    """Score ``start`` (at the training time behind it) and then every snapshot of ``folders`` on ``data``.

    ``offsets_s``: training seconds before each folder's run (default: from the sidecars);
    when given, ``start`` is placed at the first of them: it is the weights the first run
    began from, and its own sidecar may point at a file that has been replaced since."""
    if offsets_s is not None and len(offsets_s) != len(folders):
        raise SystemExit(f"--offset-s: {len(offsets_s)} value(s) for {len(folders)} folder(s); give one per folder")
    # (checkpoint, training seconds before its run or None to read them from its sidecar,
    # whether its own elapsed_s counts on top: not for a start placed at the first offset)
    snapshots = []
    if start:
        snapshots.append((start, None, True) if offsets_s is None else (start, offsets_s[0], False))
    for i, folder in enumerate(folders):
        found = sorted(folder.glob("*.safetensors"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0))
        snapshots += [(weights, None if offsets_s is None else offsets_s[i], True) for weights in found]
    rows = []
    for weights, before, own_elapsed in snapshots:
        meta = read_sidecar(weights)
        wall_clock_s = (elapsed_before(meta) if before is None else before) + (float(meta["elapsed_s"]) if own_elapsed else 0.0)
        model = prepare(load_model(weights))
        result = evaluate_folder(lambda lr, m=model: m(lr.float()), data, meta["scale"], weights.stem)
        rows.append({
            "snapshot": str(weights),
            "iteration": meta["iteration"],
            "wall_clock_s": wall_clock_s,
            "psnr": result.mean_psnr,
            "ssim": result.mean_ssim,
        })
        print(f"{weights}  iteration {rows[-1]['iteration']:>7}  {rows[-1]['wall_clock_s'] / 60:7.1f} min  "
              f"{data.name} {rows[-1]['psnr']:.3f} dB", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("snapshots", nargs="+", type=Path, help="folders of snapshot checkpoints, in training order")
    parser.add_argument("--data", default="Set5", help="test folder (looked up under $SRLAB_DATA / ../shared/data)")
    parser.add_argument("--target", type=float, required=True, help="PSNR to reach, dB (e.g. the paper's)")
    parser.add_argument("--offset-s", type=float, nargs="+", help="training seconds before each folder's run, one "
                        "value per folder (default: recorded in the snapshots, or read from the --init-from file)")
    parser.add_argument("--start", type=Path, help="also score this checkpoint first, at the training time behind it "
                        "(the weights the run started from; at the first --offset-s when that is given)")
    parser.add_argument("--title", help="figure title (default: the run folder's name)")
    parser.add_argument("--figure", type=Path, help="write the curve as a PNG here")
    parser.add_argument("--json", type=Path, help="write every row as JSON here")
    args = parser.parse_args()

    data = resolve_data_path(args.data)
    rows = score_snapshots(args.snapshots, data, args.offset_s, args.start)
    if not rows:
        raise SystemExit(f"no snapshots in {', '.join(map(str, args.snapshots))}")
    reached = next((r for r in rows if r["psnr"] >= args.target), None)
    best = max(rows, key=lambda r: r["psnr"])
    if reached:
        print(f"first reached {args.target:.2f} dB on {data.name} after {reached['wall_clock_s'] / 60:.1f} min "
              f"(iteration {reached['iteration']})")
    else:
        print(f"{args.target:.2f} dB on {data.name} not reached: best {best['psnr']:.3f} dB after "
              f"{best['wall_clock_s'] / 60:.1f} min (iteration {best['iteration']})")
    if args.json:
        atomic_write(args.json, lambda tmp: tmp.write_text(json.dumps({"target": args.target, "data": data.name, "rows": rows}, indent=1)))
    if args.figure:
        fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
        ax.plot([r["wall_clock_s"] / 60 for r in rows], [r["psnr"] for r in rows], "o-", ms=3, label="snapshots")
        ax.axhline(args.target, color="tab:red", ls="--", lw=1, label=f"target {args.target:.2f} dB")
        ax.set_xlabel("training wall-clock (min, this machine)")
        ax.set_ylabel(f"{data.name} PSNR (Y, dB)")
        folder = args.snapshots[0].resolve()
        ax.set_title(args.title or f"time to quality: {(folder.parent if folder.name == 'snapshots' else folder).name}")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        atomic_write(args.figure, lambda tmp: fig.savefig(tmp, format="png"))
        plt.close(fig)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
