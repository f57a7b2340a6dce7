"""Training data: patch pairs, the reference crops, data-root lookup, bad files, `srlab data fetch`."""

from __future__ import annotations

import hashlib
import io
import logging
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from srlab.cli import main
from srlab.data import CenterCropSampler, PatchSampler, data_root, load_y_images, resolve_data_path
from srlab.data.patches import detail, dihedral_grids
from srlab.imresize import imresize
from srlab.imageio import list_images



@pytest.fixture(autouse=True)
def _generator(gen_image, one_thread):
    global smooth_image
    smooth_image = gen_image
    yield


def _gray(h, w, seed=0):
    return smooth_image(h, w, seed, rgb=False)


def _locate(haystack: torch.Tensor, needle: torch.Tensor) -> list[tuple[int, int]]:
    """All (y, x) where ``needle`` (p, p) occurs exactly in ``haystack`` (H, W)."""
    p = needle.shape[-1]
    windows = haystack.unfold(0, p, 1).unfold(1, p, 1)  # (H-p+1, W-p+1, p, p)
    hits = (windows == needle).all(-1).all(-1).nonzero()
    return [tuple(h.tolist()) for h in hits]


def _transforms(x: torch.Tensor) -> list[torch.Tensor]:
    return [torch.rot90(x, k, (0, 1)) for k in range(4)] + [torch.rot90(x.flip(1), k, (0, 1)) for k in range(4)]


def test_dihedral_grids_are_the_8_flips_and_rotations():
    patch = torch.arange(16.0).view(4, 4)
    rows, cols = dihedral_grids(4)
    got = {tuple(patch[rows[t], cols[t]].flatten().tolist()) for t in range(8)}
    expected = {tuple(t.flatten().tolist()) for t in _transforms(patch)}
    assert got == expected and len(got) == 8


def test_patches_pair_an_hr_crop_with_its_matlab_bicubic_lr_crop():
    img = _gray(60, 45)
    s, p = 3, 5
    sampler = PatchSampler([img], scale=s, lr_patch=p, augment=False, seed=1)
    lr, hr = sampler.sample(16)
    assert lr.shape == (16, 1, p, p) and hr.shape == (16, 1, s * p, s * p)
    hr_full = torch.from_numpy(img[: 60 - 60 % s, : 45 - 45 % s].astype(np.float32) / 255)
    lr_full = imresize(hr_full.double(), 1 / s).float()
    for i in range(16):
        (y, x), *_ = _locate(hr_full, hr[i, 0])
        assert y % s == 0 and x % s == 0, "HR patches start on the LR grid"
        torch.testing.assert_close(lr[i, 0], lr_full[y // s : y // s + p, x // s : x // s + p])


def test_augmented_patches_apply_the_same_transform_to_lr_and_hr():
    img = _gray(48, 48, seed=2)
    s, p = 2, 4
    sampler = PatchSampler([img], scale=s, lr_patch=p, augment=True, seed=3)
    lr, hr = sampler.sample(24)
    hr_full = torch.from_numpy(img.astype(np.float32) / 255)
    lr_full = imresize(hr_full.double(), 1 / s).float()
    variants_seen = set()
    for i in range(24):
        matched = False
        for t, (hr_t, lr_t) in enumerate(zip(_transforms(hr[i, 0]), _transforms(lr[i, 0]))):
            for y, x in _locate(hr_full, hr_t):
                if y % s == 0 and x % s == 0 and torch.equal(lr_full[y // s : y // s + p, x // s : x // s + p], lr_t):
                    matched = True
                    variants_seen.add(t)
        assert matched, f"sample {i}: LR and HR are not the same crop under one flip/rotation"
    assert len(variants_seen) > 3  # the 8 variants are actually drawn


def test_sampler_is_reproducible_and_its_state_resumes_exactly():
    imgs = [_gray(40, 40, seed=i) for i in range(3)]
    a = PatchSampler(imgs, 2, 6, seed=7)
    b = PatchSampler(imgs, 2, 6, seed=7)
    for _ in range(3):
        la, ha = a.sample(8)
        lb, hb = b.sample(8)
        assert torch.equal(la, lb) and torch.equal(ha, hb)
    state = {k: v.clone() for k, v in a.state_dict().items()}
    expected = a.sample(8)
    c = PatchSampler(imgs, 2, 6, seed=123)
    c.load_state_dict(state)
    got = c.sample(8)
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    assert not torch.equal(PatchSampler(imgs, 2, 6, seed=8).sample(8)[0], PatchSampler(imgs, 2, 6, seed=7).sample(8)[0])


def test_scale_augmentation_adds_downscaled_copies_and_small_images_are_an_error():
    imgs = [_gray(40, 40)]
    assert PatchSampler(imgs, 2, 5).num_images == 1
    assert PatchSampler(imgs, 2, 5, scale_augment=[0.8, 0.6]).num_images == 3
    assert PatchSampler(imgs, 2, 8, scale_augment=[0.3]).num_images == 1  # 12 px is too small for 16
    with pytest.raises(ValueError, match="no image is large enough for LR patches of 30 at scale 2"):
        PatchSampler(imgs, 2, 30)
    with pytest.raises(ValueError, match="lr_patch must be >= 1"):
        PatchSampler(imgs, 2, 0)


def test_detail_ranks_texture_above_flat_and_ignores_flips():
    flat = torch.full((6, 6), 0.5)
    ramp = torch.linspace(0, 1, 6).repeat(6, 1)
    noise = torch.rand(6, 6, generator=torch.Generator().manual_seed(0))
    scores = detail(torch.stack([flat, ramp, noise]))
    assert scores[0] == 0 and 0 < scores[1] < scores[2]
    # A horizontal ramp of step 0.2: no vertical difference, 0.04 horizontally, averaged over 6x5 pairs.
    assert scores[1].item() == pytest.approx(0.04)
    assert torch.allclose(detail(torch.stack(_transforms(noise))), scores[2].expand(8))


def test_detail_oversampling_draws_from_the_textured_half_and_keeps_pairs_exact():
    # Left half flat grey, right half noise: uniform sampling sees both, oversampling the detailed.
    rng = np.random.default_rng(0)
    img = np.full((60, 60), 128, np.uint8)
    img[:, 30:] = rng.integers(0, 256, (60, 30))
    s, p = 2, 4
    hr_full = torch.from_numpy(img.astype(np.float32) / 255)
    lr_full = imresize(hr_full.double(), 1 / s).float()

    def right_half_share(sampler):
        lr, hr = sampler.sample(64)
        starts = []
        for i in range(64):
            # A flat HR patch occurs at many places; its LR partner must match at one of them.
            hits = [(y, x) for y, x in _locate(hr_full, hr[i, 0]) if y % s == 0 and x % s == 0
                    and torch.equal(lr[i, 0], lr_full[y // s : y // s + p, x // s : x // s + p])]
            assert hits, f"sample {i}: LR and HR are not the same crop"
            starts.append(hits[-1][1])
        return np.mean(np.array(starts) > 30 - s * p)  # reaches into the noisy half

    uniform = right_half_share(PatchSampler([img], s, p, augment=False, seed=4))
    biased = right_half_share(PatchSampler([img], s, p, augment=False, seed=4, detail_oversample=4))
    assert 0.3 < uniform < 0.8
    assert biased > 0.95
    with pytest.raises(ValueError, match="detail_oversample must be >= 1"):
        PatchSampler([img], s, p, detail_oversample=0.5)


def test_reference_crops_are_down_then_up_scaled_centre_crops():
    imgs = [_gray(50, 60, seed=i) for i in range(3)]
    sampler = CenterCropSampler(imgs, scale=3, crop=40, seed=0)
    side = 40 - 40 % 3  # 39
    inputs, targets = sampler.sample(3)
    assert inputs.shape == targets.shape == (3, 1, side, side)
    # One epoch visits each image once.
    crops = {tuple(t.flatten()[:5].tolist()) for t in targets}
    assert len(crops) == 3
    top, left = (50 - side) // 2, (60 - side) // 2
    expected = torch.from_numpy(imgs[0][top : top + side, left : left + side].astype(np.float64) / 255)
    degraded = imresize(imresize(expected, 1 / 3), 3.0)
    idx = [i for i in range(3) if torch.allclose(targets[i, 0].double(), expected, atol=1e-6)]
    assert len(idx) == 1
    torch.testing.assert_close(inputs[idx[0], 0].double(), degraded, atol=1e-6, rtol=0)
    # Batches larger than the set wrap into the next epoch, still one visit per image per epoch.
    wrap = CenterCropSampler(imgs, scale=3, crop=40, seed=1)
    first, rest = wrap.sample(5)[1], wrap.sample(1)[1]
    assert first.shape[0] == 5 and rest.shape[0] == 1
    key = lambda t: t.flatten()[:8].tolist()  # noqa: E731
    epoch1, epoch2 = [key(t) for t in first[:3]], [key(t) for t in torch.cat([first[3:], rest])]
    assert sorted(epoch1) == sorted(epoch2) and len({tuple(k) for k in epoch1}) == 3
    with pytest.raises(ValueError, match="smaller than the 300x300 crop"):
        CenterCropSampler(imgs, 3)


def test_data_root_from_environment_and_resolution(tmp_path, monkeypatch):
    (tmp_path / "BSDS500" / "train").mkdir(parents=True)
    monkeypatch.setenv("SRLAB_DATA", str(tmp_path))
    assert data_root() == tmp_path
    assert resolve_data_path("BSDS500/train") == tmp_path / "BSDS500" / "train"
    with pytest.raises(FileNotFoundError, match=r"'Set99' not found .*SRLAB_DATA.*srlab data fetch bsds500"):
        resolve_data_path("Set99")


def test_missing_data_without_any_root_names_the_resolved_defaults(tmp_path, monkeypatch):
    # Run from a folder with neither ../shared/data nor ./data: the error must say where the
    # defaults point, since they are relative to the working directory.
    work = tmp_path / "elsewhere"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("SRLAB_DATA", raising=False)
    assert data_root() is None
    with pytest.raises(FileNotFoundError) as info:
        resolve_data_path("Set5")
    message = str(info.value)
    assert "$SRLAB_DATA is unset" in message
    assert str(tmp_path / "shared" / "data") in message and str(work / "data") in message


def test_load_y_images_skips_a_bad_file_with_one_line_naming_it(image_folder, caplog):
    folder = image_folder("train", n=2, size=(20, 24))
    (folder / "bad.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    with caplog.at_level(logging.ERROR):
        images, names = load_y_images(folder)
    assert names == ["img00.png", "img01.png"] and images[0].shape == (20, 24) and images[0].dtype == np.uint8
    lines = [r.getMessage() for r in caplog.records if "bad.jpg" in r.getMessage()]
    assert len(lines) == 1 and "skipped" in lines[0]


def test_list_images_is_sorted_and_errors_say_what_was_expected(tmp_path):
    for name in ("b.png", "a.JPG", "c.txt", "d.bmp"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.png", "d.bmp"]
    with pytest.raises(FileNotFoundError, match="no such folder"):
        list_images(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images found"):
        list_images(tmp_path / "empty")


# --- srlab data fetch ------------------------------------------------------------------


def _jpeg_bytes(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(smooth_image(24, 32, seed)).save(buf, format="JPEG")
    return buf.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def bsds_archive(tmp_path):
    """A small .tgz laid out like BSR_bsds500.tgz, plus hostile members that must be ignored."""
    path = tmp_path / "BSR_bsds500.tgz"
    prefix = "BSR/BSDS500/data/images/"
    with tarfile.open(path, "w:gz") as tar:
        for split, n in (("train", 3), ("val", 2), ("test", 1)):
            for i in range(n):
                _add(tar, f"{prefix}{split}/{100 + i}.jpg", _jpeg_bytes(i))
        _add(tar, f"{prefix}train/Thumbs.db", b"not an image")
        _add(tar, "BSR/BSDS500/data/groundTruth/train/100.mat", b"segmentation")
        _add(tar, f"{prefix}train/../../../../../../escaped.jpg", b"traversal")
        _add(tar, "/tmp/absolute.jpg", b"absolute")
        link = tarfile.TarInfo(f"{prefix}train/link.jpg")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    return path


def test_fetch_from_a_file_url_lays_out_the_splits(bsds_archive, tmp_path, capsys):
    root = tmp_path / "data"
    digest = hashlib.sha256(bsds_archive.read_bytes()).hexdigest()
    code = main(["data", "fetch", "bsds500", "--to", str(root), "--from", bsds_archive.as_uri(), "--sha256", digest])
    assert code == 0
    assert "SRLAB_DATA" in capsys.readouterr().out
    layout = {split: sorted(p.name for p in (root / "BSDS500" / split).iterdir()) for split in ("train", "val", "test")}
    assert layout == {"train": ["100.jpg", "101.jpg", "102.jpg"], "val": ["100.jpg", "101.jpg"], "test": ["100.jpg"]}
    assert (root / "BSDS500" / "train" / "100.jpg").read_bytes() == _jpeg_bytes(0)
    # Nothing hostile was written anywhere, and nothing but BSDS500 under the root.
    assert not list(tmp_path.rglob("escaped.jpg")) and not list(tmp_path.rglob("absolute.jpg"))
    assert not list(tmp_path.rglob("link.jpg"))
    assert [p.name for p in root.iterdir()] == ["BSDS500"]
    # The fetched folder is usable as training data through SRLAB_DATA-style lookup.
    images, names = load_y_images(root / "BSDS500" / "train")
    assert len(images) == 3


def test_fetch_from_a_local_path_works_too(bsds_archive, tmp_path):
    assert main(["data", "fetch", "bsds500", "--to", str(tmp_path / "d"), "--from", str(bsds_archive)]) == 0
    assert len(list((tmp_path / "d" / "BSDS500" / "val").iterdir())) == 2


def test_fetch_with_a_wrong_sha256_is_an_error_and_writes_nothing(bsds_archive, tmp_path, capsys):
    root = tmp_path / "data"
    code = main(["data", "fetch", "bsds500", "--to", str(root), "--from", bsds_archive.as_uri(), "--sha256", "0" * 64])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not match the expected" in err[0] and "0" * 64 in err[0]
    assert not (root / "BSDS500").exists()


def test_fetch_errors_for_non_archives_and_missing_sources(tmp_path, capsys):
    junk = tmp_path / "junk.tgz"
    junk.write_bytes(b"definitely not a tar")
    assert main(["data", "fetch", "bsds500", "--to", str(tmp_path / "d"), "--from", str(junk)]) == 1
    assert "not a tar archive" in capsys.readouterr().err
    assert main(["data", "fetch", "bsds500", "--to", str(tmp_path / "d"), "--from", str(tmp_path / "nope.tgz")]) == 1
    assert "no such archive" in capsys.readouterr().err
    empty = tmp_path / "empty.tgz"
    with tarfile.open(empty, "w:gz") as tar:
        _add(tar, "README", b"hello")
    assert main(["data", "fetch", "bsds500", "--to", str(tmp_path / "d"), "--from", str(empty)]) == 1
    assert "no images under BSR/BSDS500/data/images/" in capsys.readouterr().err
