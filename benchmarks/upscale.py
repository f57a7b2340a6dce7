"""Time and peak memory of `srlab upscale`'s pipeline (FSRCNN x3 unless told otherwise).

    python benchmarks/upscale.py                   # 640x360 -> 1920x1080 and 2560x1440 -> 7680x4320
    python benchmarks/upscale.py --tiles 0 256     # also the whole image in one pass (small case only)
    python benchmarks/upscale.py --cli             # also `srlab upscale` end to end (PNG in, PNG out)
    python benchmarks/upscale.py --self-ensemble   # the 8-pass self-ensemble (`--self-ensemble`)
    python benchmarks/upscale.py --model srcnn_955 --precision bf16   # another network, in bfloat16

Each measurement runs in a fresh child process, so its peak resident memory
(``VmHWM`` from /proc/self/status, the kernel's high-water mark) belongs to that
case alone. The input is the built-in astronaut photo resized to the input size
(an RGB uint8 image: Y through the network, Cb/Cr through the MATLAB bicubic, as
`srlab upscale` does). Uses the shipped weights for the model and scale when present,
otherwise random weights (the same work; the table says which).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CASES = [(640, 360), (2560, 1440)]
# One pass over a 2560x1440 image holds several 56-channel float32 maps of 3.7 MP
# (~0.8 GB each); the whole-image reference is only run for the small case.
WHOLE_IMAGE_MAX_PIXELS = 1_000_000


def _rss_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def measure(width: int, height: int, tile: int, scale: int, device: str, self_ensemble: bool = False, name: str = "fsrcnn", precision: str = "fp32") -> dict:
    """Runs in the child: upscale one image, return timings and memory."""
    import numpy as np
    import torch
    from PIL import Image

    from srlab.models import create_model
    from srlab.pretrained import ASSETS_DIR, available_pretrained, load_pretrained
    from srlab.upscale import Upscaler

    if (name, scale) in available_pretrained():
        model, weights = load_pretrained(name, scale), "shipped"
    else:
        torch.manual_seed(0)
        model, weights = create_model(name, scale), f"random (no shipped {name} x{scale})"
    image = np.asarray(Image.open(ASSETS_DIR / "astronaut.png").convert("RGB").resize((width, height), Image.BICUBIC))
    upscaler = Upscaler(model, scale, tile=tile, device=device, self_ensemble=self_ensemble, precision=precision)
    upscaler.margin(3)  # measured once per model; not part of the per-image time
    rss_before = _rss_mb("VmRSS")
    start = time.perf_counter()
    out = upscaler.pixels(image)
    seconds = time.perf_counter() - start
    return {
        "input": f"{width}x{height}",
        "output": f"{out.shape[1]}x{out.shape[0]}",
        "tile": tile,
        "seconds": seconds,
        "mp_per_s": out.shape[0] * out.shape[1] / 1e6 / seconds,
        "rss_before_mb": rss_before,
        "peak_rss_mb": _rss_mb("VmHWM"),
        "weights": weights,
        "threads": torch.get_num_threads(),
        "margin": upscaler.margin(3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiles", type=int, nargs="+", default=[256], help="tile sizes to try (0 = whole image)")
    parser.add_argument("--scale", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="fsrcnn", help="a registered model name (default fsrcnn)")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--cli", action="store_true", help="also time `srlab upscale` on a PNG, decode and encode included")
    parser.add_argument("--self-ensemble", action="store_true", help="time the 8-pass self-ensemble instead of one pass")
    parser.add_argument("--child", nargs=3, type=int, metavar=("W", "H", "TILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child, args.scale, args.device, args.self_ensemble, args.model, args.precision)))
        return
    rows = []
    for width, height in CASES:
        for tile in args.tiles:
            if tile == 0 and width * height > WHOLE_IMAGE_MAX_PIXELS:
                continue
            cmd = [sys.executable, __file__, "--child", str(width), str(height), str(tile), "--scale", str(args.scale), "--device", args.device]
            cmd += ["--model", args.model, "--precision", args.precision]
            cmd += ["--self-ensemble"] if args.self_ensemble else []
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{width}x{height} tile {tile}: failed\n{done.stderr}", file=sys.stderr)
                continue
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    if not rows:
        sys.exit(1)
    cli_rows = [measure_cli(w, h, args.scale, args.model, args.precision) for w, h in CASES] if args.cli else []
    label = "FSRCNN" if args.model == "fsrcnn" else args.model
    print(f"{label}{'+ (self-ensemble)' if args.self_ensemble else ''} x{args.scale}{', bf16' if args.precision == 'bf16' else ''}, weights: {rows[0]['weights']}, device {args.device}, torch threads {rows[0]['threads']}, tiling margin {rows[0]['margin']} LR px")
    print(f"{'input':>10} -> {'output':<10} {'tile':>5} {'time (s)':>9} {'MP/s':>6} {'RSS before (MB)':>16} {'peak RSS (MB)':>14}")
    for r in rows:
        tile = "whole" if r["tile"] == 0 else str(r["tile"])
        print(f"{r['input']:>10} -> {r['output']:<10} {tile:>5} {r['seconds']:9.2f} {r['mp_per_s']:6.2f} {r['rss_before_mb']:16.0f} {r['peak_rss_mb']:14.0f}")
    if cli_rows:
        extra = " --precision bf16" if args.precision == "bf16" else ""
        print(f"\n`srlab upscale IN.png --scale {args.scale} --weights {args.model}_x{args.scale}{extra} --out DIR` (whole process: start, PNG decode, upscale, PNG encode)")
        print(f"{'input':>10} {'wall (s)':>9} {'peak RSS (MB)':>14}")
        for r in cli_rows:
            print(f"{r['input']:>10} {r['seconds']:9.2f} {r['peak_rss_mb']:14.0f}")


def measure_cli(width: int, height: int, scale: int, name: str = "fsrcnn", precision: str = "fp32") -> dict:
    """Run the real command; its peak RSS is getrusage(RUSAGE_CHILDREN) in a fresh
    parent process that has no other child."""
    import tempfile
    from pathlib import Path

    import torch
    from PIL import Image

    from srlab.checkpoint import save_model
    from srlab.models import create_model
    from srlab.pretrained import ASSETS_DIR, WEIGHTS_DIR, available_pretrained

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.png"
        Image.open(ASSETS_DIR / "astronaut.png").convert("RGB").resize((width, height), Image.BICUBIC).save(src)
        if (name, scale) in available_pretrained():
            weights = WEIGHTS_DIR / f"{name}_x{scale}.safetensors"
        else:
            torch.manual_seed(0)
            weights = save_model(create_model(name, scale), Path(tmp) / f"{name}_x{scale}")
        cmd = [sys.executable, "-m", "srlab", "-q", "upscale", str(src), "--scale", str(scale), "--weights", str(weights), "--precision", precision, "--out", str(Path(tmp) / "out")]
        done = subprocess.run([sys.executable, "-c", _TIME_CHILD, *cmd], check=True, capture_output=True, text=True)
        seconds, peak_kb = done.stdout.split()
    return {"input": f"{width}x{height}", "seconds": float(seconds), "peak_rss_mb": int(peak_kb) / 1024.0}


_TIME_CHILD = """
import resource, subprocess, sys, time
start = time.perf_counter()
subprocess.run(sys.argv[1:], check=True)
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


if __name__ == "__main__":
    main()
