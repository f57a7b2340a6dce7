"""Hostile and broken weight files: never unpickled, never half-loaded, one clear line.

Every case goes through the library (srlab.load_model) and the three commands
that take a weight file from the user: `srlab eval --model FILE`,
`srlab upscale --weights FILE` and `srlab features --weights FILE`.
"""

from __future__ import annotations

import io
import json
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

import srlab
from srlab.checkpoint import CheckpointError, save_model
from srlab.cli import main
from srlab.models import create_model


class _RunsCode:
    """Unpickling this creates ``marker``: the proof that a loader ran code from a file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def good(tmp_path) -> Path:
    torch.manual_seed(0)
    return save_model(create_model("fsrcnn_s", 2), tmp_path / "good" / "tiny")


@pytest.fixture
def image(tmp_path) -> Path:
    path = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(path)
    return path


def _commands(weights: Path, image: Path, out: Path) -> dict[str, list[str]]:
    return {
        "eval": ["eval", "--model", str(weights), "--scale", "2", "--data", str(image.parent)],
        "upscale": ["upscale", str(image), "--weights", str(weights), "--scale", "2", "--out", str(out / "up")],
        "features": ["features", str(image), "--weights", str(weights), "--scale", "2", "--out", str(out / "feat")],
    }


def _refused_everywhere(weights: Path, image: Path, out: Path, capsys, match: str) -> None:
    """The library raises CheckpointError matching ``match``; each command exits 1 with one line naming the file, writing nothing."""
    with pytest.raises(CheckpointError, match=match):
        srlab.load_model(weights)
    for name, argv in _commands(weights, image, out).items():
        capsys.readouterr()
        assert main(["--quiet", *argv]) == 1, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, (name, err)
        assert err[0].startswith(f"srlab {name}: error: ") and weights.stem in err[0], err[0]
        assert re.search(match, err[0]), err[0]
    assert not (out / "up").exists() and not (out / "feat").exists()


# -- pickles that would run code -------------------------------------------------------


def _raw_pickle(path: Path, marker: Path, protocol: int) -> Path:
    path.write_bytes(pickle.dumps({"weight": _RunsCode(marker)}, protocol=protocol))
    return path


def _torch_save(path: Path, marker: Path) -> Path:
    torch.save({"weight": _RunsCode(marker)}, path)
    return path


PICKLES = {
    "torch.save zip as .pt": lambda d, m: _torch_save(d / "model.pt", m),
    "torch.save zip renamed .safetensors": lambda d, m: _torch_save(d / "model.safetensors", m),
    "pickle protocol 4 as .safetensors": lambda d, m: _raw_pickle(d / "model.safetensors", m, 4),
    "pickle protocol 2 as .pth": lambda d, m: _raw_pickle(d / "model.pth", m, 2),
    "pickle protocol 0 (no magic bytes) as .pth": lambda d, m: _raw_pickle(d / "model.pth", m, 0),
}


def test_the_pickles_really_run_code(tmp_path):
    """Guards the tests below: loading these files the unsafe way does create the marker."""
    for i, make in enumerate(PICKLES.values()):
        marker = tmp_path / f"marker{i}"
        (tmp_path / f"d{i}").mkdir()
        path = make(tmp_path / f"d{i}", marker)
        if path.read_bytes()[:2] == b"PK":
            torch.load(io.BytesIO(path.read_bytes()), weights_only=False)  # bytes: torch picks no loader by suffix
        else:
            pickle.loads(path.read_bytes())
        assert marker.exists()


@pytest.mark.parametrize("kind", list(PICKLES))
def test_pickle_is_refused_and_never_runs(kind, tmp_path, image, capsys):
    marker = tmp_path / "pwned"
    folder = tmp_path / "w"
    folder.mkdir()
    weights = PICKLES[kind](folder, marker)
    _refused_everywhere(weights, image, tmp_path / "out", capsys, r"pickle.*never unpickles")
    assert not marker.exists()


def test_pickle_next_to_a_sidecar_is_still_refused(tmp_path, good, image, capsys):
    """A genuine sidecar does not make a pickled weights file acceptable."""
    marker = tmp_path / "pwned"
    _raw_pickle(good, marker, 4)  # overwrite tiny.safetensors, keep tiny.json
    _refused_everywhere(good, image, tmp_path / "out", capsys, r"pickle")
    assert not marker.exists()


# -- broken safetensors and sidecars ---------------------------------------------------


def _edit_sidecar(weights: Path, **changes) -> None:
    sidecar = weights.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    for key, value in changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    sidecar.write_text(json.dumps(meta))


def test_truncated_safetensors(tmp_path, good, image, capsys):
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 2])
    _refused_everywhere(good, image, tmp_path / "out", capsys, r"corrupt or truncated safetensors")


def test_safetensors_cut_inside_its_header(tmp_path, good, image, capsys):
    good.write_bytes(good.read_bytes()[:20])
    _refused_everywhere(good, image, tmp_path / "out", capsys, r"corrupt or truncated safetensors")


def test_sidecar_with_unknown_architecture(tmp_path, good, image, capsys):
    _edit_sidecar(good, arch="ResNet50")
    _refused_everywhere(good.with_suffix(".safetensors"), image, tmp_path / "out", capsys, r"unknown architecture 'ResNet50'; known: .*FSRCNN")


def test_sidecar_with_another_architecture(tmp_path, good, image, capsys):
    """FSRCNN tensors described as ESPCN: its arguments do not fit, said before anything is built."""
    _edit_sidecar(good, arch="ESPCN")
    _refused_everywhere(good, image, tmp_path / "out", capsys, r"cannot build 'ESPCN'")


def test_sidecar_missing_keys(tmp_path, good, image, capsys):
    _edit_sidecar(good, args=None, arch=None)
    _refused_everywhere(good, image, tmp_path / "out", capsys, r"missing key\(s\) arch, args")


def test_sidecar_not_json(tmp_path, good, image, capsys):
    good.with_suffix(".json").write_text("{'arch': FSRCNN")
    _refused_everywhere(good, image, tmp_path / "out", capsys, r"not valid JSON")


@pytest.mark.parametrize("scale", [-1, 0, "2", True])
def test_sidecar_with_bad_scale(scale, tmp_path, good, image, capsys):
    meta = json.loads(good.with_suffix(".json").read_text())
    _edit_sidecar(good, args={**meta["args"], "scale": scale})
    _refused_everywhere(good, image, tmp_path / "out", capsys, r"'scale' must be a positive integer")


def test_sidecar_asking_for_a_huge_model_allocates_nothing(tmp_path, good, image, capsys):
    """d = s = 200000 would need ~160 GB: the shapes are compared on the meta device first."""
    meta = json.loads(good.with_suffix(".json").read_text())
    _edit_sidecar(good, args={**meta["args"], "d": 200_000, "s": 200_000})
    _refused_everywhere(good, image, tmp_path / "out", capsys, r"wrong shapes: feature_extraction\.0\.weight \(32, 1, 5, 5\) != \(200000, 1, 5, 5\)")


def test_tensor_of_the_wrong_shape(tmp_path, good, image, capsys):
    tensors = load_file(str(good))
    tensors["deconvolution.bias"] = torch.zeros(3)
    save_file(tensors, str(good))
    _refused_everywhere(good, image, tmp_path / "out", capsys, r"wrong shapes: deconvolution\.bias \(3,\) != \(1,\)")


def test_missing_and_unexpected_tensors(tmp_path, good, image, capsys):
    tensors = load_file(str(good))
    del tensors["deconvolution.weight"]
    tensors["extra.weight"] = torch.zeros(1)
    save_file(tensors, str(good))
    _refused_everywhere(good, image, tmp_path / "out", capsys, r"missing tensors: deconvolution\.weight \| unexpected tensors: extra\.weight")


def test_sidecar_from_another_write(tmp_path, good, image, capsys):
    """A sidecar left from an older save (the process died between the two writes) is noticed."""
    _edit_sidecar(good, iteration=5)
    _refused_everywhere(good, image, tmp_path / "out", capsys, r"describes iteration 5")


def test_renamed_safetensors_gets_a_clear_reason(tmp_path, good, image, capsys):
    renamed = tmp_path / "weights.bin2"
    shutil.copy(good, renamed)
    _refused_everywhere(renamed, image, tmp_path / "out", capsys, r"checkpoints are named NAME\.safetensors")


def test_missing_weights_file(tmp_path, image, capsys):
    _refused_everywhere(tmp_path / "nothing.safetensors", image, tmp_path / "out", capsys, r"no such weights file")


def test_good_checkpoint_loads_and_matches(good):
    """The control: the same file, untouched, loads with every tensor equal to what was saved."""
    model = srlab.load_model(good)
    saved = load_file(str(good))
    assert set(saved) == set(model.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[key]), key
