"""A generated corpus of broken, hostile and unusual images through `srlab upscale`, `srlab eval`, `srlab features`.

Each file gets either a correct result or one line naming the file and the
reason; the exit status says whether anything failed; no partial output file
is left; the rest of the batch completes. The corpus is made by tests/corpus.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

import srlab
from srlab.checkpoint import save_model
from srlab.cli import main
from srlab.imageio import read_y
from srlab.models import create_model

sys.path.insert(0, str(Path(__file__).parent))
from corpus import Case, make_corpus  # noqa: E402

SCALE = 2
IS_ROOT = os.name == "posix" and os.geteuid() == 0




@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """A small x2 FSRCNN whose output is mid-gray plus structure (a fresh one outputs ~0)."""
    torch.manual_seed(0)
    model = create_model("fsrcnn_s", SCALE)
    with torch.no_grad():
        model.deconvolution.weight.normal_(0.0, 0.05)
        model.deconvolution.bias.fill_(0.5)
    return save_model(model, tmp_path_factory.mktemp("ckpt") / "tiny")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, list[Case]]:
    folder = tmp_path_factory.mktemp("corpus")
    # As root the no-permission file would be readable and prove nothing; it has its own test.
    return folder, make_corpus(folder, unreadable=False)


def _shown(path) -> str:
    """How a path appears in srlab's messages (undecodable bytes as backslash escapes)."""
    return str(path).encode("utf-8", "backslashreplace").decode("utf-8")


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _leftovers(folder: Path) -> list[str]:
    """Temporary or hidden files: what an interrupted or failed atomic write would leave."""
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith(".") or ".tmp" in p.name)


def _reference(path: Path) -> Image.Image:
    """The upright first frame, decoded with plain Pillow: what srlab should have read."""
    with Image.open(path) as img:
        img.seek(0)
        img.load()
        return ImageOps.exif_transpose(img)


def _files(cases: list[Case]) -> list[Case]:
    return [c for c in cases if not c.path.is_dir()]


# -- srlab upscale ------------------------------------------------------------------------


def test_upscale_batch_over_the_corpus(corpus, ckpt, tmp_path, capsys):
    folder, cases = corpus
    out = tmp_path / "out"
    capsys.readouterr()
    rc = main(["--quiet", "upscale", str(folder), "--weights", str(ckpt), "--scale", str(SCALE), "--out", str(out)])
    err = _lines(capsys.readouterr().err)
    assert rc == 1  # something failed, and the exit status says so
    bad = [c for c in _files(cases) if not c.ok]
    assert len(err) == len(bad), err  # one line per bad file, nothing else in --quiet
    model = srlab.load_model(ckpt)
    for case in _files(cases):
        stem = Path(case.path).stem
        outputs = [p for p in out.iterdir() if p.name.startswith(f"{stem}_tiny_x{SCALE}")] if out.exists() else []
        mine = [line for line in err if _shown(case.path) in line]
        if not case.ok:
            assert len(mine) == 1 and re.search(case.reason, mine[0]), (case.name, err)
            assert outputs == [], case.name  # no partial output
            continue
        assert mine == [], (case.name, mine)
        assert len(outputs) == 1, case.name
        with Image.open(outputs[0]) as got:
            w, h = case.size
            assert got.size == (SCALE * w, SCALE * h), case.name
            expected = srlab.upscale(_reference(case.path), SCALE, model)
            assert got.mode == expected.mode, case.name  # gray, alpha and 16 bits kept
            diff = np.abs(np.asarray(got, dtype=np.float64) - np.asarray(expected, dtype=np.float64))
            lossy = outputs[0].suffix == ".jpg"
            assert diff.mean() < (3.0 if lossy else 1e-9), (case.name, diff.mean())
    assert _leftovers(out) == []


def test_upscale_keeps_16_bits_alpha_and_the_first_gif_frame(corpus, ckpt, tmp_path):
    folder, cases = corpus
    out = tmp_path / "out"
    assert main(["--quiet", "upscale", str(folder / "gray16.png"), str(folder / "gray_alpha.png"), str(folder / "palette_transparent.png"),
                 str(folder / "animated.gif"), "--weights", str(ckpt), "--scale", str(SCALE), "--out", str(out)]) == 0
    with Image.open(out / "gray16_tiny_x2.png") as img:
        assert img.mode.startswith("I") and np.asarray(img).max() > 255
    with Image.open(out / "gray_alpha_tiny_x2.png") as img:
        assert img.mode == "LA"
    with Image.open(out / "palette_transparent_tiny_x2.png") as img:
        assert img.mode == "RGBA" and np.asarray(img)[..., 3].min() == 0  # the transparent colour stays transparent
    # The GIF's frames differ; the output is the first one's (bicubic back down ~ frame 0).
    with Image.open(folder / "animated.gif") as gif:
        frames = []
        for k in range(gif.n_frames):
            gif.seek(k)
            frames.append(np.asarray(gif.convert("RGB"), dtype=np.float64))
    with Image.open(out / "animated_tiny_x2.png") as img:
        down = np.asarray(img.convert("RGB").resize((img.size[0] // SCALE, img.size[1] // SCALE), Image.BICUBIC), dtype=np.float64)
    errors = [np.abs(down - f).mean() for f in frames]
    assert np.argmin(errors) == 0, errors


def test_upscale_directory_named_like_an_image(corpus, ckpt, tmp_path, capsys):
    """Given by name it is one clear line; inside a scanned folder it is a sub-folder and skipped."""
    folder, _ = corpus
    capsys.readouterr()
    rc = main(["--quiet", "upscale", str(folder / "folder.png"), "--weights", str(ckpt), "--scale", "2", "--out", str(tmp_path / "o")])
    err = _lines(capsys.readouterr().err)
    assert rc == 1 and len(err) == 1 and "folder.png" in err[0] and "no images" in err[0], err


def test_non_utf8_name_in_a_strict_utf8_terminal(corpus, ckpt, tmp_path):
    """PYTHONIOENCODING=utf-8 makes stdout refuse undecodable names; the batch must not stop there."""
    folder, cases = corpus
    odd = [c for c in cases if c.name == "non-UTF-8 file name"]
    if not odd:
        pytest.skip("this filesystem refuses non-UTF-8 file names")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.run(
        [sys.executable, "-m", "srlab", "upscale", os.fsencode(odd[0].path), str(folder / "cmyk.jpg"), "--weights", str(ckpt), "--scale", "2", "--out", str(out)],
        capture_output=True, env=env, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    names = sorted(os.listdir(os.fsencode(out)))
    assert names == sorted([b"caf\xe9-\xff_tiny_x2.png", b"cmyk_tiny_x2.jpg"])
    assert b"caf\\udce9-\\udcff.png" in proc.stdout  # shown with escapes, not crashed on


def test_upscale_write_failure_leaves_nothing_and_batch_goes_on(corpus, ckpt, tmp_path, capsys, monkeypatch):
    """A save that dies half-way (disk full) leaves no file, no temporary, and the next image is done."""
    folder, _ = corpus
    real_save = Image.Image.save

    def dying_save(self, fp, *args, **kwargs):
        if "cmyk" in str(fp):
            Path(fp).write_bytes(b"\x89PNG half a file")
            raise OSError(28, "No space left on device")
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", dying_save)
    out = tmp_path / "out"
    capsys.readouterr()
    rc = main(["--quiet", "upscale", str(folder / "cmyk.jpg"), str(folder / "one_row.png"), "--weights", str(ckpt), "--scale", "2", "--out", str(out)])
    err = _lines(capsys.readouterr().err)
    assert rc == 1 and len(err) == 1 and "cmyk.jpg" in err[0] and "No space left" in err[0], err
    assert sorted(p.name for p in out.iterdir()) == ["one_row_tiny_x2.png"]
    assert _leftovers(out) == []


# -- srlab eval ---------------------------------------------------------------------------


def test_eval_over_the_corpus(corpus, ckpt, tmp_path, capsys):
    """Bad files and images too small for the protocol are one line each; the rest is scored."""
    folder, cases = corpus
    report = tmp_path / "scores.json"
    capsys.readouterr()
    rc = main(["--quiet", "eval", "--model", str(ckpt), "--scale", str(SCALE), "--data", str(folder), "--json", str(report)])
    captured = capsys.readouterr()
    err = _lines(captured.err)
    assert rc == 1
    smallest = 11 + 2 * SCALE  # SSIM window after shaving
    scored = [c for c in _files(cases) if c.ok and min(c.size) >= smallest]
    refused = [c for c in _files(cases) if c not in scored]
    assert len(err) == len(refused), err
    for case in refused:
        mine = [line for line in err if _shown(case.path) in line]
        reason = case.reason if not case.ok else r"too small for the x2 protocol \(needs at least 15x15"
        assert len(mine) == 1 and re.search(reason, mine[0]), (case.name, err)
    result = json.loads(report.read_text())[0]
    assert sorted(s["name"] for s in result["per_image"]) == sorted(Path(c.path).stem for c in scored)
    assert sorted(result["failed"]) == sorted(str(c.path) for c in refused)
    # Each score is the protocol's score of the image as Pillow decodes it (first frame, upright, 16 -> 8 bits).
    model = srlab.load_model(ckpt)
    from srlab.protocol import score_image

    for entry in result["per_image"]:
        case = next(c for c in scored if Path(c.path).stem == entry["name"])
        p, s = score_image(lambda lr: model(lr.float()), read_y(case.path), SCALE)
        assert entry["psnr"] == pytest.approx(p, abs=1e-9) and entry["ssim"] == pytest.approx(s, abs=1e-12)
        assert 0 < entry["psnr"] < 100 and -1 <= entry["ssim"] <= 1
    assert result["mean_psnr"] == pytest.approx(np.mean([e["psnr"] for e in result["per_image"]]))
    assert _leftovers(tmp_path) == []


def test_eval_folder_of_only_bad_files_fails(tmp_path, capsys):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"")
    (folder / "b.png").write_text("text")
    capsys.readouterr()
    assert main(["--quiet", "eval", "--scale", "2", "--data", str(folder)]) == 1
    assert len(_lines(capsys.readouterr().err)) == 2


# -- srlab features -----------------------------------------------------------------------


def test_features_over_the_corpus(corpus, ckpt, tmp_path, capsys):
    """One image per call: a report whose input is the image as eval reads it, or one line and no folder."""
    _, cases = corpus
    for i, case in enumerate(cases):
        out = tmp_path / f"f{i}"
        capsys.readouterr()
        argv = ["--quiet", "features", str(case.path), "--weights", str(ckpt), "--scale", str(SCALE), "--out", str(out), "--max-side", "16", "--npz"]
        if case.ok and min(case.size) < 2:
            argv += ["--layers", "deconvolution"]  # fewer figures: the check is the input
        rc = main(argv)
        captured = capsys.readouterr()
        if not case.ok:
            err = _lines(captured.err)
            assert rc == 1 and len(err) == 1, (case.name, err)
            assert err[0].startswith("srlab features: error: ") and _shown(case.path) in err[0] and re.search(case.reason, err[0]), err
            assert not out.exists(), case.name  # nothing written
            continue
        assert rc == 0, (case.name, captured.err)
        w, h = case.size
        stats = json.loads((out / "stats.json").read_text())
        assert stats["input_shape"] == [1, 1, h, w], case.name
        with np.load(out / "activations.npz") as npz:
            assert np.allclose(npz["_input"][0, 0] * 255.0, read_y(case.path), atol=1e-3), case.name
        assert (out / "index.html").read_text(encoding="utf-8").count("<figure>") >= 2
        assert _leftovers(out) == []


# -- the pixel limit ------------------------------------------------------------------------


def test_decompression_bomb_is_refused_fast(corpus, ckpt, tmp_path, capsys):
    """The 400-megapixel bomb is refused from its header: no decode, whatever the command."""
    import resource
    import time

    folder, _ = corpus
    bomb = folder / "bomb.png"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    for argv in (["upscale", str(bomb), "--weights", str(ckpt), "--scale", "2", "--out", str(tmp_path / "u")],
                 ["features", str(bomb), "--weights", str(ckpt), "--scale", "2", "--out", str(tmp_path / "f")]):
        capsys.readouterr()
        assert main(["--quiet", *argv]) == 1
        err = _lines(capsys.readouterr().err)
        assert len(err) == 1 and "20000x20000 = 400,000,000 pixels is over the limit of 100,000,000" in err[0], err
    assert time.perf_counter() - start < 10
    # Decoding it would take 400 MB; the peak RSS of this process barely moves.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB


@pytest.mark.parametrize("command", ["upscale", "eval", "features"])
def test_max_pixels_flag_sets_the_limit(command, ckpt, tmp_path, capsys, monkeypatch):
    """--max-pixels is the limit both ways: lower refuses, higher accepts, even above Pillow's own guard."""
    # Pillow's guard at 1000 pixels: without srlab setting it, this 50x50 image would be a "bomb" to Pillow.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (50, 50, 3), dtype=np.uint8)).save(folder / "pic.png")

    def run(limit: int) -> tuple[int, list[str]]:
        capsys.readouterr()
        base = {
            "upscale": ["upscale", str(folder / "pic.png"), "--weights", str(ckpt), "--scale", "2", "--out", str(tmp_path / f"u{limit}")],
            "eval": ["eval", "--model", str(ckpt), "--scale", "2", "--data", str(folder)],
            # --list: reads the image, writes no figures (matplotlib's own PNGs would trip the patched guard).
            "features": ["features", str(folder / "pic.png"), "--weights", str(ckpt), "--scale", "2", "--list"],
        }[command]
        rc = main(["--quiet", *base, "--max-pixels", str(limit)])
        return rc, _lines(capsys.readouterr().err)

    rc, err = run(2000)
    assert rc == 1 and any("50x50 = 2,500 pixels is over the limit of 2,000 (raise it with --max-pixels" in e for e in err), err
    rc, err = run(3000)
    assert rc == 0 and err == [], err
    assert Image.MAX_IMAGE_PIXELS == 1000  # srlab put Pillow's setting back


# -- permissions ----------------------------------------------------------------------------


@pytest.mark.skipif(IS_ROOT, reason="running as root: root reads files whatever their permissions, so chmod 0 proves nothing")
def test_unreadable_file_is_one_line_and_the_rest_goes_on(ckpt, tmp_path, capsys):
    folder = tmp_path / "imgs"
    cases = make_corpus(folder, unreadable=True)
    locked = next(c for c in cases if c.name == "file without read permission")
    try:
        for argv in (["upscale", str(locked.path), str(folder / "cmyk.jpg"), "--weights", str(ckpt), "--scale", "2", "--out", str(tmp_path / "u")],
                     ["features", str(locked.path), "--weights", str(ckpt), "--scale", "2", "--out", str(tmp_path / "f")]):
            capsys.readouterr()
            assert main(["--quiet", *argv]) == 1
            err = _lines(capsys.readouterr().err)
            assert len(err) == 1 and "no_permission.png" in err[0] and re.search(locked.reason, err[0]), err
        assert (tmp_path / "u" / "cmyk_tiny_x2.jpg").exists()
    finally:
        os.chmod(locked.path, 0o644)
