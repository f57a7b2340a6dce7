"""Export trained models to ONNX and TorchScript, with their description inside the file.

The exported graph takes ``lr`` ``(N, C, h, w)`` float32 in [0, 1] (Y of BT.601
studio-swing YCbCr for the shipped 1-channel models) and returns ``sr``
``(N, C, s*h, s*w)``; batch, height and width are dynamic. What is exported:

* FSRCNN: the deconvolution in its exact sub-pixel form (:mod:`srlab.fastpath`):
  convolution, ``DepthToSpace`` and a constant crop. Same numbers, and OpenCV DNN
  runs it several times faster than a strided ``ConvTranspose``.
* ESPCN and the reference SRCNN: the network as it is.
* SRCNN (9-1-5, 9-5-5): only the three convolutions. Its MATLAB bicubic
  upscaling builds per-size index tables, which no exporter turns into a
  size-independent graph, so the exported ``input`` is the bicubic-upscaled image
  (``srlab.imresize(lr, scale)``) and the output has the same size; the metadata
  says so (``"input": "bicubic"``).

Metadata (model name, architecture and arguments, scale, colour convention, input
kind, srlab version) is JSON stored under the key ``srlab`` in ONNX
``metadata_props`` and as the extra file ``srlab.json`` in TorchScript archives;
:func:`read_metadata` reads either. Files are written atomically.
"""

from __future__ import annotations

import copy
import io
import json
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from . import __version__
from .checkpoint import COLOR_CONVENTION
from .fastpath import SubPixelConv
from .imageio import atomic_write
from .models import ESPCN, FSRCNN, SRCNN, Bicubic, SRCNNRef

__all__ = ["FORMATS", "MIN_OPSET", "export_graph", "export_model", "export_onnx", "export_torchscript", "read_metadata"]

FORMATS = ("onnx", "torchscript")
MIN_OPSET = 17
METADATA_KEY = "srlab"
_EXTRA_FILE = "srlab.json"


class _FSRCNNSubPixel(nn.Module):
    """FSRCNN with the deconvolution as convolution + pixel shuffle + constant crop."""

    def __init__(self, model: FSRCNN):
        super().__init__()
        self.body = nn.Sequential(model.feature_extraction, model.shrinking, model.mapping, model.expanding)
        self.last = SubPixelConv(model.deconvolution)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.last(self.body(lr))


class _SRCNNConvs(nn.Module):
    """SRCNN's three convolutions, on an already bicubic-upscaled image."""

    def __init__(self, model: SRCNN):
        super().__init__()
        self.net = nn.Sequential(model.patch_extraction, nn.ReLU(), model.nonlinear_mapping, nn.ReLU(), model.reconstruction)

    def forward(self, upscaled: torch.Tensor) -> torch.Tensor:
        return self.net(upscaled)


def export_graph(model: nn.Module, as_trained: bool = False) -> tuple[nn.Module, dict]:
    """The module that gets exported for ``model``, and the metadata that goes with it.

    ``as_trained`` keeps FSRCNN's ``ConvTranspose2d`` (for comparisons; slower in
    OpenCV DNN, the same numbers).

    Raises:
        ValueError: ``model`` is the parameter-free bicubic or not an srlab network.
    """
    if isinstance(model, Bicubic):
        raise ValueError("bicubic has no network to export; use srlab.imresize (or any MATLAB-compatible resize)")
    hparams = getattr(model, "hparams", None)
    if hparams is None or not isinstance(model, (FSRCNN, ESPCN, SRCNN, SRCNNRef)):
        raise ValueError(f"cannot export {type(model).__name__}: only srlab's FSRCNN, ESPCN and SRCNN models")
    scale = int(hparams["scale"])
    graph_input = "lr"
    # Export from a float32 CPU copy: the example input is a CPU tensor, and a model
    # being trained on a GPU must not be moved or put in eval mode under its owner.
    model = copy.deepcopy(model).float().cpu().eval()
    graph: nn.Module = model
    form = "as trained"
    if isinstance(model, FSRCNN) and not as_trained:
        graph, form = _FSRCNNSubPixel(model), "sub-pixel (deconvolution rewritten exactly as conv + DepthToSpace)"
    elif isinstance(model, SRCNN):
        graph, graph_input = _SRCNNConvs(model), "bicubic"
        form = "convolutions only; feed srlab.imresize(lr, scale) (MATLAB bicubic)"
    meta = {
        "name": getattr(model, "registry_name", type(model).__name__.lower()),
        "arch": type(model).__name__,
        "args": dict(hparams),
        "scale": scale,
        "color": COLOR_CONVENTION,
        "channels": int(hparams.get("channels", 1)),
        "input": graph_input,
        "output_scale": 1 if graph_input == "bicubic" else scale,
        "layout": "NCHW float32, values in [0, 1]; output not clamped",
        "graph": form,
        "srlab_version": __version__,
    }
    graph = graph.eval()
    return graph, meta


def _example(meta: dict) -> torch.Tensor:
    return torch.rand(1, meta["channels"], 24, 28)


def export_onnx(model: nn.Module, path: str | os.PathLike, opset: int = MIN_OPSET, as_trained: bool = False) -> Path:
    """Write ``model`` as ONNX (input ``lr`` or ``upscaled``, output ``sr``; N, H, W dynamic).

    ``as_trained``: see :func:`export_graph`.
    """
    import onnx  # optional dependency: pip install srlab[onnx]

    if opset < MIN_OPSET:
        raise ValueError(f"opset must be >= {MIN_OPSET}, got {opset}")
    graph, meta = export_graph(model, as_trained)
    in_name = "upscaled" if meta["input"] == "bicubic" else "lr"
    dynamic = {in_name: {0: "batch", 2: "height", 3: "width"}, "sr": {0: "batch", 2: "out_height", 3: "out_width"}}

    def write(tmp: Path) -> None:
        buffer = io.BytesIO()
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation notice
            torch.onnx.export(
                graph, (_example(meta),), buffer, input_names=[in_name], output_names=["sr"],
                dynamic_axes=dynamic, opset_version=opset, dynamo=False,
            )  # fmt: skip
        proto = onnx.load_from_string(buffer.getvalue())
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(meta, sort_keys=True)
        proto.producer_name, proto.producer_version = "srlab", __version__
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))

    return atomic_write(path, write)


def export_torchscript(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write ``model`` as a TorchScript archive (``torch.jit.load`` runs it without srlab)."""
    graph, meta = export_graph(model)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notice in recent releases
        scripted = torch.jit.script(graph)
    extra = {_EXTRA_FILE: json.dumps(meta, sort_keys=True)}
    return atomic_write(path, lambda tmp: torch.jit.save(scripted, str(tmp), _extra_files=extra))


def export_model(model: nn.Module, path: str | os.PathLike, format: str, opset: int = MIN_OPSET) -> Path:
    """Export to ``format`` (``"onnx"`` or ``"torchscript"``); returns the written path."""
    if format == "onnx":
        return export_onnx(model, path, opset)
    if format == "torchscript":
        return export_torchscript(model, path)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")


def read_metadata(path: str | os.PathLike) -> dict:
    """The srlab metadata stored in an exported ONNX or TorchScript file.

    Raises:
        ValueError: the file has no srlab metadata or is neither format.
    """
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
        for entry in proto.metadata_props:
            if entry.key == METADATA_KEY:
                return json.loads(entry.value)
        raise ValueError(f"{path}: ONNX file has no {METADATA_KEY!r} metadata")
    extra = {_EXTRA_FILE: ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated upstream, still works
            torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except RuntimeError as exc:
        raise ValueError(f"{path}: not an ONNX (.onnx) or TorchScript file ({exc})") from None
    if not extra[_EXTRA_FILE]:
        raise ValueError(f"{path}: TorchScript archive has no {_EXTRA_FILE}")
    return json.loads(extra[_EXTRA_FILE])
