"""``srlab plot``: training curves of a run folder."""

from __future__ import annotations

from ..plot import plot_run


def add_parser(sub) -> None:
    p = sub.add_parser("plot", help="draw loss and validation PSNR curves of run folders to PNG")
    p.add_argument("runs", nargs="+", help="run folders (each with metrics.jsonl)")
    p.add_argument("--out", help="PNG path (default: RUN/curves.png of the first run)")
    p.add_argument("--time", action="store_true", help="x axis in hours of training instead of iterations")
    p.set_defaults(run=run)


def run(args) -> int:
    path = plot_run(args.runs, args.out, by_time=args.time)
    print(f"wrote {path}")
    return 0
