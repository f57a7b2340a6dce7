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

``precision="bf16"`` runs the fast path's convolutions in bfloat16 instead (input and
output stay float32). It is not exact: on the shipped weights it costs 0.004-0.04 dB of
PSNR (``srlab eval --precision bf16`` measures it; numbers in docs/SPEED.md), and it
only pays off for SRCNN on CPUs with native bfloat16 (AMX or AVX512-BF16): about 3x
there, while FSRCNN's small layers run slower (measured in docs/SPEED.md). A CPU without
AVX512 or AMX has no bfloat16 convolutions in oneDNN at all; there it is refused.
"""

from __future__ import annotations

import torch
from torch import nn

from .device import native_bf16
from .fastpath import fast_espcn, fast_fsrcnn, fast_srcnn, fast_srcnn_ref
from .models import ESPCN, FSRCNN, SRCNN, SRCNNRef

__all__ = ["prepare", "run", "FAST_PATHS", "PRECISIONS"]

PRECISIONS = ("fp32", "bf16")

# Exact CPU rewrites by architecture (tile sizes: srlab.fastpath.DEFAULT_TILE, measured).
FAST_PATHS = {FSRCNN: fast_fsrcnn, ESPCN: fast_espcn, SRCNN: fast_srcnn, SRCNNRef: fast_srcnn_ref}


def prepare(model: nn.Module, fast: bool = True, precision: str = "fp32") -> nn.Module:
    """An inference-ready version of ``model``: same outputs, eval mode, no gradients.

    With ``fast`` (the default) and a float32 CPU model of a known architecture,
    the returned module is the tiled fast path (a new module; ``model`` itself is
    only put in eval mode). It keeps ``scale``, ``hparams`` and ``registry_name``.
    ``precision="bf16"`` makes that fast path compute in bfloat16; it needs one
    (ValueError otherwise), except for a model without weights (the bicubic), which
    is returned as it is.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    model = model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    builder = FAST_PATHS.get(type(model))
    params = list(model.parameters())
    usable = builder is not None and params and all(p.device.type == "cpu" and p.dtype == torch.float32 for p in params)
    if precision == "bf16" and params and not (fast and usable):
        name = getattr(model, "registry_name", type(model).__name__)
        raise ValueError(f"bf16 inference runs on srlab's CPU fast path (float32 FSRCNN, ESPCN or SRCNN on the CPU); not available for {name}")
    if not fast or not usable:
        return model
    if precision == "bf16" and not native_bf16():
        # The fast path calls oneDNN directly, which refuses bfloat16 on such CPUs (a
        # RuntimeError at the first tile); and emulated bfloat16 would be slower than fp32.
        raise ValueError("bf16 inference needs a CPU with bfloat16 support in oneDNN (AVX512 or AMX); this one has none: use fp32")
    fast_model = builder(model)
    if precision == "bf16":
        fast_model = fast_model.to(torch.bfloat16)
    fast_model.hparams = dict(getattr(model, "hparams", {}))
    fast_model.registry_name = getattr(model, "registry_name", type(model).__name__.lower())
    return fast_model


def run(model: nn.Module, lr: torch.Tensor) -> torch.Tensor:
    """``model(lr)`` under ``torch.inference_mode``; ``lr`` is ``(N, C, h, w)`` float in [0, 1]."""
    with torch.inference_mode():
        return model(lr)
