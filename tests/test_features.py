"""Feature extraction, kernels, statistics, grids and ``srlab features``."""

from __future__ import annotations

import csv
import json
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import srlab
from srlab.checkpoint import save_model
from srlab.cli import main
from srlab.features import activation_stats, deconv_phase_kernels, extract_features, filters, layer_names, load_input
from srlab.features_plot import GridStyle, feature_grid, grid_size, kernel_grid, tile_shape
from srlab.imageio import read_y
from srlab.imresize import imresize
from srlab.models import create_model, list_models
from srlab.pretrained import ASSETS_DIR

ALL_MODELS = list_models(include_baselines=True)


def expected_layers(model: nn.Module, h: int, w: int) -> list[tuple[str, tuple[int, ...]]]:
    """Layer names and shapes written out from each architecture's definition."""
    hp, s = model.hparams, model.scale
    c = hp["channels"]
    arch = type(model).__name__
    if arch == "FSRCNN":
        d, sh, m = hp["d"], hp["s"], hp["m"]
        out = [("feature_extraction.0", d), ("feature_extraction.1", d), ("shrinking.0", sh), ("shrinking.1", sh)]
        for i in range(m):
            out += [(f"mapping.{i}.0", sh), (f"mapping.{i}.1", sh)]
        out += [("expanding.0", d), ("expanding.1", d)]
        return [(n, (1, ch, h, w)) for n, ch in out] + [("deconvolution", (1, c, s * h, s * w))]
    if arch == "SRCNN":
        n1, n2 = hp["n1"], hp["n2"]
        layers = [("patch_extraction", n1), ("relu1", n1), ("nonlinear_mapping", n2), ("relu2", n2), ("reconstruction", c)]
        return [(n, (1, ch, s * h, s * w)) for n, ch in layers]
    if arch == "ESPCN":
        n1, n2 = hp["n1"], hp["n2"]
        layers = [("conv1", n1), ("act1", n1), ("conv2", n2), ("act2", n2), ("conv3", c * s * s)]
        return [(n, (1, ch, h, w)) for n, ch in layers] + [("pixel_shuffle", (1, c, s * h, s * w))]
    if arch == "SRCNNRef":
        layers = [("conv1", 64), ("relu1", 64), ("conv2", 64), ("relu2", 64), ("conv3", 32), ("relu3", 32), ("conv4", c * s * s)]
        return [(n, (1, ch, h, w)) for n, ch in layers] + [("pixel_shuffle", (1, c, s * h, s * w))]
    if arch == "Bicubic":
        return [("output", (1, c, s * h, s * w))]
    raise AssertionError(f"no expected layer list for {arch}: add one here when registering a model")


@pytest.mark.parametrize("name", ALL_MODELS)
@pytest.mark.parametrize("scale", [2, 3])
def test_layer_names_and_shapes_of_every_model(name, scale):
    model = create_model(name, scale)
    expected = expected_layers(model, 11, 14)
    assert layer_names(model, (11, 14)) == expected
    acts = extract_features(model, torch.rand(1, 1, 11, 14))
    assert [(k, tuple(v.shape)) for k, v in acts.items()] == expected


def _hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


@pytest.mark.parametrize("name", ALL_MODELS)
def test_hooks_removed_after_extraction(name):
    model = create_model(name, 2)
    own = model.register_forward_hook(lambda *a: None)  # a user's own hook must survive
    extract_features(model, torch.rand(1, 1, 8, 8))
    layer_names(model, (8, 8))
    extract_features(model, torch.rand(1, 1, 16, 16), tile=8, halo=4)
    assert _hook_count(model) == 1
    own.remove()


def test_hooks_removed_after_exception_inside_forward():
    model = create_model("fsrcnn_s", 2)

    def broken(x):
        raise RuntimeError("boom inside forward")

    model.mapping[0][0].forward = broken
    with pytest.raises(RuntimeError, match="boom inside forward"):
        extract_features(model, torch.rand(1, 1, 8, 8))
    assert _hook_count(model) == 0
    # A tensor of the wrong kind raises before any hook is registered, and leaves none either.
    with pytest.raises(ValueError, match="channel"):
        extract_features(model, torch.rand(1, 2, 8, 8))
    assert _hook_count(model) == 0


def test_activations_equal_layers_run_by_hand():
    torch.manual_seed(0)
    x = torch.rand(2, 1, 9, 10)
    m = create_model("fsrcnn", 3, d=8, s=4, m=2).eval()
    acts = extract_features(m, x)
    with torch.no_grad():
        h = x
        for name, layer in [
            ("feature_extraction.0", m.feature_extraction[0]),
            ("feature_extraction.1", m.feature_extraction[1]),
            ("shrinking.0", m.shrinking[0]),
            ("shrinking.1", m.shrinking[1]),
            ("mapping.0.0", m.mapping[0][0]),
            ("mapping.0.1", m.mapping[0][1]),
            ("mapping.1.0", m.mapping[1][0]),
            ("mapping.1.1", m.mapping[1][1]),
            ("expanding.0", m.expanding[0]),
            ("expanding.1", m.expanding[1]),
            ("deconvolution", m.deconvolution),
        ]:
            h = layer(h)
            torch.testing.assert_close(acts[name], h, rtol=0, atol=0)

    # SRCNN: the inplace ReLU must not overwrite the captured convolution output.
    s = create_model("srcnn_955", 2).eval()
    acts = extract_features(s, x)
    with torch.no_grad():
        up = imresize(x, 2.0)
        conv1 = F.conv2d(up, s.patch_extraction.weight, s.patch_extraction.bias, padding=4)
        conv2 = F.conv2d(conv1.relu(), s.nonlinear_mapping.weight, s.nonlinear_mapping.bias, padding=2)
        out = F.conv2d(conv2.relu(), s.reconstruction.weight, s.reconstruction.bias, padding=2)
    torch.testing.assert_close(acts["patch_extraction"], conv1)
    assert (acts["patch_extraction"] < 0).any()
    torch.testing.assert_close(acts["relu1"], conv1.relu())
    torch.testing.assert_close(acts["relu2"], conv2.relu())
    torch.testing.assert_close(acts["reconstruction"], out)

    e = create_model("espcn", 2).eval()
    acts = extract_features(e, x, layers=["conv3", "act1"])
    assert list(acts) == ["act1", "conv3"]  # forward order, not request order
    with torch.no_grad():
        a1 = torch.tanh(e.conv1(x))
        torch.testing.assert_close(acts["act1"], a1)
        torch.testing.assert_close(acts["conv3"], e.conv3(torch.tanh(e.conv2(a1))))


def test_container_names_and_unknown_layers():
    m = create_model("fsrcnn_s", 2)
    x = torch.rand(1, 1, 8, 8)
    acts = extract_features(m, x, layers=["shrinking", "shrinking.1"])
    torch.testing.assert_close(acts["shrinking"], acts["shrinking.1"])
    with pytest.raises(ValueError, match=r"unknown layer.*'nope'.*feature_extraction\.0"):
        extract_features(m, x, layers=["nope"])


@pytest.mark.parametrize("name", list_models())
def test_tiled_extraction_equals_whole_image(name):
    torch.manual_seed(1)
    model = create_model(name, 3)
    x = torch.rand(1, 1, 29, 34)
    whole = extract_features(model, x)
    tiled = extract_features(model, x, tile=12)
    assert list(tiled) == list(whole)
    for k in whole:
        torch.testing.assert_close(tiled[k], whole[k], rtol=1e-5, atol=1e-6)
    # Without context at the tile seams the result differs: the halo is what makes it exact.
    seamed = extract_features(model, x, tile=12, halo=0)
    last = list(whole)[-1]
    assert not torch.allclose(seamed[last], whole[last], atol=1e-6)


def test_crop_and_input_kinds():
    path = ASSETS_DIR / "astronaut.png"
    y = torch.from_numpy(read_y(path).astype(np.float32) / 255)
    torch.testing.assert_close(load_input(path), y[None, None])
    torch.testing.assert_close(load_input(Image.open(path)), y[None, None])
    torch.testing.assert_close(load_input(read_y(path)), y[None, None])
    rgb = torch.from_numpy(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)
    assert (load_input(rgb) - y[None, None]).abs().max() < 0.5 / 255 + 1e-6  # unrounded Y
    model = create_model("espcn", 2)
    acts = extract_features(model, path, layers="conv1", crop=(10, 20, 30, 16))
    full = extract_features(model, y[20:36, 10:40], layers="conv1")
    torch.testing.assert_close(acts["conv1"], full["conv1"])
    with pytest.raises(ValueError, match="not inside the 288x288 image"):
        extract_features(model, path, crop=(280, 0, 16, 16))
    with pytest.raises(TypeError, match="path, PIL image"):
        extract_features(model, [1, 2, 3])


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("k", [9, 5])
def test_phase_kernels_equal_the_transposed_convolution(scale, k):
    torch.manual_seed(scale)
    pad = k // 2
    deconv = nn.ConvTranspose2d(6, 2, k, stride=scale, padding=pad, output_padding=scale - (k - 2 * pad))
    x = torch.randn(2, 6, 7, 5)
    w, b, p = deconv_phase_kernels(deconv)
    assert w.shape[:2] == (2 * scale * scale, 6)
    with torch.no_grad():
        torch.testing.assert_close(F.pixel_shuffle(F.conv2d(x, w, b, padding=p), scale), deconv(x), rtol=1e-5, atol=1e-6)
    # Every tap of the kernel lands in exactly one phase, once.
    torch.testing.assert_close(w.square().sum(), deconv.weight.detach().square().sum())
    assert int((w != 0).sum()) == int((deconv.weight != 0).sum())


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_fsrcnn_deconvolution_filters_as_subpixel_convolutions(scale):
    model = create_model("fsrcnn", scale).eval()
    with torch.no_grad():
        model.deconvolution.weight.normal_()
        model.deconvolution.bias.fill_(0.3)
    f = filters(model, "deconvolution")
    assert f.kind == "deconv" and f.stride == scale and f.weight.shape == (56, 1, 9, 9)
    x = torch.rand(1, 1, 10, 7)
    acts = extract_features(model, x, layers=["expanding.1", "deconvolution"])
    phases = F.pixel_shuffle(F.conv2d(acts["expanding.1"], f.phases, f.phase_bias, padding=f.phase_padding), scale)
    torch.testing.assert_close(phases, acts["deconvolution"], rtol=1e-4, atol=1e-4)
    assert filters(model, "feature_extraction.0").weight.shape == (56, 1, 5, 5)
    with pytest.raises(ValueError, match="PReLU, which has no convolution kernels"):
        filters(model, "feature_extraction.1")


def test_phase_kernels_refuse_a_non_subpixel_deconvolution():
    with pytest.raises(ValueError, match="not exactly 2x"):
        deconv_phase_kernels(nn.ConvTranspose2d(3, 1, 4, stride=2, padding=0))
    f = filters(nn.Sequential(nn.ConvTranspose2d(3, 1, 4, stride=2)), "0")
    assert f.phases is None and f.weight.shape == (3, 1, 4, 4)


def test_stats_by_hand():
    a = torch.tensor([-1.0, 0.0, 2.0, 3.0, 5.0, 5.0, 5.0, 5.0]).reshape(1, 2, 2, 2)
    s = activation_stats(a)
    c0, c1 = s["channels"]
    assert c0["mean"] == 1.0 and c0["std"] == pytest.approx(math.sqrt(2.5))
    assert c0["zero_fraction"] == 0.25 and c0["negative_fraction"] == 0.25 and c0["energy"] == 3.5
    assert c1["std"] == 0.0 and c1["energy"] == 25.0 and c1["min"] == c1["max"] == 5.0
    assert s["rank_by_energy"] == [1, 0] and c1["energy_rank"] == 0
    assert s["mean"] == 3.0 and s["zero_fraction"] == 0.125 and s["negative_fraction"] == 0.125


def test_stats_of_a_zero_image_through_relu_and_prelu_layers():
    srcnn = create_model("srcnn_915", 2)
    bias = torch.tensor([-0.5, 0.0, 0.25, 2.0] * 16)
    with torch.no_grad():
        srcnn.patch_extraction.bias.copy_(bias)
    acts = extract_features(srcnn, torch.zeros(1, 1, 6, 6), layers=["patch_extraction", "relu1"])
    conv, relu = activation_stats(acts["patch_extraction"]), activation_stats(acts["relu1"])
    for c, b in enumerate(bias.tolist()):
        # Zero input and zero padding: every conv output is the bias.
        assert conv["channels"][c]["negative_fraction"] == (1.0 if b < 0 else 0.0)
        assert relu["channels"][c]["zero_fraction"] == (1.0 if b <= 0 else 0.0)
        assert relu["channels"][c]["mean"] == pytest.approx(max(b, 0.0))
    assert relu["dead_channels"] == 32 and relu["zero_fraction"] == 0.5
    assert relu["rank_by_energy"][:16] == list(range(3, 64, 4))

    fsrcnn = create_model("fsrcnn_s", 2)
    with torch.no_grad():
        fsrcnn.feature_extraction[0].bias.copy_(torch.linspace(-1, 1, 32))
    acts = extract_features(fsrcnn, torch.zeros(1, 1, 5, 5), layers=["feature_extraction.0", "feature_extraction.1"])
    before, after = activation_stats(acts["feature_extraction.0"]), activation_stats(acts["feature_extraction.1"])
    assert before["negative_fraction"] == 0.5  # 16 of 32 biases are negative
    assert after["channels"][0]["mean"] == pytest.approx(-1.0 * 0.25)  # PReLU's initial slope
    assert after["zero_fraction"] == 0.0


def test_grid_sizes():
    style = GridStyle()
    assert tile_shape(10, 10) == (40, 40)  # enlarged x4 to reach 48 px
    assert tile_shape(300, 200) == (128, 85)  # shrunk to fit 128 px
    assert tile_shape(100, 60) == (100, 60)
    img = feature_grid(torch.randn(8, 10, 10), "t")
    # 3 columns x 3 rows of 40 px tiles: narrower than the minimum width 480.
    assert img.size == (480, 36 + 3 * (14 + 40 + 4) + 4 + 30) == grid_size(8, 40, 40, style=style)
    img = feature_grid(torch.rand(64, 100, 60))
    assert img.size == (8 * (60 + 4) + 4, 36 + 8 * (14 + 100 + 4) + 4 + 30)
    img = kernel_grid(torch.randn(56, 1, 5, 5))
    assert img.size == (480, 36 + 7 * (14 + 40 + 4) + 4 + 30)
    img = kernel_grid(torch.randn(9, 56, 5, 5), tile=20)
    assert img.size == (56 * 24 + 4, 36 + 9 * (14 + 20 + 4) + 4 + 30)


def test_grid_colours_follow_the_stated_mapping():
    style = GridStyle()
    m = torch.zeros(2, 8, 8)
    m[0, :, :4], m[0, :, 4:] = 2.0, -2.0  # signed: red left, blue right
    img = np.asarray(feature_grid(m, signed=True))
    y, x = style.title_h + style.label_h + 10, style.pad
    left, right = img[y, x + 5].astype(int), img[y, x + 40].astype(int)
    assert left[0] > left[2] + 50 and right[2] > right[0] + 50  # RdBu_r ends: (103, 0, 31), (5, 48, 97)
    zero_tile = img[y, x + 48 + style.pad + 10]
    assert (zero_tile > 240).all()  # an all-zero channel is white (0), not an end of the scale
    g = torch.arange(16.0).reshape(1, 4, 4) + 100  # unsigned: own min -> black, own max -> white
    img = np.asarray(feature_grid(g, signed=False))
    y0 = style.title_h + style.label_h
    assert (img[y0, style.pad] == 0).all() and (img[y0 + 47, style.pad + 47] == 255).all()


def _make_png(path, size=(20, 16)):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def test_cli_end_to_end_with_checkpoint(tmp_path, capsys):
    img = _make_png(tmp_path / "in.png")
    model = create_model("fsrcnn_s", 2)
    ckpt = save_model(model, tmp_path / "ckpt" / "tiny")
    out = tmp_path / "out"
    rc = main(["features", str(img), "--model", "fsrcnn_s", "--scale", "2", "--weights", str(ckpt), "--crop", "2,1,16,12", "--out", str(out), "--npz"])
    assert rc == 0
    page = (out / "index.html").read_text()
    refs = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert len(refs) >= 9 + 3 + 1 + 3  # layers, filters, input, data files
    for ref in refs:
        assert (out / ref).is_file(), ref
    assert {"overview.png", "filters_first.png", "filters_last.png", "filters_last_phases.png", "stats.json", "stats.csv", "activations.npz"} <= set(refs)
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    stats = json.loads((out / "stats.json").read_text())
    names = [n for n, _ in layer_names(model, (12, 16))]
    assert list(stats["layers"]) == names and stats["weights"] == str(ckpt)
    assert stats["layers"]["deconvolution"]["shape"] == [1, 1, 24, 32]
    rows = list(csv.DictReader(open(out / "stats.csv")))
    assert len(rows) == sum(len(s["channels"]) + 1 for s in stats["layers"].values())
    with np.load(out / "activations.npz") as npz:
        assert set(npz.files) == set(names) | {"_input"}
        acts = extract_features(model, img, crop=(2, 1, 16, 12))
        np.testing.assert_allclose(npz["shrinking.1"], acts["shrinking.1"].numpy(), rtol=1e-6, atol=1e-7)
    grid = Image.open(out / "features" / "shrinking.1.png")
    th, tw = tile_shape(12, 16)
    assert grid.size == grid_size(5, th, tw)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_cli_every_model_with_random_weights(tmp_path, name):
    img = _make_png(tmp_path / "in.png", (10, 9))
    out = tmp_path / name
    assert main(["features", str(img), "--model", name, "--scale", "2", "--random", "--layers", layer_names(create_model(name, 2), (9, 10))[-1][0], "--out", str(out)]) == 0
    for ref in re.findall(r'src="([^"]+)"', (out / "index.html").read_text()):
        assert (out / ref).is_file()


def test_cli_list_and_errors(tmp_path, capsys):
    img = _make_png(tmp_path / "in.png")
    assert main(["features", str(img), "--model", "espcn", "--scale", "3", "--list", "--crop", "0,0,8,6"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["conv1", "64", "x", "6", "x", "8"] and lines[-1].split() == ["pixel_shuffle", "1", "x", "18", "x", "24"]
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    for path in (bad, tmp_path / "missing.png"):
        assert main(["features", str(path), "--random", "--out", str(tmp_path / "o")]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(path) in err[0]
    assert not (tmp_path / "o").exists()
    assert main(["features", str(img), "--random"]) == 1
    assert "--out" in capsys.readouterr().err


def test_exported_from_package():
    assert srlab.extract_features is extract_features
