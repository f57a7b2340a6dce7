"""Training throughput: srlab's real loop (data pipeline included) vs a bare PyTorch loop.

For every registered model at its paper patch size, on ``--threads`` CPU threads:

* **srlab**: whole ``srlab.train.train`` runs, on BSDS500/train (or generated images when the
  data is absent) with validation off, timed from the call to the return (building the model
  and writing the final checkpoint included). Each step draws a fresh batch from
  ``PatchSampler`` (random image, position and flip/rotation), sets the learning rate, runs
  forward/backward/Adam, checks the loss is finite and logs it. Decoding the JPEGs and making
  their LR partners (seconds, once per run) is done once per model (``_SamplerCache``).
* **bare**: the same model, batch and optimizer on random tensors made once, so nothing
  but forward/backward/Adam is timed: the most the loop could reach.

The two alternate in short chunks for ``--rounds`` rounds, so on a shared machine both see
the same load; the table gives medians and the median of the per-round ratios. ``--clock cpu``
times with the process's CPU time instead of the wall clock.

Usage::

    python benchmarks/train_throughput.py                  # all models, 2 threads
    python benchmarks/train_throughput.py --models fsrcnn --seconds 5 --json out.json
    python benchmarks/train_throughput.py --threads 1 --clock cpu --precision bf16   # bf16 autocast
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import srlab
from srlab.data import data_root
from srlab.models import create_model
from srlab.train import TrainConfig, train
from srlab.train import trainer

# (scale, LR patch side, batch): the papers' training patch sizes.
#   FSRCNN / FSRCNN-s x3: LR 11 -> HR 33, batch 64 (the bare-loop reference figure).
#   SRCNN 9-1-5 / 9-5-5: 33x33 sub-images (LR 11 at x3), batch 128.
#   ESPCN: 17r x 17r HR sub-images, i.e. LR 17.
#   srcnn_ref (the reference experiment's net): on LR 11 patches like ESPCN; the experiment's own
#   300x300 crops are far slower per sample and are not a patch-training setting.
PAPER_SETTINGS = {
    "fsrcnn": (3, 11, 64),
    "fsrcnn_s": (3, 11, 64),
    "srcnn_915": (3, 11, 128),
    "srcnn_955": (3, 11, 128),
    "espcn": (3, 17, 64),
    "srcnn_ref": (3, 11, 64),
}
DEFAULT_SETTING = (3, 11, 64)  # a model registered later is still measured


def generated_images(folder: Path, n: int = 40) -> Path:
    """Photo-like 321x481 PNGs (smooth blobs plus noise) when BSDS500 is not available."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:321, 0:481].astype(np.float64)
    for i in range(n):
        rng = np.random.default_rng(i)
        img = 60 + 120 * (xx / 481) * (yy / 321)
        for _ in range(12):
            cy, cx, r = rng.uniform(0, 321), rng.uniform(0, 481), rng.uniform(5, 80)
            img += rng.uniform(-70, 70) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        img += rng.normal(0, 8, img.shape)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"{i:03d}.png")
    return folder


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def bare_loop(name: str, scale: int, patch: int, batch: int, seconds: float, warmup: int, clock, precision: str) -> float:
    """Samples/s of forward/backward/Adam on fixed random tensors (the forward in autocast for bf16)."""
    torch.manual_seed(0)
    model = create_model(name, scale).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    lr = torch.rand(batch, 1, patch, patch)
    hr = torch.rand(batch, 1, scale * patch, scale * patch)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            sr = model(lr)
        loss = F.mse_loss(sr.float(), hr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()  # the real loop reads the loss every step too

    for _ in range(warmup):
        step()
    n, t0 = 0, clock()
    while clock() - t0 < seconds:
        step()
        n += 1
    return n * batch / (clock() - t0)


class _SamplerCache:
    """Build each model's ``PatchSampler`` once and hand every run a fresh copy of it.

    Decoding 200 JPEGs and making their LR partners is per-run setup (seconds of CPU), not
    per-step work; with it cached, the difference of two runs is the training loop alone
    even when another job makes the setup's duration erratic.
    """

    def __init__(self):
        self.cache = {}
        self.build = trainer._make_sampler

    def __call__(self, cfg: TrainConfig, device: torch.device):
        key = (cfg.train_data, cfg.scale, cfg.lr_patch, cfg.augment, tuple(cfg.scale_augment), str(device))
        if key not in self.cache:
            self.cache[key] = self.build(cfg, device)
        sampler = copy.copy(self.cache[key])  # shares the packed (read-only) images
        sampler.generator = torch.Generator(device=sampler.device).manual_seed(cfg.seed)
        return sampler


def srlab_loop(name: str, scale: int, patch: int, batch: int, train_dir: Path, iterations: int, threads: int, clock,
               precision: str) -> float:
    """Samples/s of one whole ``srlab.train.train`` run of ``iterations`` steps (its setup included)."""
    cfg = TrainConfig(
        model=name, scale=scale, train_data=str(train_dir), val_data=None, lr_patch=patch, batch_size=batch,
        iterations=iterations, val_every=10**9, log_every=max(1, iterations // 4), lr=1e-4, schedule="cosine",
        device="cpu", threads=threads, precision=precision,
    )
    with tempfile.TemporaryDirectory() as out:
        t0 = clock()
        train(cfg, Path(out) / "run", progress=False)
        return iterations * batch / (clock() - t0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=srlab.list_models())
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0, help="measured time per loop and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall", help="wall clock, or this process's CPU time")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="srlab train's precision setting, for both loops")
    parser.add_argument("--json", help="write the table here too")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    clock = CLOCKS[args.clock]

    root = data_root()
    tmp = tempfile.TemporaryDirectory()
    if root is not None and (root / "BSDS500" / "train").is_dir():
        train_dir, source = root / "BSDS500" / "train", "BSDS500/train (200 images)"
    else:
        train_dir, source = generated_images(Path(tmp.name) / "train"), "40 generated 321x481 images (BSDS500 not found)"
    load_before = os.getloadavg()
    print(f"srlab {srlab.__version__}, torch {torch.__version__}, {args.threads} threads, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; {args.clock} clock; {args.precision}; data: {source}; load average before: {load_before[0]:.2f}", file=sys.stderr)

    trainer._make_sampler = _SamplerCache()
    rows = []
    for name in args.models:
        scale, patch, batch = PAPER_SETTINGS.get(name, DEFAULT_SETTING)
        bare, real = [], []
        bare_loop(name, scale, patch, batch, 0.5, 3, clock, args.precision)  # warm-up: kernel selection, caches
        srlab_loop(name, scale, patch, batch, train_dir, 3, args.threads, clock, args.precision)  # ... and the sampler cache
        for _ in range(args.rounds):  # short alternating chunks: both loops see the same load
            bare.append(bare_loop(name, scale, patch, batch, args.seconds, 2, clock, args.precision))
            n = max(5, round(bare[-1] / batch * args.seconds))
            real.append(srlab_loop(name, scale, patch, batch, train_dir, n, args.threads, clock, args.precision))
        ratios = [r / b for r, b in zip(real, bare)]
        row = {"model": name, "scale": scale, "lr_patch": patch, "hr_patch": scale * patch, "batch": batch,
               "bare_samples_per_s": float(np.median(bare)), "srlab_samples_per_s": float(np.median(real)),
               "ratio": float(np.median(ratios)), "rounds": {"bare": bare, "srlab": real}}
        rows.append(row)
        print(f"  {name}: bare {row['bare_samples_per_s']:.0f}, srlab {row['srlab_samples_per_s']:.0f}, "
              f"ratios {', '.join(f'{x:.2f}' for x in ratios)}", file=sys.stderr)
    load_after = os.getloadavg()

    unit = "samples/s" if args.clock == "wall" else "samples per CPU-s"
    print(f"| model | scale | LR -> HR patch | batch | bare loop ({unit}) | srlab train ({unit}) | srlab / bare (median of rounds) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['model']} | x{r['scale']} | {r['lr_patch']} -> {r['hr_patch']} | {r['batch']} | "
              f"{r['bare_samples_per_s']:,.0f} | {r['srlab_samples_per_s']:,.0f} | {100 * r['ratio']:.0f}% |")
    print(f"\nload average (1 min) before / after: {load_before[0]:.2f} / {load_after[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": args.threads, "clock": args.clock, "precision": args.precision, "data": source, "load_before": load_before,
                                               "load_after": load_after, "rows": rows}, indent=2) + "\n")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
