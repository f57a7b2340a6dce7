"""The inference path every user-facing command goes through.

``prepare(model)`` returns the fastest exact CPU version of a trained model, and
``run`` calls it without autograd. Keeping this in one place means
``srlab upscale``, ``srlab.upscale`` and the benchmarks all get the same path.

On the CPU, FSRCNN, ESPCN and both SRCNNs become a :class:`srlab.fastpath.TiledConvNet`:
weights copied into channels-last convolutions called straight through oneDNN,
FSRCNN's deconvolution rewritten exactly as a sub-pixel convolution, and the
image run in L2-sized tiles, one tile per thread (``torch.get_num_threads()``
threads, PyTorch's default of one per physical core). Nothing is compiled, so
the first call costs a few milliseconds more than the next, not seconds
(benchmarks/inference.py measures both; numbers in docs/SPEED.md). The result
equals ``model(lr)`` to float rounding (tested within 1e-5). On a GPU, or for anything
else (the bicubic baseline, an unknown module), the model itself is returned in
eval mode.
"""

from __future__ import annotations

import torch
from torch import nn

from .fastpath import fast_espcn, fast_fsrcnn, fast_srcnn, fast_srcnn_ref
from .models import ESPCN, FSRCNN, SRCNN, SRCNNRef

__all__ = ["prepare", "run", "FAST_PATHS"]

# Exact CPU rewrites by architecture (tile sizes: srlab.fastpath.DEFAULT_TILE, measured).
FAST_PATHS = {FSRCNN: fast_fsrcnn, ESPCN: fast_espcn, SRCNN: fast_srcnn, SRCNNRef: fast_srcnn_ref}


def prepare(model: nn.Module, fast: bool = True) -> nn.Module:
    """An inference-ready version of ``model``: same outputs, eval mode, no gradients.

    With ``fast`` (the default) and a float32 CPU model of a known architecture,
    the returned module is the tiled fast path (a new module; ``model`` itself is
    only put in eval mode). It keeps ``scale``, ``hparams`` and ``registry_name``.
    """
    model = model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    builder = FAST_PATHS.get(type(model))
    params = list(model.parameters())
    if not fast or builder is None or not params or any(p.device.type != "cpu" or p.dtype != torch.float32 for p in params):
        return model
    fast_model = builder(model)
    fast_model.hparams = dict(getattr(model, "hparams", {}))
    fast_model.registry_name = getattr(model, "registry_name", type(model).__name__.lower())
    return fast_model


def run(model: nn.Module, lr: torch.Tensor) -> torch.Tensor:
    """``model(lr)`` under ``torch.inference_mode``; ``lr`` is ``(N, C, h, w)`` float in [0, 1]."""
    with torch.inference_mode():
        return model(lr)
