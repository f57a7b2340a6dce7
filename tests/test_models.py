"""Every registered model: shapes, a training step, save/load, strict loading."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import srlab
from srlab.checkpoint import CheckpointError, load_model, save_model
from srlab.imresize import imresize
from srlab.models import FSRCNN, SRCNN, create_model

MODELS = srlab.list_models()




def test_registry_lists_the_papers_networks():
    assert set(MODELS) >= {"srcnn_915", "srcnn_955", "srcnn_ref", "fsrcnn", "fsrcnn_s", "espcn"}
    assert "bicubic" not in MODELS and "bicubic" in srlab.list_models(include_baselines=True)
    assert MODELS == sorted(MODELS)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_output_shape_and_range_of_input(name, scale):
    torch.manual_seed(0)
    model = create_model(name, scale).eval()
    assert model.scale == scale and model.hparams["scale"] == scale
    lr = torch.rand(2, 1, 7, 9)
    with torch.no_grad():
        sr = model(lr)
    assert sr.shape == (2, 1, 7 * scale, 9 * scale)
    assert sr.dtype == torch.float32 and torch.isfinite(sr).all()


@pytest.mark.parametrize("name", MODELS)
def test_a_gradient_step_changes_every_weight(name):
    torch.manual_seed(0)
    model = create_model(name, 3).train()
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    lr = torch.rand(4, 1, 8, 8)
    hr = imresize(lr, 3.0).clamp(0, 1)
    loss = torch.nn.functional.mse_loss(model(lr), hr)
    opt.zero_grad()
    loss.backward()
    opt.step()
    for k, v in model.named_parameters():
        assert not torch.equal(v, before[k]), f"{name}: {k} did not change after a step"
    with torch.no_grad():
        assert torch.nn.functional.mse_loss(model(lr), hr) < loss  # and the step went downhill


@pytest.mark.parametrize("name", MODELS)
def test_save_load_round_trip_gives_identical_outputs(name, tmp_path):
    torch.manual_seed(1)
    model = create_model(name, 2).eval()
    with torch.no_grad():  # move every tensor off its init so a fresh model would differ
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    path = save_model(model, tmp_path / "m", iteration=7, metrics={"val_psnr": 30.0})
    loaded = load_model(path)
    assert type(loaded) is type(model) and loaded.hparams == model.hparams and not loaded.training
    lr = torch.rand(1, 1, 10, 6)
    with torch.no_grad():
        assert torch.equal(loaded(lr), model(lr))
    meta = json.loads((tmp_path / "m.json").read_text())
    assert meta["name"] == name and meta["scale"] == 2 and meta["iteration"] == 7
    assert meta["args"] == model.hparams and meta["srlab_version"] == srlab.__version__


@pytest.mark.parametrize("name", MODELS)
def test_strict_load_names_mismatched_keys(name, tmp_path):
    model = create_model(name, 2)
    save_model(model, tmp_path / "m")
    weights = tmp_path / "m.safetensors"
    tensors = load_file(str(weights))
    with safe_open(str(weights), framework="pt") as sf:  # keep the embedded description
        metadata = sf.metadata()
    first = sorted(tensors)[0]
    tensors["extra.weight"] = torch.zeros(1)
    tensors["renamed." + first] = tensors.pop(first)
    save_file(tensors, str(weights), metadata=metadata)
    with pytest.raises(CheckpointError) as info:
        load_model(weights)
    message = str(info.value)
    assert f"missing tensors: {first}" in message
    assert "unexpected tensors:" in message and "extra.weight" in message and "renamed." + first in message


def test_strict_load_names_wrong_shapes(tmp_path):
    save_model(create_model("fsrcnn", 3), tmp_path / "m")
    meta = json.loads((tmp_path / "m.json").read_text())
    meta["args"]["d"] = 32  # the sidecar now describes a different network
    (tmp_path / "m.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"wrong shapes: .*feature_extraction\.0\.weight"):
        load_model(tmp_path / "m")


def test_create_model_errors():
    with pytest.raises(ValueError, match="unknown model 'vdsr'; choose one of: .*fsrcnn"):
        create_model("vdsr", 2)
    with pytest.raises(ValueError, match="scale must be a positive integer"):
        create_model("fsrcnn", 0)
    with pytest.raises(ValueError, match="scale must be a positive integer"):
        create_model("fsrcnn", 2.0)
    with pytest.raises(ValueError, match="bad arguments for model 'fsrcnn'"):
        create_model("fsrcnn", 2, width=3)


def test_fsrcnn_structure_and_initialisation():
    torch.manual_seed(0)
    model = FSRCNN(3, d=56, s=12, m=4)
    assert len(model.mapping) == 4
    assert model.deconvolution.weight.shape == (56, 1, 9, 9) and model.deconvolution.stride == (3, 3)
    # The paper's init: N(0, 0.001) deconvolution, N(0, sqrt(2 / (out * k * k))) convolutions.
    assert model.deconvolution.weight.std().item() == pytest.approx(0.001, rel=0.05)
    w = model.feature_extraction[0].weight
    assert w.std().item() == pytest.approx((2 / (56 * 25)) ** 0.5, rel=0.1)
    small = create_model("fsrcnn_s", 2)
    assert (small.hparams["d"], small.hparams["s"], small.hparams["m"]) == (32, 5, 1)


def test_srcnn_works_on_the_matlab_bicubic_image():
    model = create_model("srcnn_955", 3)
    assert isinstance(model, SRCNN)
    assert (model.patch_extraction.kernel_size, model.nonlinear_mapping.kernel_size, model.reconstruction.kernel_size) == ((9, 9), (5, 5), (5, 5))
    assert create_model("srcnn_915", 3).nonlinear_mapping.kernel_size == (1, 1)
    lr = torch.rand(1, 1, 6, 5, dtype=torch.float64)
    torch.testing.assert_close(model.upscale_input(lr), imresize(lr, 3.0))


def test_bicubic_baseline_is_the_matlab_imresize():
    model = create_model("bicubic", 4)
    lr = torch.rand(1, 1, 5, 6, dtype=torch.float64)
    assert torch.equal(model(lr), imresize(lr, 4.0))
    assert not list(model.parameters())
