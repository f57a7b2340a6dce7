"""`srlab compare` figures and `srlab demo`."""

import sys

import numpy as np
import pytest
import torch
from PIL import Image

from srlab.checkpoint import save_model
from srlab.cli import main
from srlab.compare import draw_figure, pick_crop, run_comparison
from srlab.imresize import imresize
from srlab.metrics import psnr, ssim
from srlab.models import create_model
from srlab.pretrained import ASSETS_DIR
from srlab.upscale import load_upscaler




def _photo(size: int = 48) -> np.ndarray:
    """A crop of the built-in astronaut (real edges and texture)."""
    return np.asarray(Image.open(ASSETS_DIR / "astronaut.png").convert("RGB"))[100 : 100 + size, 100 : 100 + size].copy()


def test_pick_crop_finds_the_detail():
    img = np.full((60, 80), 128, dtype=np.uint8)
    img[30:42, 50:62] = np.random.default_rng(0).integers(0, 256, (12, 12))
    x, y, w, h = pick_crop(img, 12)
    assert (x, y, w, h) == (50, 30, 12, 12)


def test_degraded_comparison_scores_bicubic_by_the_protocol():
    gt = _photo(50)  # not a multiple of 3: mod-cropped to 48
    comparison = run_comparison(gt, 3, [("bicubic", load_upscaler("bicubic", 3))], degrade=True)
    assert comparison.ground_truth.shape == (48, 48, 3)
    assert [p.title.split(" ")[0] for p in comparison.panels] == ["input", "bicubic", "ground"]
    assert all(p.image.shape == (48, 48, 3) for p in comparison.panels)
    # Independently: MATLAB bicubic down and up, round, score Y with 3 pixels shaved.
    hr = gt[:48, :48].astype(np.float64)
    lr = np.clip(imresize(hr / 255.0, 1 / 3), 0, 1)
    sr = np.clip(np.rint(np.clip(imresize(lr.astype(np.float32).astype(np.float64), 3.0), 0, 1) * 255), 0, 255)
    expected = float(psnr(sr, hr, crop_border=3, test_y_channel=True)[0])
    panel = comparison.panels[1]
    assert panel.psnr == pytest.approx(expected, abs=0.02)
    assert panel.ssim == pytest.approx(float(ssim(sr, hr, crop_border=3, test_y_channel=True)[0]), abs=1e-3)
    assert 20 < panel.psnr < 40 and 0.5 < panel.ssim < 1


def test_input_comparison_has_no_scores_and_nearest_input():
    lr = _photo(16)
    comparison = run_comparison(lr, 2, [("bicubic", load_upscaler("bicubic", 2))])
    inp = comparison.panels[0].image
    assert inp.shape == (32, 32, 3) and (inp[::2, ::2] == lr).all() and (inp[1::2, 1::2] == lr).all()
    assert all(p.psnr is None for p in comparison.panels)
    assert comparison.ground_truth is None


def test_draw_figure_writes_a_png(tmp_path):
    comparison = run_comparison(_photo(24), 2, [("bicubic", load_upscaler("bicubic", 2))], degrade=True)
    out = draw_figure(comparison, (4, 4, 8, 8), tmp_path / "fig.png", "title")
    with Image.open(out) as fig:
        assert fig.format == "PNG" and fig.width > fig.height > 100
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]


def test_compare_cli_degrade(tmp_path, capsys):
    torch.manual_seed(0)
    ck = save_model(create_model("fsrcnn_s", 2), tmp_path / "mine")
    Image.fromarray(_photo(40)).save(tmp_path / "gt.png")
    rc = main(["compare", str(tmp_path / "gt.png"), "--scale", "2", "--models", f"bicubic,{ck}", "--out", str(tmp_path / "fig.png"), "--degrade", "--crop", "0,0,10,10"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "bicubic" in out and "mine" in out and "dB" in out
    assert (tmp_path / "fig.png").is_file()


def test_compare_cli_without_degrade_auto_crop(tmp_path):
    Image.fromarray(_photo(20)).save(tmp_path / "small.png")
    assert main(["compare", str(tmp_path / "small.png"), "--scale", "3", "--models", "bicubic", "--out", str(tmp_path / "f.png")]) == 0
    with Image.open(tmp_path / "f.png") as fig:
        assert fig.width > 300


def test_compare_cli_missing_model_fails_before_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.modules["srlab.pretrained"], "WEIGHTS_DIR", tmp_path / "none")
    Image.fromarray(_photo(20)).save(tmp_path / "a.png")
    assert main(["compare", str(tmp_path / "a.png"), "--scale", "3", "--models", "bicubic,fsrcnn", "--out", str(tmp_path / "f.png")]) == 1
    assert "no shipped weights for fsrcnn x3" in capsys.readouterr().err
    assert not (tmp_path / "f.png").exists()


def test_demo_without_shipped_weights_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.modules["srlab.pretrained"], "WEIGHTS_DIR", tmp_path / "none")
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 1
    err = capsys.readouterr().err
    assert "shipped weights for srcnn_955 x3, fsrcnn x3 are missing" in err
    assert not (tmp_path / "demo").exists()


def test_demo_with_shipped_weights(tmp_path, capsys, monkeypatch):
    weights = tmp_path / "weights"
    torch.manual_seed(0)
    for name in ("srcnn_955", "fsrcnn"):
        save_model(create_model(name, 3), weights / f"{name}_x3")
    monkeypatch.setattr(sys.modules["srlab.pretrained"], "WEIGHTS_DIR", weights)
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        ["astronaut_lr_x3.png", "astronaut_bicubic_x3.png", "astronaut_srcnn_955_x3.png", "astronaut_fsrcnn_x3.png", "astronaut_original.png", "astronaut_compare_x3.png"]
    )
    with Image.open(out / "astronaut_lr_x3.png") as lr, Image.open(out / "astronaut_fsrcnn_x3.png") as sr:
        assert lr.size == (96, 96) and sr.size == (288, 288)
    bicubic_line = next(line for line in printed.splitlines() if line.startswith("bicubic"))
    assert 25 < float(bicubic_line.split()[1]) < 35  # a real PSNR in dB
    assert str(out / "astronaut_compare_x3.png") in printed
