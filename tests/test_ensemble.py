"""Geometric self-ensemble: the transforms, the wrapper's equivariance, and its use in eval and upscale."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import srlab
from srlab.cli import main
from srlab.ensemble import SelfEnsemble, dihedral, undo_dihedral
from srlab.upscale import Upscaler, model_label


def _symmetrised(model: torch.nn.Module) -> torch.nn.Module:
    """Make every conv kernel invariant under the 8 dihedral transforms, so the model is equivariant."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                w = m.weight
                m.weight.copy_(sum(dihedral(w, k) for k in range(8)) / 8)
    return model


@pytest.mark.parametrize("k", range(8))
def test_undo_inverts_each_transform_on_a_non_square_input(k):
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).reshape(2, 3, 5, 7)
    y = dihedral(x, k)
    assert y.shape[-2:] == ((5, 7) if k % 2 == 0 else (7, 5))
    assert torch.equal(undo_dihedral(y, k), x)


def test_the_eight_transforms_are_distinct_and_form_the_dihedral_group():
    x = torch.rand(1, 1, 6, 6)
    outs = [dihedral(x, k) for k in range(8)]
    assert len({tuple(o.flatten().tolist()) for o in outs}) == 8
    # k=4 is a horizontal flip, k=1 a quarter turn counter-clockwise (torch.rot90's direction).
    assert torch.equal(outs[4], x.flip(-1))
    assert torch.equal(outs[1][0, 0, 0], x[0, 0, :, -1])


def test_bad_transform_index_is_refused():
    with pytest.raises(ValueError, match="0..7"):
        dihedral(torch.zeros(1, 1, 2, 2), 8)
    with pytest.raises(ValueError, match="0..7"):
        undo_dihedral(torch.zeros(1, 1, 2, 2), -1)


def test_ensemble_of_an_equivariant_model_is_the_model_itself():
    torch.manual_seed(0)
    model = _symmetrised(srlab.create_model("srcnn_955", scale=3)).eval()
    x = torch.rand(1, 1, 9, 13)
    with torch.no_grad():
        single, ensembled = model(x), SelfEnsemble(model)(x)
    assert ensembled.shape == single.shape == (1, 1, 27, 39)
    torch.testing.assert_close(ensembled, single, atol=1e-5, rtol=0)


def test_ensemble_is_exactly_equivariant_and_differs_from_one_pass():
    torch.manual_seed(1)
    model = srlab.create_model("fsrcnn", scale=2).eval()
    se = SelfEnsemble(model)
    x = torch.rand(1, 1, 10, 14)
    with torch.no_grad():
        base = se(x)
        assert (base - model(x)).abs().max() > 1e-4  # random filters are not symmetric
        for k in range(8):
            torch.testing.assert_close(se(dihedral(x, k)), dihedral(base, k), atol=1e-5, rtol=0)


def test_wrapper_keeps_what_the_rest_of_srlab_reads():
    model = srlab.create_model("fsrcnn", scale=4)
    se = SelfEnsemble(model)
    assert se.scale == 4 and se.registry_name == model.registry_name and se.hparams == model.hparams


def test_upscaler_with_self_ensemble_tiles_exactly_and_changes_the_result():
    model = srlab.load_pretrained("fsrcnn", scale=3)
    rgb = np.random.default_rng(0).integers(0, 256, (37, 45, 3), dtype=np.uint8)
    tiled = Upscaler(model, 3, tile=16, self_ensemble=True).pixels(rgb)
    whole = Upscaler(model, 3, tile=0, self_ensemble=True).pixels(rgb)
    single = Upscaler(model, 3, tile=0).pixels(rgb)
    assert tiled.shape == (111, 135, 3)
    assert np.abs(tiled.astype(int) - whole.astype(int)).max() <= 1
    assert np.abs(whole.astype(int) - single.astype(int)).max() > 1


def test_label_gets_a_plus():
    assert model_label("fsrcnn", self_ensemble=True) == "fsrcnn+"
    assert model_label("fsrcnn", "runs/a/last.safetensors", self_ensemble=True) == "last+"
    assert model_label("fsrcnn") == "fsrcnn"


def test_eval_cli_scores_the_shipped_model_higher_with_self_ensemble(tmp_path, capsys):
    single, plus = tmp_path / "single.json", tmp_path / "plus.json"
    assert main(["--quiet", "eval", "--model", "fsrcnn", "--scale", "3", "--json", str(single)]) == 0
    assert main(["--quiet", "eval", "--model", "fsrcnn", "--scale", "3", "--self-ensemble", "--json", str(plus)]) == 0
    one, ens = json.loads(single.read_text())[0], json.loads(plus.read_text())[0]
    assert ens["model"] == "fsrcnn+" and one["model"] == "fsrcnn"
    assert "fsrcnn+" in capsys.readouterr().out
    # On natural images the average of 8 predictions is a better estimate than one.
    for a, b in zip(one["per_image"], ens["per_image"]):
        assert b["psnr"] > a["psnr"], a["name"]
    # "fsrcnn+", the name the table prints, is accepted as the model too, and is the flag.
    named = tmp_path / "named.json"
    assert main(["--quiet", "eval", "--model", "fsrcnn+", "--scale", "3", "--json", str(named)]) == 0
    by_name = json.loads(named.read_text())[0]
    assert by_name["model"] == "fsrcnn+" and by_name["per_image"] == ens["per_image"]


def test_upscale_cli_names_outputs_with_a_plus(tmp_path):
    from PIL import Image

    src = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(src)
    out = tmp_path / "out"
    assert main(["--quiet", "upscale", str(src), "--scale", "2", "--self-ensemble", "--out", str(out)]) == 0
    (made,) = out.iterdir()
    assert made.name == "in_fsrcnn+_x2.png"
    assert Image.open(made).size == (48, 40)
    named = tmp_path / "named"
    assert main(["--quiet", "upscale", str(src), "--scale", "2", "--model", "fsrcnn+", "--out", str(named)]) == 0
    (same,) = named.iterdir()
    assert same.name == made.name
    assert np.array_equal(np.asarray(Image.open(same)), np.asarray(Image.open(made)))


def test_compare_cli_shows_a_plus_model_beside_its_single_pass(tmp_path, capsys):
    from srlab.pretrained import ASSETS_DIR

    fig = tmp_path / "fig.png"
    assert main(["compare", str(ASSETS_DIR / "astronaut.png"), "--scale", "3", "--models", "fsrcnn,fsrcnn+", "--degrade", "--out", str(fig)]) == 0
    scores = {line.split()[0]: float(line.split()[2]) for line in capsys.readouterr().out.splitlines() if "PSNR" in line}
    assert set(scores) == {"fsrcnn", "fsrcnn+"}
    assert scores["fsrcnn+"] > scores["fsrcnn"]
    assert fig.is_file()
