"""Turning a device name from the command line or a config into a usable ``torch.device``,
and what that device can do.

PyTorch only notices a missing GPU at the first tensor moved there, deep inside a
model, with an AssertionError; checking the name up front gives one clear line instead.
"""

from __future__ import annotations

import torch

__all__ = ["resolve_device", "native_bf16"]


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``"auto"`` (CUDA if present, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.

    Raises:
        ValueError: the name is not a device, or that device is not available here.
    """
    if isinstance(name, torch.device):
        device = name
    elif name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            device = torch.device(name)
        except RuntimeError:
            raise ValueError(f"device {name!r}: expected auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            build = "this PyTorch is a CPU-only build" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ValueError(f"device {str(device)!r}: CUDA is not available ({build}); use cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValueError(f"device {str(device)!r}: only {count} CUDA device(s) visible (cuda:0..cuda:{count - 1})")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {str(device)!r}: MPS is not available on this machine; use cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {str(device)!r}: srlab runs on cpu, cuda or mps")
    return device


def native_bf16() -> bool:
    """Whether oneDNN runs bfloat16 kernels on this CPU (an internal PyTorch check that asks
    for AVX512 BW/VL/DQ, AVX-NE-CONVERT or AMX; assumed present if that check is missing).

    Without it oneDNN's convolutions refuse bfloat16 outright, and PyTorch's own fallback
    (what autocast uses in training) is slower than float32."""
    check = getattr(getattr(torch.ops, "mkldnn", None), "_is_mkldnn_bf16_supported", None)
    try:
        return bool(check()) if check is not None else True
    except RuntimeError:
        return True
