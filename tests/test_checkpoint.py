"""Checkpoints are data: safetensors + JSON, strict, atomic, never a pickle."""

from __future__ import annotations

import json

import pytest
import torch

from srlab.checkpoint import (
    COLOR_CONVENTION,
    CheckpointError,
    load_model,
    load_train_state,
    read_sidecar,
    save_model,
    save_train_state,
)
from srlab.imageio import atomic_write
from srlab.models import create_model




def _tiny():
    torch.manual_seed(0)
    return create_model("fsrcnn", 2, d=8, s=4, m=1)


def test_sidecar_describes_the_model(tmp_path):
    model = _tiny()
    save_model(model, tmp_path / "ckpt", iteration=12, metrics={"val_psnr": 31.5}, config={"lr": 0.001})
    meta = read_sidecar(tmp_path / "ckpt.safetensors")
    assert meta["arch"] == "FSRCNN" and meta["name"] == "fsrcnn"
    assert meta["args"] == {"scale": 2, "channels": 1, "d": 8, "s": 4, "m": 1}
    assert meta["color"] == COLOR_CONVENTION and meta["iteration"] == 12 and meta["config"] == {"lr": 0.001}
    assert meta["tensors"]["deconvolution.weight"] == [8, 1, 9, 9]
    # Any of the three spellings of the path work.
    for spelling in ("ckpt", "ckpt.json", "ckpt.safetensors"):
        assert load_model(tmp_path / spelling).hparams == model.hparams


def test_weights_alone_rebuild_from_the_embedded_description(tmp_path):
    model = _tiny()
    save_model(model, tmp_path / "ckpt", iteration=3)
    (tmp_path / "ckpt.json").unlink()
    loaded = load_model(tmp_path / "ckpt.safetensors")
    x = torch.rand(1, 1, 6, 6)
    assert torch.equal(loaded(x), model.eval()(x))


def test_a_pickle_is_refused_not_loaded(tmp_path):
    path = tmp_path / "evil.safetensors"
    torch.save(_tiny().state_dict(), path)  # a zip pickle under a safetensors name
    with pytest.raises(CheckpointError, match="pickle"):
        load_model(path)


def test_truncated_file_is_a_clear_error(tmp_path):
    save_model(_tiny(), tmp_path / "ckpt")
    weights = tmp_path / "ckpt.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=r"ckpt\.safetensors"):
        load_model(weights)


def test_sidecar_from_another_write_is_detected(tmp_path):
    save_model(_tiny(), tmp_path / "ckpt", iteration=10)
    meta = json.loads((tmp_path / "ckpt.json").read_text())
    meta["iteration"] = 20
    (tmp_path / "ckpt.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="iteration 20 but ckpt.safetensors holds 10"):
        load_model(tmp_path / "ckpt")


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such weights file"):
        load_model(tmp_path / "nothing.safetensors")


def test_atomic_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")

    def failing(tmp):
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, failing)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_train_state_round_trip_restores_optimizer_moments(tmp_path):
    model = _tiny()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(2):
        opt.zero_grad()
        model(torch.rand(2, 1, 5, 5)).pow(2).mean().backward()
        opt.step()
    rng = torch.Generator().manual_seed(5).get_state()
    save_train_state(tmp_path / "last", model, opt, {"sampler.generator": rng}, {"iteration": 2, "best_psnr": 30.0})

    model2 = create_model("fsrcnn", 2, d=8, s=4, m=1)
    opt2 = torch.optim.Adam(model2.parameters(), lr=1e-3)
    extra, info = load_train_state(tmp_path / "last", model2, opt2)
    assert info["iteration"] == 2 and info["best_psnr"] == 30.0
    assert torch.equal(extra["sampler.generator"], rng)
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.equal(a, b)
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert s1.keys() == s2.keys()
    for k in s1:
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(torch.as_tensor(s1[k][name]), torch.as_tensor(s2[k][name]))
    # The next step is the same in both.
    x = torch.rand(2, 1, 5, 5)
    for m, o in ((model, opt), (model2, opt2)):
        o.zero_grad()
        m(x).pow(2).mean().backward()
        o.step()
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.equal(a, b)


def test_train_state_of_another_model_is_refused(tmp_path):
    model = _tiny()
    opt = torch.optim.Adam(model.parameters())
    save_train_state(tmp_path / "last", model, opt, {}, {"iteration": 0})
    other = create_model("espcn", 2)
    with pytest.raises(CheckpointError, match="does not fit this model"):
        load_train_state(tmp_path / "last", other, torch.optim.Adam(other.parameters()))
