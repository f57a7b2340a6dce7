"""The paper protocol and `srlab eval`: the published bicubic table, bad inputs, JSON output."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from srlab.cli import main
from srlab.imresize import imresize
from srlab.protocol import evaluate_folder, make_lr, modcrop, score_image, to_uint8_levels

# Published bicubic baselines (PSNR dB / SSIM, Y, border = scale), ../shared/data/README.md:
# the SRCNN/FSRCNN/VDSR papers' table.
PUBLISHED_BICUBIC = {
    ("Set5", 2): (33.66, 0.9299),
    ("Set5", 3): (30.39, 0.8682),
    ("Set5", 4): (28.42, 0.8104),
    ("Set14", 2): (30.24, 0.8688),
    ("Set14", 3): (27.55, 0.7742),
    ("Set14", 4): (26.00, 0.7027),
    ("BSD100", 2): (29.56, 0.8431),
    ("BSD100", 3): (27.21, 0.7385),
    ("BSD100", 4): (25.96, 0.6675),
}


@pytest.mark.slow
def test_eval_bicubic_reproduces_the_published_table(data_root, tmp_path, one_thread, capsys):
    """119 images x 3 scales through `srlab eval --json`: every mean within 0.02 dB and 0.002 SSIM."""
    out = tmp_path / "bicubic.json"
    folders = [str(data_root / "Set5"), str(data_root / "Set14"), str(data_root / "BSDS500" / "val")]
    assert main(["-q", "eval", "--model", "bicubic", "--scale", "2", "3", "4", "--data", *folders, "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert len(results) == 9
    names = {"Set5": "Set5", "Set14": "Set14", "val": "BSD100"}
    counts = {"Set5": 5, "Set14": 14, "BSD100": 100}
    seen = set()
    for r in results:
        key = (names[r["set"]], r["scale"])
        seen.add(key)
        published_psnr, published_ssim = PUBLISHED_BICUBIC[key]
        assert len(r["per_image"]) == counts[key[0]] and r["failed"] == []
        assert r["mean_psnr"] == pytest.approx(np.mean([p["psnr"] for p in r["per_image"]]), abs=1e-12)
        assert abs(r["mean_psnr"] - published_psnr) <= 0.02, f"{key}: {r['mean_psnr']:.4f} dB vs published {published_psnr}"
        assert abs(r["mean_ssim"] - published_ssim) <= 0.002, f"{key}: SSIM {r['mean_ssim']:.5f} vs published {published_ssim}"
    assert seen == set(PUBLISHED_BICUBIC)
    table = capsys.readouterr().out
    assert "Set5" in table and "33.66" in table


def test_modcrop_and_make_lr():
    img = np.arange(7 * 11).reshape(7, 11)
    assert modcrop(img, 3).shape == (6, 9)
    np.testing.assert_array_equal(modcrop(img, 3), img[:6, :9])  # top-left kept
    assert modcrop(np.zeros((7, 11, 3)), 2).shape == (6, 10, 3)
    hr = torch.rand(1, 1, 12, 9, dtype=torch.float64)
    torch.testing.assert_close(make_lr(hr, 3), imresize(hr, 1 / 3))
    assert make_lr(hr, 3).shape == (1, 1, 4, 3)


def test_to_uint8_levels_rounds_like_matlab():
    # Clipped to [0, 1] first. The only exact tie a float in [0, 1] can give is 0.5 -> 127.5,
    # which MATLAB's uint8() and round-half-even both send to 128.
    x = torch.tensor([-0.1, 0.0, 0.49 / 255, 1.49 / 255, 1.51 / 255, 0.5, 1.0, 1.2], dtype=torch.float64)
    assert to_uint8_levels(x).tolist() == [0.0, 0.0, 0.0, 1.0, 2.0, 128.0, 255.0, 255.0]
    assert to_uint8_levels(x).dtype == torch.float64


def test_score_image_of_an_oracle_and_of_bicubic():
    rng = np.random.default_rng(0)
    y = np.clip(rng.normal(120, 40, size=(40, 34)), 0, 255).astype(np.uint8)
    cropped = torch.from_numpy(modcrop(y, 2).astype(np.float64))[None, None] / 255

    p, s = score_image(lambda lr: cropped, y, 2)  # returns the HR itself
    assert math.isinf(p) and s == pytest.approx(1.0, abs=1e-12)

    # Bicubic by hand: round the up-scaled LR to uint8, shave 2 pixels, PSNR against HR.
    p, s = score_image(lambda lr: imresize(lr, 2.0), y, 2)
    sr = torch.round(imresize(imresize(cropped, 0.5), 2.0).clamp(0, 1) * 255)[..., 2:-2, 2:-2]
    hr = (cropped * 255)[..., 2:-2, 2:-2]
    assert p == pytest.approx(10 * math.log10(255**2 / ((sr - hr) ** 2).mean().item()), abs=1e-9)
    assert 0 < s < 1


def test_score_image_rejects_wrong_output_size():
    y = np.zeros((30, 30), dtype=np.uint8)
    with pytest.raises(RuntimeError, match="does not match HR"):
        score_image(lambda lr: lr, y, 2)


def test_eval_bad_file_gives_one_line_and_the_rest_is_scored(image_folder, tmp_path, capsys):
    folder = image_folder("set", n=2, size=(40, 40))
    (folder / "broken.png").write_bytes(b"this is not a png")
    (folder / "notes.txt").write_text("ignored: not an image extension")
    out = tmp_path / "r.json"
    code = main(["eval", "--model", "bicubic", "--scale", "2", "--data", str(folder), "--json", str(out)])
    assert code == 1
    err_lines = [line for line in capsys.readouterr().err.splitlines() if "broken.png" in line]
    assert len(err_lines) == 1, err_lines
    assert "not an image" in err_lines[0] or "corrupt" in err_lines[0]
    (result,) = json.loads(out.read_text())
    assert [p["name"] for p in result["per_image"]] == ["img00", "img01"]
    assert result["failed"] == [str(folder / "broken.png")]
    assert result["set"] == "set" and result["scale"] == 2 and result["model"] == "bicubic"
    assert all(math.isfinite(p["psnr"]) and 0 < p["ssim"] <= 1 for p in result["per_image"])


def test_evaluate_folder_lists_failures(image_folder):
    folder = image_folder("set", n=1, size=(32, 32))
    (folder / "zero.jpg").write_bytes(b"")
    result = evaluate_folder(lambda lr: imresize(lr, 2.0), folder, 2, "bicubic")
    assert len(result.per_image) == 1 and result.failed == [str(folder / "zero.jpg")]
    assert result.to_dict()["mean_psnr"] == result.per_image[0].psnr


def test_eval_empty_folder_and_missing_path_say_what_was_expected(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["eval", "--scale", "2", "--data", str(empty)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no images found" in err[0] and "expected files ending in" in err[0] and str(empty) in err[0]

    missing = tmp_path / "nowhere"
    assert main(["eval", "--scale", "2", "--data", str(missing)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nowhere" in err[0] and "not found" in err[0] and "SRLAB_DATA" in err[0]

    a_file = tmp_path / "file.png"
    a_file.write_bytes(b"x")
    assert main(["eval", "--scale", "2", "--data", str(a_file)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a folder" in err[0]


def test_eval_builtin_images_json_layout(tmp_path, capsys, one_thread):
    out = tmp_path / "builtin.json"
    assert main(["eval", "--model", "bicubic", "--scale", "3", "--json", str(out)]) == 0
    (result,) = json.loads(out.read_text())
    assert set(result) >= {"set", "scale", "model", "per_image", "mean_psnr", "mean_ssim"}
    assert result["set"] == "assets" and result["scale"] == 3
    assert sorted(p["name"] for p in result["per_image"]) == ["astronaut", "coffee"]
    assert all(set(p) == {"name", "psnr", "ssim"} for p in result["per_image"])
    assert 20 < result["mean_psnr"] < 40
    assert "assets" in capsys.readouterr().out
