"""Every shipped weight loads, describes itself, and still scores what docs/RESULTS.md says on Set5."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import srlab
from srlab.checkpoint import read_sidecar
from srlab.data import data_root
from srlab.imresize import imresize
from srlab.pretrained import WEIGHTS_DIR, available_pretrained
from srlab.protocol import evaluate_folder

RESULTS_MD = Path(__file__).resolve().parents[1] / "docs" / "RESULTS.md"
SHIPPED = available_pretrained()
EXPECTED = {("fsrcnn", 2), ("fsrcnn", 3), ("fsrcnn", 4), ("srcnn_955", 2), ("srcnn_955", 3), ("srcnn_955", 4), ("fsrcnn_s", 3), ("espcn", 3)}


@pytest.fixture
def set5() -> Path:
    root = data_root()
    if root is None or not (Path(root) / "Set5").is_dir():
        pytest.skip("Set5 not found: set SRLAB_DATA to the data root (or place it at ../shared/data)")
    return Path(root) / "Set5"


def recorded_set5_psnr() -> dict[tuple[str, int], float]:
    """Set5 PSNR per (model, scale) from the generated table in docs/RESULTS.md."""
    text = RESULTS_MD.read_text()
    table = text.split("<!-- results-table:begin -->")[1].split("<!-- results-table:end -->")[0]
    lines = [line for line in table.strip().splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    column = header.index("Set5 PSNR / SSIM")
    recorded = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        recorded[(cells[0], int(cells[1].lstrip("x")))] = float(cells[column].split("/")[0])
    return recorded


def test_every_promised_weight_is_shipped():
    assert EXPECTED <= set(SHIPPED)


@pytest.mark.parametrize("name,scale", SHIPPED)
def test_sidecar_describes_the_weights(name, scale):
    meta = read_sidecar(WEIGHTS_DIR / f"{name}_x{scale}.json")
    assert meta["name"] == name and meta["scale"] == scale and meta["args"]["scale"] == scale
    assert meta["trained_on"].startswith("BSDS500/train")
    assert meta["training_phases"], "provenance missing"
    assert meta["config"]["train_data"] == "BSDS500/train"
    model = srlab.load_pretrained(name, scale)
    assert not model.training
    lr = torch.rand(1, 1, 12, 10)
    assert model(lr).shape == (1, 1, 12 * scale, 10 * scale)


@pytest.mark.parametrize("name,scale", SHIPPED)
def test_set5_psnr_matches_results_md(name, scale, set5):
    recorded = recorded_set5_psnr()
    assert (name, scale) in recorded, f"{name} x{scale} is shipped but not in docs/RESULTS.md"
    model = srlab.load_pretrained(name, scale)
    result = evaluate_folder(lambda lr: model(lr.float()), set5, scale, name)
    assert len(result.per_image) == 5
    assert abs(result.mean_psnr - recorded[(name, scale)]) <= 0.05
    # A trained model that does not beat bicubic is broken whatever the table says.
    bicubic = evaluate_folder(lambda lr: imresize(lr, float(scale)), set5, scale, "bicubic")
    assert result.mean_psnr > bicubic.mean_psnr + 0.5
