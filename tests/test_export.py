"""ONNX / TorchScript export: parity with PyTorch, dynamic sizes, metadata, atomic writes, CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import srlab
from srlab.checkpoint import COLOR_CONVENTION
from srlab.cli import main
from srlab.export import MIN_OPSET, export_model, read_metadata
from srlab.imresize import imresize
from srlab.models import create_model, list_models

# torch.jit.load warns that TorchScript is deprecated upstream; the issue asks for it anyway.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")

SIZES = [(1, 1, 21, 30), (2, 1, 16, 13)]  # odd and even, batch 1 and 2: all dynamic


def _model(name: str, scale: int) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model(name, scale).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def _graph_input(model, meta: dict, lr: torch.Tensor) -> torch.Tensor:
    """What the exported graph takes: the LR image, or for SRCNN its bicubic upscaling."""
    return imresize(lr, float(meta["scale"])) if meta["input"] == "bicubic" else lr


@pytest.mark.parametrize("name", list_models())
def test_onnx_runtime_matches_pytorch(name, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install srlab[onnx])")
    onnx = pytest.importorskip("onnx", reason="onnx not installed (pip install srlab[onnx])")
    model = _model(name, 3)
    path = export_model(model, tmp_path / f"{name}.onnx", "onnx")
    proto = onnx.load(str(path))
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= MIN_OPSET
    meta = read_metadata(path)
    assert meta["name"] == name and meta["scale"] == 3 and meta["color"] == COLOR_CONVENTION
    assert meta["input"] == ("bicubic" if name.startswith("srcnn_9") else "lr")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for size in SIZES:
        lr = torch.rand(*size)
        with torch.no_grad():
            ref = model(lr).numpy()
        out = session.run(None, {session.get_inputs()[0].name: _graph_input(model, meta, lr).numpy()})[0]
        assert out.shape == ref.shape
        np.testing.assert_allclose(out, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", list_models())
def test_opencv_dnn_runs_the_onnx_file(name, tmp_path):
    cv2 = pytest.importorskip("cv2", reason="opencv-python not installed (pip install srlab[opencv])")
    pytest.importorskip("onnx", reason="onnx not installed (pip install srlab[onnx])")
    model = _model(name, 3)
    path = export_model(model, tmp_path / f"{name}.onnx", "onnx")
    meta = read_metadata(path)
    net = cv2.dnn.readNetFromONNX(str(path))
    for size in [(1, 1, 21, 30), (1, 1, 16, 13)]:
        lr = torch.rand(*size)
        with torch.no_grad():
            ref = model(lr).numpy()
        net.setInput(_graph_input(model, meta, lr).numpy())
        out = net.forward()
        assert out.shape == ref.shape
        np.testing.assert_allclose(out, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["fsrcnn", "espcn", "srcnn_955"])
def test_torchscript_matches_pytorch(name, tmp_path):
    model = _model(name, 2)
    path = export_model(model, tmp_path / f"{name}.pt", "torchscript")
    meta = read_metadata(path)
    assert meta["name"] == name and meta["scale"] == 2 and meta["color"] == COLOR_CONVENTION
    loaded = torch.jit.load(str(path))
    for size in SIZES:
        lr = torch.rand(*size)
        with torch.no_grad():
            assert torch.allclose(loaded(_graph_input(model, meta, lr)), model(lr), atol=1e-5, rtol=0)


def test_bicubic_and_unknown_formats_are_refused(tmp_path):
    with pytest.raises(ValueError, match="no network"):
        export_model(create_model("bicubic", 2), tmp_path / "b.onnx", "onnx")
    with pytest.raises(ValueError, match="format must be one of"):
        export_model(create_model("fsrcnn", 2), tmp_path / "f.tflite", "tflite")
    with pytest.raises(ValueError, match="opset"):
        export_model(create_model("fsrcnn", 2), tmp_path / "f.onnx", "onnx", opset=11)
    assert list(tmp_path.iterdir()) == []


def test_failed_export_leaves_no_file(tmp_path, monkeypatch):
    onnx = pytest.importorskip("onnx", reason="onnx not installed")

    def broken(*_args, **_kwargs):
        raise RuntimeError("checker says no")

    target = tmp_path / "f.onnx"
    target.write_bytes(b"old")
    monkeypatch.setattr(onnx.checker, "check_model", broken)
    with pytest.raises(RuntimeError, match="checker says no"):
        export_model(create_model("fsrcnn", 2), target, "onnx")
    assert target.read_bytes() == b"old"  # the old file stays whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.onnx"]  # no temporary left


def test_read_metadata_rejects_other_files(tmp_path):
    bad = tmp_path / "x.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="x.pt"):
        read_metadata(bad)


def test_cli_export_checkpoint(tmp_path, capsys):
    pytest.importorskip("onnx", reason="onnx not installed")
    model = _model("fsrcnn_s", 3)
    ckpt = srlab.save_model(model, tmp_path / "small")
    out = tmp_path / "out" / "small.onnx"
    assert main(["export", "--model", "fsrcnn_s", "--scale", "3", "--weights", str(ckpt), "--format", "onnx", "--out", str(out)]) == 0
    meta = read_metadata(out)
    assert meta["args"]["d"] == 32 and meta["scale"] == 3
    # Format from the suffix; the checkpoint's scale is enough.
    assert main(["export", "--model", str(ckpt), "--out", str(tmp_path / "small.pt")]) == 0
    assert read_metadata(tmp_path / "small.pt")["name"] == "fsrcnn_s"


def test_cli_export_errors_are_one_line(tmp_path, capsys):
    ckpt = srlab.save_model(create_model("fsrcnn", 3), tmp_path / "f")
    assert main(["export", "--model", "bicubic", "--scale", "2", "--out", str(tmp_path / "b.onnx")]) == 1
    assert main(["export", "--model", str(ckpt), "--scale", "2", "--out", str(tmp_path / "f.onnx")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("srlab export: error:") for line in err)
    assert "x3 model" in err[1]
    assert not (tmp_path / "b.onnx").exists() and not (tmp_path / "f.onnx").exists()


def test_fsrcnn_as_trained_keeps_conv_transpose(tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install srlab[onnx])")
    onnx = pytest.importorskip("onnx", reason="onnx not installed (pip install srlab[onnx])")
    from srlab.export import export_onnx

    model = _model("fsrcnn", 3)
    plain = export_onnx(model, tmp_path / "plain.onnx", as_trained=True)
    fast = export_onnx(model, tmp_path / "fast.onnx")
    assert "ConvTranspose" in {n.op_type for n in onnx.load(str(plain)).graph.node}
    ops = {n.op_type for n in onnx.load(str(fast)).graph.node}
    assert "ConvTranspose" not in ops and "DepthToSpace" in ops and "Shape" not in ops
    lr = torch.rand(1, 1, 19, 22).numpy()
    a = ort.InferenceSession(str(plain), providers=["CPUExecutionProvider"]).run(None, {"lr": lr})[0]
    b = ort.InferenceSession(str(fast), providers=["CPUExecutionProvider"]).run(None, {"lr": lr})[0]
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)


def test_export_leaves_the_model_alone(tmp_path):
    model = create_model("espcn", 2).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    export_model(model, tmp_path / "e.pt", "torchscript")
    assert model.training  # a model in training is not switched to eval under its owner
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
