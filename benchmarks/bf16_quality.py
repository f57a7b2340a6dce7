"""What bfloat16 inference costs in quality: every shipped weight, fp32 against bf16.

Both columns go through srlab's CPU fast path (``srlab.inference.prepare``), the path
``srlab upscale`` runs, and are scored by the papers' protocol (``srlab.protocol``), so the
difference is the bf16 rounding alone. PSNR is in dB on the Y channel, per-image means.
Speed is the other half and lives in ``benchmarks/inference.py`` ("srlab fast path, bf16").

    SRLAB_DATA=../shared/data python benchmarks/bf16_quality.py
    python benchmarks/bf16_quality.py --data ../shared/data/Set5 --models fsrcnn
"""

from __future__ import annotations

import argparse
import platform
import sys

import torch

from srlab.data import resolve_data_path
from srlab.device import native_bf16
from srlab.inference import prepare, run
from srlab.pretrained import available_pretrained, load_pretrained
from srlab.protocol import evaluate_folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", default=["Set5", "Set14"], help="image folders (looked up under $SRLAB_DATA too)")
    parser.add_argument("--models", nargs="+", help="shipped model names (default: all)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1; the scores do not depend on it)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not native_bf16():
        sys.exit("this CPU has no bfloat16 in oneDNN (needs AVX512 or AMX): bf16 inference is refused here, nothing to measure")
    folders = [resolve_data_path(d) for d in args.data]
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, native bf16: {native_bf16()}")
    print("| model | scale | set | fp32 PSNR | bf16 PSNR | bf16 - fp32 | fp32 SSIM | bf16 SSIM |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, scale in available_pretrained():
        if args.models and name not in args.models:
            continue
        model = load_pretrained(name, scale)
        paths = {p: prepare(model, precision=p) for p in ("fp32", "bf16")}
        for folder in folders:
            scores = {p: evaluate_folder(lambda lr, m=m: run(m, lr.float()), folder, scale, name) for p, m in paths.items()}
            fp, bf = scores["fp32"], scores["bf16"]
            print(
                f"| {name} | x{scale} | {fp.set} | {fp.mean_psnr:.3f} | {bf.mean_psnr:.3f} | {bf.mean_psnr - fp.mean_psnr:+.3f} "
                f"| {fp.mean_ssim:.4f} | {bf.mean_ssim:.4f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
