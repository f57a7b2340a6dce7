"""``srlab upscale``: upscale image files, folders or globs, tile by tile."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tqdm import tqdm

from ..imageio import DEFAULT_MAX_PIXELS
from ..inference import PRECISIONS
from ..tiling import DEFAULT_TILE
from ..upscale import FORMATS, MODES, collect_inputs, load_upscaler, model_label, output_path, upscale_file
from .common import MODEL_PLUS_HELP, PRECISION_HELP, add_device_argument, model_and_ensemble, progress_enabled

# Images with more tiles than this get their own progress bar.
_TILE_BAR_MIN = 4


def add_parser(sub) -> None:
    p = sub.add_parser(
        "upscale",
        help="upscale images (files, folders, globs) with a model",
        description=(
            "Y through the network, Cb/Cr with the MATLAB bicubic; gray stays gray, alpha, 16 bits, ICC and EXIF are kept. "
            "Outputs are named <stem>_<model>_x<scale>.<ext> in --out; inputs and existing outputs are never overwritten "
            "(unless --overwrite). Exit status 1 if any image failed."
        ),
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    p.add_argument("--scale", type=int, default=3, help="zoom factor (default: 3)")
    p.add_argument("--model", default="fsrcnn", help=MODEL_PLUS_HELP + " (default: fsrcnn, shipped weights)")
    p.add_argument("--weights", help="checkpoint to use instead of the shipped weights")
    p.add_argument("--out", required=True, help="output folder (created if needed)")
    p.add_argument("--mode", choices=MODES, default="sr", help="sr: the model upscales; restore: bicubic first, then a scale-1 model restores")
    p.add_argument("--tile", type=int, default=DEFAULT_TILE, help=f"tile size in input pixels, 0 = whole image (default: {DEFAULT_TILE})")
    p.add_argument("--format", choices=sorted(FORMATS), help="output format (default: the input's if png/jpg/webp, else png)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--recursive", action="store_true", help="look into sub-folders of folder inputs (and ** in globs)")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help=f"refuse inputs with more pixels (default: {DEFAULT_MAX_PIXELS:,})")
    p.add_argument("--self-ensemble", action="store_true", help="average the model over the 8 flips and rotations of the input (8 network passes instead of 1; outputs named <model>+)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32", help=PRECISION_HELP)
    add_device_argument(p)
    p.set_defaults(run=run)


def _error(message: str, bar) -> None:
    line = f"srlab upscale: error: {message}"
    (bar.write(line, file=sys.stderr) if bar is not None else print(line, file=sys.stderr))


def run(args) -> int:
    if args.scale < 1:
        raise ValueError(f"--scale must be >= 1, got {args.scale}")
    found, problems = collect_inputs(args.inputs, args.recursive)
    for message in problems:
        _error(message, None)
    failed = len(problems)
    model, self_ensemble = model_and_ensemble(args)
    upscaler = load_upscaler(model, args.scale, args.weights, args.mode, args.tile, args.device, self_ensemble, args.precision)
    label = model_label(model, args.weights, self_ensemble)
    out_dir = Path(args.out)
    inputs = {src.resolve() for src, _ in found}

    # Plan every output first, so clashes are found before any work is done.
    jobs, planned, skipped = [], {}, 0
    for src, rel in found:
        dst = output_path(src, out_dir, rel, label, args.scale, args.format)
        key = dst.resolve()
        if key in inputs:
            _error(f"{src}: output {dst} would overwrite an input; choose another --out", None)
            failed += 1
        elif key in planned:
            _error(f"{src}: output {dst} clashes with the output of {planned[key]}; upscale them into different --out folders", None)
            failed += 1
        elif dst.exists() and not args.overwrite:
            print(f"{src}: skipped, {dst} exists (use --overwrite to replace it)", file=sys.stderr)
            skipped += 1
        else:
            planned[key] = src
            jobs.append((src, dst))

    show = progress_enabled(args)
    bar = tqdm(jobs, desc="images", unit="img", disable=not show or len(jobs) < 2)
    tile_bar = None
    if show:
        def tile_bar(n):  # noqa: E306
            return (lambda tiles, total: tqdm(tiles, total=total, desc="tiles", leave=False)) if n > _TILE_BAR_MIN else None
    done, megapixels, start = 0, 0.0, time.perf_counter()
    for src, dst in bar:
        try:
            result = upscale_file(upscaler, src, dst, args.max_pixels, tile_bar)
        except (ValueError, TypeError, OSError, RuntimeError, MemoryError) as exc:
            message = str(exc)
            _error(message if str(src) in message else f"{src}: {message}", bar if show else None)
            failed += 1
            continue
        done += 1
        megapixels += result.megapixels
        if not args.quiet:
            (bar.write if show else print)(f"{src} -> {dst}")
    bar.close()
    elapsed = time.perf_counter() - start
    rate = megapixels / elapsed if elapsed > 0 else 0.0
    if not args.quiet:
        print(
            f"upscaled {done}, failed {failed}, skipped {skipped} in {elapsed:.1f} s "
            f"({megapixels:.1f} output MP, {rate:.2f} MP/s) -> {out_dir}",
            file=sys.stderr,
        )
    return 1 if failed else 0
