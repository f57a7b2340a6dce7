"""The CPU fast path: exact sub-pixel deconvolution, exact tiling, prepare()/run()."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import srlab.inference as inference_module
from srlab.fastpath import SubPixelConv, TiledConvNet, fast_fsrcnn, subpixel_plan
from srlab.inference import FAST_PATHS, prepare, run
from srlab.models import FSRCNN, create_model, list_models
from srlab.tiling import receptive_margin


def _perturbed(name: str, scale: int, seed: int = 0) -> nn.Module:
    """A model whose every weight matters (biases and PReLU slopes non-trivial)."""
    torch.manual_seed(seed)
    model = create_model(name, scale).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("scale", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("size", [(7, 9), (8, 6), (13, 13)])
@pytest.mark.parametrize("channels", [1, 3])
def test_subpixel_conv_equals_conv_transpose(scale, size, channels):
    torch.manual_seed(scale)
    deconv = nn.ConvTranspose2d(5, channels, 9, stride=scale, padding=4, output_padding=scale - 1)
    with torch.no_grad():
        deconv.bias.normal_()
    x = torch.randn(2, 5, *size)
    with torch.no_grad():
        ref = deconv(x)
        out = SubPixelConv(deconv)(x)
    assert out.shape == ref.shape == (2, channels, scale * size[0], scale * size[1])
    assert torch.allclose(out, ref, atol=1e-5, rtol=0)


def test_subpixel_plan_for_fsrcnn_x3_is_3x3():
    """Centred phases give every x3 phase the same 3 taps: no wasted multiply-adds."""
    plan = subpixel_plan(create_model("fsrcnn", 3).deconvolution)
    assert plan.weight.shape == (9, 56, 3, 3)
    assert plan.shift == 1
    # Every tap of the 9x9 kernel lands in exactly one phase kernel.
    assert int((plan.weight[:, 0] != 0).sum()) == 81


def test_subpixel_plan_rejects_other_layers():
    with pytest.raises(TypeError, match="ConvTranspose2d"):
        subpixel_plan(nn.Conv2d(4, 1, 3))
    with pytest.raises(ValueError, match="not exactly 3x"):
        subpixel_plan(nn.ConvTranspose2d(4, 1, 9, stride=3, padding=4))


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("scale", [2, 3])
def test_tiled_fast_path_equals_model(name, scale):
    model = _perturbed(name, scale)
    x = torch.rand(2, 1, 29, 35)
    with torch.inference_mode():
        ref = model(x)
        whole = FAST_PATHS[type(model)](model, tile=None)
        halo = max(whole.halo)
        # Small tiles, a short last row/column of tiles, and both threading modes.
        for tiled in (whole, FAST_PATHS[type(model)](model, tile=(halo, halo + 3), workers=2), FAST_PATHS[type(model)](model, tile=(halo + 1, halo), workers=1)):
            out = tiled(x)
            assert out.shape == ref.shape
            scale_of_values = ref.abs().max().item()
            assert (out - ref).abs().max().item() <= 1e-5 * max(1.0, scale_of_values)


def test_fast_path_has_same_receptive_field():
    """srlab.upscale measures the margin of the prepared model with a NaN probe."""
    model = _perturbed("fsrcnn", 3)
    fast = prepare(model)
    assert receptive_margin(lambda x: fast(x), 3) == receptive_margin(lambda x: model(x), 3)


def test_tile_smaller_than_halo_is_refused():
    with pytest.raises(ValueError, match="halo"):
        fast_fsrcnn(create_model("fsrcnn", 3), tile=(4, 64))


def test_prepare_returns_fast_module_and_keeps_description():
    model = _perturbed("fsrcnn", 3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fast = prepare(model)
    assert isinstance(fast, TiledConvNet)
    assert fast.scale == 3 and fast.hparams == model.hparams and fast.registry_name == "fsrcnn"
    assert isinstance(model.deconvolution, nn.ConvTranspose2d)  # the source model is not rewritten
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    x = torch.rand(1, 1, 50, 70)
    out = run(fast, x)
    assert not out.requires_grad
    assert torch.allclose(out, run(model, x), atol=1e-5)


def test_prepare_falls_back_for_bicubic_and_when_disabled():
    bicubic = create_model("bicubic", 2)
    assert prepare(bicubic) is bicubic
    model = create_model("espcn", 2)
    assert prepare(model, fast=False) is model
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert isinstance(prepare(model.double()), type(model))  # float64: no fast path, same module


@pytest.mark.parametrize("name", list_models())
def test_bf16_fast_path_is_close_and_tiles_agree(name, bf16_cpu):
    """bf16 keeps float32 in and out, lands within bfloat16's rounding of the float32
    result, and is not quietly float32: tiling changes it only by summation order."""
    model = _perturbed(name, 2)
    x = torch.rand(1, 1, 40, 44)
    ref = run(prepare(model), x)
    fast = prepare(model, precision="bf16")
    assert isinstance(fast, TiledConvNet) and fast.last_weight.dtype == torch.bfloat16
    assert fast.registry_name == name and fast.scale == 2
    out = run(fast, x)
    assert out.dtype == torch.float32 and out.shape == ref.shape
    err = (out - ref).abs().max().item()
    assert 0 < err < 0.05 * max(1.0, ref.abs().max().item())
    halo = max(fast.halo)
    tiled = FAST_PATHS[type(model)](model, tile=(halo, halo + 3), workers=2).to(torch.bfloat16)
    assert (run(tiled, x) - out).abs().max().item() < 0.02 * max(1.0, ref.abs().max().item())


def test_bf16_needs_the_fast_path():
    bicubic = create_model("bicubic", 2)
    assert prepare(bicubic, precision="bf16") is bicubic  # no weights: nothing to round
    with pytest.raises(ValueError, match="fast path"):
        prepare(create_model("fsrcnn", 2), fast=False, precision="bf16")
    with pytest.raises(ValueError, match="fast path"):
        prepare(create_model("fsrcnn", 2).double(), precision="bf16")
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16"):
        prepare(create_model("fsrcnn", 2), precision="fp16")


def test_parallel_tiles_leave_thread_count_alone():
    threads = torch.get_num_threads()
    fast = fast_fsrcnn(create_model("fsrcnn_s", 2), tile=(16, 16), workers=2)
    run(fast, torch.rand(1, 1, 40, 40))
    assert torch.get_num_threads() == threads


def test_fast_path_rejects_wrong_rank():
    fast = prepare(create_model("fsrcnn", 2))
    with pytest.raises(ValueError, match=r"\(N, C, h, w\)"):
        fast(torch.rand(1, 8, 8))


def test_fast_paths_cover_every_registered_model():
    covered = {cls.__name__ for cls in FAST_PATHS}
    for name in list_models():
        assert type(create_model(name, 2)).__name__ in covered, name
    assert FSRCNN in FAST_PATHS


def test_benchmark_counts_fsrcnn_multiply_adds():
    """The benchmark's GFLOP/s rest on this count: FSRCNN(56, 12, 4) x3 per output pixel."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "inference.py"
    spec = importlib.util.spec_from_file_location("bench_inference", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    per_lr_pixel = 25 * 56 + 56 * 12 + 4 * 9 * 12 * 12 + 12 * 56 + 81 * 56  # conv layers + 9x9 deconvolution
    assert bench.macs_per_output_pixel(create_model("fsrcnn", 3), 3) == pytest.approx(per_lr_pixel / 9)
    # SRCNN 9-5-5 works on the HR grid: no division by s^2.
    assert bench.macs_per_output_pixel(create_model("srcnn_955", 3), 3) == pytest.approx(81 * 64 + 25 * 64 * 32 + 25 * 32)


def test_fast_path_works_in_a_forked_child():
    """A forked process (a DataLoader worker) must not wait on the parent's thread pool."""
    import multiprocessing as mp

    fast = fast_fsrcnn(create_model("fsrcnn_s", 2), tile=(8, 8), workers=2)
    x = torch.rand(1, 1, 24, 24)
    expected = run(fast, x)  # starts the parent's pool
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:
        out = pool.apply_async(run, (fast, x)).get(timeout=60)
    assert torch.allclose(out, expected, atol=1e-6)


def test_bf16_is_refused_up_front_where_onednn_has_no_bfloat16(monkeypatch):
    """oneDNN raised a RuntimeError at the first tile on an AVX2-only CPU; say why before any work."""
    monkeypatch.setattr(inference_module, "native_bf16", lambda: False)
    with pytest.raises(ValueError, match=r"bf16 inference needs a CPU with bfloat16 support in oneDNN \(AVX512 or AMX\)"):
        prepare(create_model("srcnn_955", 3), precision="bf16")
    assert isinstance(prepare(create_model("srcnn_955", 3)), nn.Module)  # fp32 is unaffected
