"""srlab.upscale and `srlab upscale`: colour, alpha, bit depth, orientation, metadata,
naming, no-overwrite, and one test per kind of bad input."""

import io
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms, ImageOps

import srlab
from srlab.checkpoint import save_model
from srlab.cli import main
from srlab.imresize import imresize
from srlab.models import create_model
from srlab.upscale import Upscaler, collect_inputs, output_path

up_module = sys.modules["srlab.upscale"]  # `srlab.upscale` is the function




def _tiny(scale: int = 2) -> torch.nn.Module:
    """A small FSRCNN whose output is mid-gray plus structure (a fresh one outputs ~0)."""
    torch.manual_seed(0)
    model = create_model("fsrcnn", scale, d=8, s=4, m=1)
    with torch.no_grad():
        model.deconvolution.weight.normal_(0.0, 0.05)
        model.deconvolution.bias.fill_(0.5)
    return model


@pytest.fixture
def ckpt(tmp_path) -> Path:
    """A small x2 FSRCNN checkpoint; outputs are then named *_tiny_x2.*"""
    return save_model(_tiny(2), tmp_path / "ckpt" / "tiny")


def _rgb(h=12, w=16, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _cli(*args) -> int:
    return main(["--quiet", *map(str, args)])


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp")


# -- colour ------------------------------------------------------------------------


def test_gray_stays_gray_and_matches_rgb_gray():
    model = _tiny()
    gray = _rgb()[..., 0]
    out_l = srlab.upscale(Image.fromarray(gray), 2, model)
    assert out_l.mode == "L" and out_l.size == (32, 24)
    out_rgb = srlab.upscale(np.stack([gray] * 3, axis=-1), 2, model)
    # Gray stored as RGB has Cb = Cr = 128: the round trip keeps R = G = B ...
    assert np.abs(out_rgb[..., 0].astype(int) - out_rgb[..., 2]).max() <= 1
    assert np.abs(out_rgb[..., 0].astype(int) - out_rgb[..., 1]).max() <= 1
    # ... and equals the gray path, which uses the same studio-swing Y.
    assert np.abs(out_rgb[..., 1].astype(int) - np.asarray(out_l)).max() <= 1


def test_bicubic_model_gives_matlab_bicubic_on_gray():
    gray = np.random.default_rng(1).random((10, 13))
    out = srlab.upscale(gray, 3, "bicubic")
    assert out.dtype == np.float64 and out.shape == (30, 39)
    np.testing.assert_allclose(out, np.clip(imresize(gray, 3.0), 0, 1), atol=1e-5)


def test_chroma_goes_through_matlab_bicubic():
    """With the bicubic as 'network' the colour path is bicubic on Y, Cb, Cr = bicubic on RGB."""
    rgb = np.random.default_rng(2).random((9, 11, 3)).astype(np.float32)
    out = srlab.upscale(rgb, 2, "bicubic")
    np.testing.assert_allclose(out, np.clip(imresize(rgb.astype(np.float64), 2.0), 0, 1), atol=1e-4)


def test_alpha_is_upscaled_with_bicubic_and_kept():
    rgba = np.concatenate([_rgb(), np.random.default_rng(3).integers(0, 256, (12, 16, 1), dtype=np.uint8)], axis=-1)
    out = srlab.upscale(Image.fromarray(rgba, "RGBA"), 2, _tiny())
    assert out.mode == "RGBA"
    expected = np.clip(np.rint(imresize(rgba[..., 3].astype(np.float64) / 255.0, 2.0) * 255), 0, 255)
    assert np.abs(np.asarray(out)[..., 3].astype(int) - expected).max() <= 1
    la = srlab.upscale(Image.fromarray(rgba[..., [0, 3]], "LA"), 2, _tiny())
    assert la.mode == "LA" and la.size == (32, 24)


def test_palette_is_converted():
    img = Image.fromarray(_rgb()).convert("P")
    out = srlab.upscale(img, 2, _tiny())
    assert out.mode == "RGB" and out.size == (32, 24)


def test_16bit_gray_kept_in_api():
    img16 = (np.random.default_rng(4).random((12, 16)) * 65535).astype(np.uint16)
    out = srlab.upscale(img16, 2, _tiny())
    assert out.dtype == np.uint16 and out.shape == (24, 32)
    assert np.any(out % 257 != 0)  # real 16-bit levels, not 8-bit values stretched
    pil = srlab.upscale(Image.fromarray(img16), 2, _tiny())
    assert pil.mode == "I;16"


def test_16bit_gray_png_kept_by_cli(tmp_path, ckpt):
    img16 = (np.random.default_rng(5).random((12, 16)) * 65535).astype(np.uint16)
    Image.fromarray(img16).save(tmp_path / "deep.png")
    assert _cli("upscale", tmp_path / "deep.png", "--weights", ckpt, "--scale", 2, "--out", tmp_path / "out") == 0
    with Image.open(tmp_path / "out" / "deep_tiny_x2.png") as out:
        assert out.mode.startswith("I;16") and out.size == (32, 24)
        assert np.any(np.asarray(out) % 257 != 0)


def test_16bit_rgb_png_kept_by_cli(tmp_path, ckpt):
    cv2 = pytest.importorskip("cv2", reason="16-bit colour PNGs need OpenCV (srlab[opencv])")
    rgb16 = (np.random.default_rng(6).random((12, 16, 3)) * 65535).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), rgb16[..., ::-1])
    assert _cli("upscale", tmp_path / "deep.png", "--weights", ckpt, "--scale", 2, "--out", tmp_path / "out") == 0
    out = cv2.imread(str(tmp_path / "out" / "deep_tiny_x2.png"), cv2.IMREAD_UNCHANGED)[..., ::-1]
    assert out.dtype == np.uint16 and out.shape == (24, 32, 3)
    expected = srlab.upscale(rgb16, 2, _tiny())
    assert np.abs(out.astype(int) - expected).max() <= 1


# -- orientation and metadata ------------------------------------------------------


def _exif_jpeg(path: Path, pixels: np.ndarray, orientation: int) -> None:
    img = Image.fromarray(pixels)
    exif = img.getexif()
    exif[0x0112] = orientation
    exif[0x010F] = "srlab-test-camera"  # Make
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    img.save(path, quality=98, exif=exif.tobytes(), dpi=(72, 72), icc_profile=icc)


def test_exif_rotation_applied_and_metadata_carried(tmp_path):
    pixels = np.zeros((12, 16, 3), dtype=np.uint8)
    pixels[:4, :4] = 255  # a white corner, top left as stored
    _exif_jpeg(tmp_path / "photo.jpg", pixels, orientation=6)  # 6: rotate 90 degrees clockwise to view
    # The bicubic keeps the picture recognisable, so the corner can be found.
    assert _cli("upscale", tmp_path / "photo.jpg", "--model", "bicubic", "--scale", 2, "--out", tmp_path / "out", "--format", "png") == 0
    with Image.open(tmp_path / "out" / "photo_bicubic_x2.png") as out:
        assert out.size == (24, 32)  # upright: 12 wide, 16 tall, times 2
        arr = np.asarray(out.convert("L"), dtype=float)
        assert arr[:8, -8:].mean() > arr[:8, :8].mean() + 100  # the corner moved to the top right
        exif = out.getexif()
        assert 0x0112 not in exif  # already applied: a viewer must not rotate again
        assert exif.get(0x010F) == "srlab-test-camera"
        assert out.info.get("icc_profile")
        assert out.info["dpi"] == pytest.approx((144, 144), abs=0.5)


# -- the API returns what it was given ---------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(6, 7), (6, 7, 1), (6, 7, 3), (6, 7, 4)])
def test_numpy_in_numpy_out(dtype, shape):
    rng = np.random.default_rng(7)
    arr = rng.random(shape)
    arr = arr.astype(dtype) if np.issubdtype(dtype, np.floating) else (arr * np.iinfo(dtype).max).astype(dtype)
    out = srlab.upscale(arr, 2, _tiny())
    assert isinstance(out, np.ndarray) and out.dtype == dtype
    assert out.shape == (12, 14) + shape[2:]


@pytest.mark.parametrize("shape", [(6, 7), (3, 6, 7), (2, 3, 6, 7), (1, 6, 7)])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
def test_tensor_in_tensor_out(shape, dtype):
    x = torch.rand(shape)
    x = (x * 255).to(dtype) if dtype == torch.uint8 else x.to(dtype)
    out = srlab.upscale(x, 2, _tiny())
    assert isinstance(out, torch.Tensor) and out.dtype == dtype and out.device == x.device
    assert out.shape == shape[:-2] + (12, 14)


def test_tensor_matches_numpy():
    x = torch.rand(3, 6, 7)
    a = srlab.upscale(x, 2, _tiny())
    b = srlab.upscale(x.permute(1, 2, 0).numpy(), 2, _tiny())
    np.testing.assert_allclose(a.permute(1, 2, 0).numpy(), b, atol=1e-6)


def test_pil_in_pil_out():
    out = srlab.upscale(Image.fromarray(_rgb()), 2, _tiny())
    assert isinstance(out, Image.Image) and out.mode == "RGB" and out.size == (32, 24)


def test_api_rejects_other_kinds():
    with pytest.raises(TypeError, match="PIL image, numpy array or torch tensor"):
        srlab.upscale([[1, 2], [3, 4]], 2, _tiny())
    with pytest.raises(ValueError, match="C in 1..4"):
        srlab.upscale(np.zeros((4, 4, 5), np.uint8), 2, _tiny())


def test_model_scale_must_match():
    with pytest.raises(ValueError, match="needs a x3 model"):
        srlab.upscale(_rgb(), 3, _tiny(2))


def test_missing_shipped_weights_fail_clearly(monkeypatch, tmp_path):
    monkeypatch.setattr(sys.modules["srlab.pretrained"], "WEIGHTS_DIR", tmp_path)
    with pytest.raises(ValueError, match="no shipped weights for fsrcnn x3"):
        srlab.upscale(_rgb(), 3)


def test_restore_mode_is_bicubic_then_scale1_model():
    gray = np.random.default_rng(8).random((8, 9)).astype(np.float32)
    identity = create_model("bicubic", 1)  # a scale-1 "model" that changes nothing
    restored = srlab.upscale(gray, 3, identity, mode="restore")
    np.testing.assert_allclose(restored, np.clip(imresize(gray.astype(np.float64), 3.0), 0, 1), atol=1e-5)
    with pytest.raises(ValueError, match="restore mode needs a scale-1 model"):
        srlab.upscale(gray, 3, _tiny(3), mode="restore")


def test_restore_mode_cli_with_checkpoint(tmp_path):
    torch.manual_seed(0)
    ck = save_model(create_model("srcnn_ref", 1), tmp_path / "restorer")
    Image.fromarray(_rgb()).save(tmp_path / "a.png")
    assert _cli("upscale", tmp_path / "a.png", "--weights", ck, "--scale", 3, "--mode", "restore", "--out", tmp_path / "out") == 0
    with Image.open(tmp_path / "out" / "a_restorer_x3.png") as out:
        assert out.size == (48, 36)


# -- naming, formats, no overwrite ---------------------------------------------------


def test_output_naming_and_formats(tmp_path, ckpt):
    Image.fromarray(_rgb()).save(tmp_path / "cat.photo.png")
    Image.fromarray(_rgb(seed=1)).save(tmp_path / "dog.jpg")
    out = tmp_path / "out"
    assert _cli("upscale", tmp_path / "cat.photo.png", tmp_path / "dog.jpg", "--weights", ckpt, "--scale", 2, "--out", out) == 0
    assert sorted(p.name for p in out.iterdir()) == ["cat.photo_tiny_x2.png", "dog_tiny_x2.jpg"]
    assert _cli("upscale", tmp_path / "dog.jpg", "--weights", ckpt, "--scale", 2, "--out", out, "--format", "webp") == 0
    with Image.open(out / "dog_tiny_x2.webp") as img:
        assert img.format == "WEBP" and img.size == (32, 24)


def test_existing_output_is_not_overwritten(tmp_path, ckpt, capsys):
    Image.fromarray(_rgb()).save(tmp_path / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_tiny_x2.png").write_bytes(b"keep me")
    assert main(["upscale", str(tmp_path / "a.png"), "--weights", str(ckpt), "--scale", "2", "--out", str(out)]) == 0
    assert (out / "a_tiny_x2.png").read_bytes() == b"keep me"
    assert "exists (use --overwrite" in capsys.readouterr().err
    assert _cli("upscale", tmp_path / "a.png", "--weights", ckpt, "--scale", 2, "--out", out, "--overwrite") == 0
    with Image.open(out / "a_tiny_x2.png") as img:
        assert img.size == (32, 24)


def test_input_is_never_overwritten(tmp_path, ckpt, capsys):
    """Upscaling a folder into itself, where an input already has an output's name."""
    Image.fromarray(_rgb()).save(tmp_path / "a.png")
    Image.fromarray(_rgb(seed=1)).save(tmp_path / "a_tiny_x2.png")
    before = (tmp_path / "a_tiny_x2.png").read_bytes()
    rc = main(["upscale", str(tmp_path / "a.png"), str(tmp_path / "a_tiny_x2.png"), "--weights", str(ckpt), "--scale", "2", "--out", str(tmp_path), "--overwrite"])
    assert rc == 1
    assert (tmp_path / "a_tiny_x2.png").read_bytes() == before
    assert "would overwrite an input" in capsys.readouterr().err
    assert (tmp_path / "a_tiny_x2_tiny_x2.png").is_file()  # the other input was still done


def test_folders_recursive_and_globs(tmp_path, ckpt):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    Image.fromarray(_rgb()).save(tmp_path / "in" / "x.png")
    Image.fromarray(_rgb(seed=1)).save(tmp_path / "in" / "sub" / "x.png")
    found, problems = collect_inputs([tmp_path / "in"], recursive=True)
    assert problems == [] and len(found) == 2
    out = tmp_path / "out"
    assert _cli("upscale", tmp_path / "in", "--recursive", "--weights", ckpt, "--scale", 2, "--out", out) == 0
    assert (out / "x_tiny_x2.png").is_file() and (out / "sub" / "x_tiny_x2.png").is_file()
    assert _cli("upscale", str(tmp_path / "in" / "*.png"), "--weights", ckpt, "--scale", 2, "--out", tmp_path / "g") == 0
    assert [p.name for p in (tmp_path / "g").iterdir()] == ["x_tiny_x2.png"]
    assert _cli("upscale", str(tmp_path / "nothing*.png"), "--weights", ckpt, "--scale", 2, "--out", tmp_path / "g") == 1


def test_output_path_rule():
    assert output_path(Path("/a/b/img.tiff"), Path("o"), Path("."), "fsrcnn", 3, None) == Path("o/img_fsrcnn_x3.png")
    assert output_path(Path("img.JPG"), Path("o"), Path("s"), "m", 2, None) == Path("o/s/img_m_x2.jpg")
    assert output_path(Path("img.png"), Path("o"), Path("."), "m", 4, "webp") == Path("o/img_m_x4.webp")


def test_jpeg_output_refuses_alpha(tmp_path, ckpt, capsys):
    Image.fromarray(np.dstack([_rgb(), np.full((12, 16), 200, np.uint8)]), "RGBA").save(tmp_path / "t.png")
    assert main(["upscale", str(tmp_path / "t.png"), "--weights", str(ckpt), "--scale", "2", "--out", str(tmp_path / "o"), "--format", "jpg"]) == 1
    assert "alpha channel" in capsys.readouterr().err
    assert not (tmp_path / "o" / "t_tiny_x2.jpg").exists()


# -- bad inputs: each its own test -------------------------------------------------


def _run_with_bad(tmp_path, ckpt, capsys, bad: Path, reason: str, extra=()) -> None:
    """One good and one bad image: exit 1, a line naming the bad file, the good one done, nothing else left."""
    Image.fromarray(_rgb()).save(tmp_path / "good.png")
    out = tmp_path / "out"
    rc = main(["upscale", str(tmp_path / "good.png"), str(bad), "--weights", str(ckpt), "--scale", "2", "--out", str(out), *extra])
    err = capsys.readouterr().err
    assert rc == 1
    lines = [line for line in err.splitlines() if str(bad) in line]
    assert len(lines) == 1 and reason in lines[0], err
    assert (out / "good_tiny_x2.png").is_file()
    assert sorted(p.name for p in out.iterdir()) == ["good_tiny_x2.png"]  # no partial or temporary file
    assert _leftovers(out) == []


def test_bad_zero_byte_file(tmp_path, ckpt, capsys):
    bad = tmp_path / "empty.png"
    bad.write_bytes(b"")
    _run_with_bad(tmp_path, ckpt, capsys, bad, "empty file")


def test_bad_truncated_image(tmp_path, ckpt, capsys):
    Image.fromarray(_rgb(64, 64)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    bad = tmp_path / "cut.png"
    bad.write_bytes(data[: len(data) // 2])
    _run_with_bad(tmp_path, ckpt, capsys, bad, "corrupt or truncated")


def test_bad_not_an_image(tmp_path, ckpt, capsys):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not a picture\n" * 10)
    _run_with_bad(tmp_path, ckpt, capsys, bad, "not an image")


def test_bad_too_many_pixels(tmp_path, ckpt, capsys):
    bad = tmp_path / "huge.png"
    Image.fromarray(_rgb(40, 40)).save(bad)
    _run_with_bad(tmp_path, ckpt, capsys, bad, "over the limit", extra=["--max-pixels", "1000"])


def test_bad_unreadable_broken_link(tmp_path, ckpt, capsys):
    bad = tmp_path / "gone.png"
    bad.symlink_to(tmp_path / "deleted-target.png")
    _run_with_bad(tmp_path, ckpt, capsys, bad, "cannot read")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_bad_unreadable_permissions(tmp_path, ckpt, capsys):
    bad = tmp_path / "secret.png"
    Image.fromarray(_rgb()).save(bad)
    bad.chmod(0)
    try:
        _run_with_bad(tmp_path, ckpt, capsys, bad, "permission denied")
    finally:
        bad.chmod(0o644)


def test_bad_missing_file(tmp_path, ckpt, capsys):
    _run_with_bad(tmp_path, ckpt, capsys, tmp_path / "never-there.png", "no such file")


def test_summary_line(tmp_path, ckpt, capsys):
    Image.fromarray(_rgb()).save(tmp_path / "a.png")
    assert main(["upscale", str(tmp_path / "a.png"), "--weights", str(ckpt), "--scale", "2", "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert "upscaled 1, failed 0, skipped 0" in err and "MP/s" in err


def test_big_image_tiles_in_bounded_pieces(monkeypatch):
    """Each network call sees at most (tile + 2 margin)^2 pixels, whatever the image size."""
    model = _tiny()
    seen = []
    upscaler = Upscaler(model, 2, tile=16)
    margin = upscaler.margin(3)
    real_run = up_module.run
    monkeypatch.setattr(up_module, "run", lambda m, x: seen.append(tuple(x.shape[-2:])) or real_run(m, x))
    out = upscaler.pixels(_rgb(70, 90))
    assert out.shape == (140, 180, 3)
    assert len(seen) == 5 * 6 and max(max(s) for s in seen) <= 16 + 2 * margin


@pytest.mark.parametrize("orientation", range(1, 9))
def test_16bit_orientation_matches_pillow(orientation):
    """The OpenCV path for 16-bit colour PNGs rotates exactly as Pillow's exif_transpose."""
    arr = _rgb(5, 7)
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, format="PNG", exif=exif.tobytes())
    expected = np.asarray(ImageOps.exif_transpose(Image.open(buf)))
    np.testing.assert_array_equal(up_module._orient(arr, orientation), expected)


def test_16bit_rgb_png_with_rotation_and_metadata(tmp_path):
    pytest.importorskip("cv2", reason="16-bit colour PNGs need OpenCV (srlab[opencv])")
    rgb16 = (np.random.default_rng(9).random((6, 10, 3)) * 65535).astype(np.uint16)
    exif = Image.new("RGB", (1, 1)).getexif()
    exif[0x0112] = 6
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    (tmp_path / "r.png").write_bytes(up_module._png16_bytes(rgb16, {"exif": exif.tobytes(), "icc_profile": icc, "dpi": (100, 100)}))
    arr, img = up_module.read_image(tmp_path / "r.png")
    assert arr.dtype == np.uint16
    np.testing.assert_array_equal(arr, np.rot90(rgb16, -1))
    assert img.info.get("icc_profile") == icc and img.info["dpi"] == pytest.approx((100, 100), abs=0.1)


def test_outputs_get_ordinary_permissions(tmp_path, ckpt):
    """Outputs are written through a private temporary file; the result must not stay private."""
    Image.fromarray(_rgb()).save(tmp_path / "a.png")
    old = os.umask(0o022)
    try:
        assert _cli("upscale", tmp_path / "a.png", "--weights", ckpt, "--scale", 2, "--out", tmp_path / "o") == 0
    finally:
        os.umask(old)
    assert (tmp_path / "o" / "a_tiny_x2.png").stat().st_mode & 0o777 == 0o644


# -- bfloat16 ------------------------------------------------------------------------


def test_bf16_upscaler_tiles_like_float32_and_stays_close(bf16_cpu):
    """bf16 keeps the float32 receptive margin (its kernels smear a NaN probe wider, a finite
    input does not reach further), tiles agree with the whole image, and the colour result
    is within a few levels of float32."""
    model = _tiny()
    exact = Upscaler(model, 2, tile=16)
    bf16 = Upscaler(model, 2, tile=16, precision="bf16")
    assert bf16.margin(3) == exact.margin(3)
    rgb = _rgb(50, 60)
    tiled, whole = bf16.pixels(rgb), Upscaler(model, 2, tile=0, precision="bf16").pixels(rgb)
    assert np.abs(tiled.astype(int) - whole.astype(int)).max() <= 1
    diff = np.abs(tiled.astype(int) - exact.pixels(rgb).astype(int))
    assert 0 < diff.max() <= 4 and diff.mean() < 0.5


def test_bf16_cli_names_outputs_like_fp32_and_eval_labels_it(tmp_path, ckpt, capsys, bf16_cpu):
    Image.fromarray(_rgb()).save(tmp_path / "a.png")
    assert _cli("upscale", tmp_path / "a.png", "--weights", ckpt, "--scale", 2, "--out", tmp_path / "o", "--precision", "bf16") == 0
    assert (tmp_path / "o" / "a_tiny_x2.png").exists()
    capsys.readouterr()
    assert _cli("eval", "--weights", ckpt, "--model", "fsrcnn", "--scale", 2, "--precision", "bf16") == 0
    assert " tiny@bf16 " in capsys.readouterr().out
    assert _cli("eval", "--model", "bicubic", "--scale", 2, "--precision", "bf16") == 0
    assert " bicubic " in capsys.readouterr().out  # no weights, nothing changes, no label


def test_bf16_on_a_cpu_without_it_is_one_error_line(tmp_path, ckpt, capsys, monkeypatch):
    import srlab.inference

    Image.fromarray(_rgb()).save(tmp_path / "a.png")
    monkeypatch.setattr(srlab.inference, "native_bf16", lambda: False)
    assert _cli("upscale", tmp_path / "a.png", "--weights", ckpt, "--scale", 2, "--out", tmp_path / "o", "--precision", "bf16") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "this one has none: use fp32" in err[0]
    assert not (tmp_path / "o").exists()  # refused before the output folder is made
