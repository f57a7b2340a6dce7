"""CPU inference speed: srlab's fast path against PyTorch eager, ONNX Runtime, OpenCV DNN.

One table, one run, one machine: x3 super-resolution of LR 640x360 (-> 1920x1080)
and 256x256 (-> 768x768) with FSRCNN, FSRCNN-s, ESPCN and SRCNN 9-5-5 (random
weights: speed does not depend on the values), and Pillow's bicubic resize of the
same image as the floor. Every path runs the same weights with the same number
of threads; ONNX Runtime and OpenCV DNN run the file ``srlab export`` writes
(for FSRCNN also the same network with its ConvTranspose kept).

Columns: median and min wall time over ``--repeats`` runs after two warm-up
runs; the first call (building the runner: ``prepare``, an ONNX Runtime session,
an OpenCV net, plus its first run); output megapixels per second; GFLOP/s counted
as 2 x the network's multiply-adds (from its layer shapes, printed per model; the
bicubic inside SRCNN is not counted) per output pixel, and that as a fraction of
this machine's fp32 matmul throughput measured here with the same threads; the
largest difference from PyTorch eager's output. For FSRCNN two compiled
variants are timed as well (``--no-compilers`` skips them): TorchScript frozen
and optimised for inference, and ``torch.compile`` with inductor and freezing on
the sub-pixel graph; their first call includes the compilation. The fast path
is also timed in bfloat16 (``prepare(model, precision="bf16")``, ``srlab upscale
--precision bf16``): not exact, and only faster on CPUs with AMX or AVX512-BF16.

    python benchmarks/inference.py --out docs/speed_table.md
    python benchmarks/inference.py --quick        # a smoke run, seconds
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image
from torch import nn

import srlab
from srlab.export import export_graph, export_onnx
from srlab.imageio import atomic_write
from srlab.imresize import imresize
from srlab.inference import prepare, run
from srlab.models import create_model

MODELS = ["fsrcnn", "fsrcnn_s", "espcn", "srcnn_955"]
SIZES = [(360, 640), (256, 256)]  # LR (height, width)
SCALE = 3


def macs_per_output_pixel(model: nn.Module, scale: int) -> float:
    """Multiply-adds per output pixel, summed over the model's (transposed) convolutions.

    Counted with hooks on a 48x48 probe: a convolution costs ``k*k*C_in*C_out/groups``
    per pixel of its output, a transposed convolution that much per pixel of its input.
    """
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels * module.out_channels // module.groups
        pixels = inputs[0].shape[-2] * inputs[0].shape[-1] if isinstance(module, nn.ConvTranspose2d) else output.shape[-2] * output.shape[-1]
        total += k * pixels

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    try:
        with torch.inference_mode():
            model(torch.rand(1, 1, 48, 48))
    finally:
        for h in handles:
            h.remove()
    return total / (48 * scale) ** 2


def matmul_gflops(threads: int, n: int = 2048, repeats: int = 10, cpu_clock: bool = False) -> float:
    """Best fp32 ``n x n`` matmul throughput, GFLOP/s, with the current thread count
    (wall clock, or with ``cpu_clock`` this thread's CPU time: for one thread)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    timer = _cpu_time if cpu_clock else _time
    best = min(timer(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _time(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def measure(build: Callable[[], Callable[[], np.ndarray]], repeats: int) -> dict:
    """``build()`` makes the runner; returns first-call, median and min seconds and the output."""
    t = time.perf_counter()
    fn = build()
    out = fn()
    first = time.perf_counter() - t
    fn()
    fn()
    times = [_time(fn) for _ in range(repeats)]
    return {"first": first, "median": statistics.median(times), "min": min(times), "out": out, "runs": repeats}


def _ort_session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def bench_model(name: str, lr: torch.Tensor, threads: int, repeats: int, tmp: Path, compilers: bool) -> list[dict]:
    """All paths for one model and one LR image."""
    torch.manual_seed(0)
    model = create_model(name, SCALE).eval()
    lr_np = lr.numpy()
    # SRCNN's exported graph is its convolutions; the MATLAB bicubic runs in torch, timed with it.
    bicubic_input = name.startswith("srcnn_9")

    def graph_input() -> np.ndarray:
        return imresize(lr, float(SCALE)).numpy() if bicubic_input else lr_np

    rows = []

    def add(path: str, build):
        rows.append({"model": name, "path": path, **measure(build, repeats)})

    add("srlab fast path", lambda: (lambda m=prepare(model): run(m, lr).numpy()))
    # Not exact (the last column shows by how much); faster only with native bfloat16 (AMX, AVX512-BF16).
    add("srlab fast path, bf16", lambda: (lambda m=prepare(model, precision="bf16"): run(m, lr).numpy()))

    def eager():
        return lambda: run(model, lr).numpy()

    add("PyTorch eager", eager)

    def eager_cl():
        m = copy.deepcopy(model).to(memory_format=torch.channels_last)
        x = lr.contiguous(memory_format=torch.channels_last)
        return lambda: run(m, x).contiguous().numpy()

    add("PyTorch eager, channels-last", eager_cl)
    if compilers and name == "fsrcnn":

        def jit_frozen():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m = torch.jit.optimize_for_inference(torch.jit.script(copy.deepcopy(model)))
            return lambda: run(m, lr).numpy()

        add("torch.jit.freeze + optimize_for_inference", jit_frozen)

        def compiled():
            import torch._inductor.config as inductor_config

            inductor_config.freezing = True  # weights as constants: lets inductor fold and fuse
            m = torch.compile(export_graph(model)[0].to(memory_format=torch.channels_last), dynamic=False)
            x = lr.contiguous(memory_format=torch.channels_last)
            return lambda: run(m, x).contiguous().numpy()

        add("torch.compile (inductor, frozen), sub-pixel graph", compiled)
    graphs = [("", export_onnx(model, tmp / f"{name}.onnx"))]
    if name.startswith("fsrcnn"):
        # The same network with its ConvTranspose kept: is the rewrite what makes a runtime fast?
        graphs.append((", ConvTranspose graph", export_onnx(model, tmp / f"{name}_deconv.onnx", as_trained=True)))
    for label, onnx_path in graphs:
        try:
            import onnxruntime  # noqa: F401

            def ort_runner(onnx_path=onnx_path):
                session = _ort_session(onnx_path, threads)
                feed = session.get_inputs()[0].name
                return lambda: session.run(None, {feed: graph_input()})[0]

            add("ONNX Runtime" + label, ort_runner)
        except ImportError:
            print("onnxruntime missing: no ONNX Runtime row", file=sys.stderr)
        try:
            import cv2

            def cv_runner(onnx_path=onnx_path):
                cv2.setNumThreads(threads)
                net = cv2.dnn.readNetFromONNX(str(onnx_path))

                def go():
                    net.setInput(graph_input())
                    return net.forward()

                return go

            add("OpenCV DNN" + label, cv_runner)
        except ImportError:
            print("opencv missing: no OpenCV DNN row", file=sys.stderr)
    return rows


def bench_pillow(lr: torch.Tensor, repeats: int) -> dict:
    h, w = lr.shape[-2:]

    def build():
        img = Image.fromarray(lr[0, 0].numpy(), mode="F")
        return lambda: np.asarray(img.resize((SCALE * w, SCALE * h), Image.BICUBIC))[None, None]

    return {"model": "-", "path": "Pillow bicubic (floor)", **measure(build, repeats)}


def cold_start(threads: int) -> dict:
    """A fresh process: import srlab, then prepare + first call, second call (FSRCNN x3, 1080p)."""
    code = f"""
import time, json
t0 = time.perf_counter()
import torch
torch.set_num_threads({threads})
import srlab
from srlab.inference import prepare, run
t1 = time.perf_counter()
model = srlab.create_model("fsrcnn", 3)
x = torch.rand(1, 1, 360, 640)
t2 = time.perf_counter()
out = run(prepare(model), x)
t3 = time.perf_counter()
run(prepare(model), x)
t4 = time.perf_counter()
print(json.dumps(dict(imports=t1 - t0, first=t3 - t2, second=t4 - t3)))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def sweep_tiles(name: str, size: tuple[int, int], tiles: list[tuple[int, int] | None], repeats: int = 5) -> list[str]:
    """One thread, CPU time (robust to other processes): the fast path at several tile sizes."""
    from srlab.inference import FAST_PATHS

    torch.set_num_threads(1)
    model = create_model(name, SCALE).eval()
    lr = torch.rand(1, 1, *size)
    lines = [f"{name} x{SCALE}, LR {size[1]}x{size[0]}, 1 thread, best CPU ms of {repeats}:"]
    for tile in tiles:
        fast = FAST_PATHS[type(model)](model, tile=tile, workers=1)
        run(fast, lr)
        best = min(_cpu_time(lambda: run(fast, lr)) for _ in range(repeats))
        lines.append(f"  tile {'whole image' if tile is None else f'{tile[0]}x{tile[1]}'}: {best * 1e3:.1f}")
    return lines


def profile_fast_path(name: str, size: tuple[int, int] = (360, 640)) -> list[str]:
    """Where the fast path's time goes: one thread, per operator (and per conv weight shape).

    Convolution rows give their achieved GFLOP/s from the multiply-adds they really did
    (tile halos included), against one-thread matmul throughput.
    """
    from torch.profiler import ProfilerActivity, profile

    from srlab.inference import FAST_PATHS

    torch.set_num_threads(1)
    peak = matmul_gflops(1, cpu_clock=True)
    model = create_model(name, SCALE).eval()
    fast = FAST_PATHS[type(model)](model, workers=1)
    lr = torch.rand(1, 1, *size)
    run(fast, lr)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        start = time.thread_time()
        run(fast, lr)
        total = time.thread_time() - start
    groups: dict[str, list[float]] = {}
    for event in prof.events():
        if event.cpu_parent is not None and event.cpu_parent.name.startswith("aten::"):
            continue  # count each top-level aten op once, not its children
        if not event.name.startswith("aten::") and not event.name.startswith("mkldnn::"):
            continue
        key, flops = event.name, 0.0
        if "convolution" in event.name and len(event.input_shapes) > 1 and len(event.input_shapes[1]) == 4:
            x_shape, w_shape = event.input_shapes[0], event.input_shapes[1]
            pad = event.concrete_inputs[3] if event.concrete_inputs and len(event.concrete_inputs) > 3 else None
            key = f"conv {w_shape[1]}->{w_shape[0]} {w_shape[2]}x{w_shape[3]}"
            ph = pad[0] if isinstance(pad, (list, tuple)) else (w_shape[2] // 2)
            out_px = x_shape[0] * (x_shape[2] + 2 * ph - w_shape[2] + 1) * (x_shape[3] + 2 * ph - w_shape[3] + 1)
            flops = 2.0 * out_px * w_shape[0] * w_shape[1] * w_shape[2] * w_shape[3]
        acc = groups.setdefault(key, [0.0, 0.0, 0])
        acc[0] += event.cpu_time_total / 1e6
        acc[1] += flops
        acc[2] += 1
    # Profiler times are wall clock (they grow when other processes take the core);
    # the thread's CPU time is not, so each operator gets its share of that.
    spent = sum(v[0] for v in groups.values())
    lines = [
        f"{name} x{SCALE} fast path, LR {size[1]}x{size[0]}, 1 thread: {total * 1e3:.1f} ms CPU under the profiler, "
        f"split by each operator's share of profiled time; one-thread fp32 matmul {peak:.0f} GFLOP/s",
        f"{'operator':<28} {'CPU ms':>7} {'share':>6} {'calls':>5} {'GFLOP/s':>8} {'of matmul':>9}",
    ]
    for key, (sec, flops, calls) in sorted(groups.items(), key=lambda kv: -kv[1][0]):
        if sec < 0.002 * spent:
            continue
        cpu = total * sec / spent
        rate = f"{flops / cpu / 1e9:8.0f} {flops / cpu / 1e9 / peak:9.0%}" if flops else f"{'-':>8} {'-':>9}"
        lines.append(f"{key:<28} {cpu * 1e3:7.1f} {sec / spent:6.1%} {calls:5d} {rate}")
    return lines


def _cpu_time(fn: Callable[[], object]) -> float:
    t = time.thread_time()
    fn()
    return time.thread_time() - t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="threads for every runtime (default: torch's)")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs after warm-up (default 10)")
    parser.add_argument("--slow-repeats", type=int, default=3, help="timed runs for SRCNN at 1080p (default 3)")
    parser.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    parser.add_argument("--quick", action="store_true", help="tiny images, 2 repeats: a smoke test")
    parser.add_argument("--no-compilers", dest="compilers", action="store_false", help="skip the torch.compile and torch.jit rows (FSRCNN only)")
    parser.add_argument("--out", help="also write the report (markdown) here")
    parser.add_argument("--profile", metavar="MODEL", choices=MODELS, help="instead: per-operator time of MODEL's fast path, one thread")
    parser.add_argument("--sweep-tiles", metavar="MODEL", choices=MODELS, help="instead: time the fast path of MODEL at several tile sizes")
    args = parser.parse_args(argv)
    if args.profile:
        print("\n".join(profile_fast_path(args.profile)))
        return 0
    if args.sweep_tiles:
        size, tiles = (360, 640), [None, (32, 640), (24, 640), (48, 640), (64, 640), (40, 320), (64, 160), (40, 160), (64, 64)]
        if args.sweep_tiles.startswith("srcnn"):
            size, tiles = (180, 320), [None, (32, 640), (96, 640), (64, 1024), (128, 1024)]
        print("\n".join(sweep_tiles(args.sweep_tiles, size, tiles)))
        return 0
    torch.set_num_threads(args.threads)
    sizes = [(24, 40)] if args.quick else SIZES
    repeats = 2 if args.quick else args.repeats

    started = time.perf_counter()
    load_before = os.getloadavg()
    peak = matmul_gflops(args.threads, n=512 if args.quick else 2048)
    macs = {name: macs_per_output_pixel(create_model(name, SCALE), SCALE) for name in args.models}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for h, w in sizes:
            torch.manual_seed(1)
            lr = torch.rand(1, 1, h, w)
            pillow = bench_pillow(lr, repeats)
            pillow["size"] = (h, w)
            rows.append(pillow)
            for name in args.models:
                slow = name.startswith("srcnn") and h * w > 100_000
                n = min(repeats, args.slow_repeats) if slow else repeats
                print(f"{name} {w}x{h} ({n} runs)...", file=sys.stderr, flush=True)
                model_rows = bench_model(name, lr, args.threads, n, Path(tmp), args.compilers)
                reference = next(r["out"] for r in model_rows if r["path"] == "PyTorch eager")
                for r in model_rows:
                    r["size"] = (h, w)
                    r["diff"] = float(np.abs(r["out"] - reference).max())
                rows.extend(model_rows)
    cold = None if args.quick else cold_start(args.threads)
    elapsed = time.perf_counter() - started

    lines = [
        f"date {datetime.date.today().isoformat()}; torch {torch.__version__}; {_versions()}; "
        f"{args.threads} threads; CPU: {_cpu_name()}; python {platform.python_version()}",
        f"fp32 matmul (2048^3, torch.mm, {args.threads} threads): {peak:.0f} GFLOP/s",
        "multiply-adds per output pixel (x3, from layer shapes): " + ", ".join(f"{k} {v:,.0f}" for k, v in macs.items()),
        "",
        "| LR -> HR | model | path | median ms | min ms | first call ms | output MP/s | GFLOP/s | of matmul | max abs diff vs eager | runs |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        h, w = r["size"]
        mp = SCALE * h * SCALE * w / 1e6
        gflops = 2 * macs[r["model"]] * mp * 1e6 / r["median"] / 1e9 if r["model"] in macs else None
        lines.append(
            f"| {w}x{h} -> {SCALE * w}x{SCALE * h} | {r['model']} | {r['path']} | {r['median'] * 1e3:.1f} | {r['min'] * 1e3:.1f} | "
            f"{r['first'] * 1e3:.0f} | {mp / r['median']:.1f} | "
            + (f"{gflops:.0f} | {gflops / peak:.0%}" if gflops is not None else "- | -")
            + f" | {r['diff']:.1e} | {r['runs']} |" if "diff" in r else
            f"| {w}x{h} -> {SCALE * w}x{SCALE * h} | - | {r['path']} | {r['median'] * 1e3:.1f} | {r['min'] * 1e3:.1f} | "
            f"{r['first'] * 1e3:.0f} | {mp / r['median']:.1f} | - | - | - | {r['runs']} |"
        )
    summary = _speedups(rows)
    lines += ["", *summary]
    if cold is not None:
        lines.append(
            f"cold process, FSRCNN x3 640x360: import torch+srlab {cold['imports'] * 1e3:.0f} ms, "
            f"prepare + first call {cold['first'] * 1e3:.0f} ms, prepare + second call {cold['second'] * 1e3:.0f} ms"
        )
    load_after = os.getloadavg()
    lines.append(
        f"total benchmark time {elapsed:.0f} s; 1-minute load average {load_before[0]:.2f} before, {load_after[0]:.2f} after "
        f"(other processes on this {os.cpu_count()}-CPU machine compete for the same cores when it is above ~0)"
    )
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        atomic_write(args.out, lambda tmp: tmp.write_text(report))
    return 0


def _speedups(rows: list[dict]) -> list[str]:
    out = []
    for size in sorted({r["size"] for r in rows}, reverse=True):
        for model in ("fsrcnn", "fsrcnn_s", "espcn", "srcnn_955"):
            pick = {r["path"]: r for r in rows if r["size"] == size and r["model"] == model}
            fast, ort = pick.get("srlab fast path"), pick.get("ONNX Runtime")
            if fast and ort:
                h, w = size
                out.append(
                    f"{model} {w}x{h}: srlab fast path {ort['median'] / fast['median']:.2f}x ONNX Runtime, "
                    f"{pick['PyTorch eager']['median'] / fast['median']:.2f}x PyTorch eager (medians)"
                )
    return out


def _versions() -> str:
    parts = []
    for mod in ("onnxruntime", "cv2", "PIL"):
        try:
            parts.append(f"{mod} {__import__(mod).__version__}")
        except ImportError:
            parts.append(f"{mod} missing")
    return "; ".join(parts) + f"; srlab {srlab.__version__}"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
