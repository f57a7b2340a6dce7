"""Self-describing checkpoints: safetensors weights plus a JSON sidecar.

``NAME.safetensors`` holds the tensors and, in its metadata, the same JSON as
``NAME.json`` beside it: registry name, architecture and constructor arguments,
scale, colour convention, iteration, metrics, the resolved training config and
the srlab version. :func:`load_model` rebuilds the model from that description
alone and loads the tensors strictly.

Nothing here unpickles: a ``.pt``/``.pth`` pickle from a stranger can run code
when loaded, so srlab refuses it with an error instead.

Resuming needs more than weights: ``NAME.state.safetensors`` + ``NAME.state.json``
hold the optimizer moments, the data sampler's RNG and the iteration.
Every file is written atomically (temporary file, then rename).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from . import __version__
from .imageio import atomic_write
from .models import build_from_config

__all__ = [
    "CheckpointError",
    "COLOR_CONVENTION",
    "describe",
    "save_model",
    "load_model",
    "read_sidecar",
    "training_time_s",
    "save_train_state",
    "load_train_state",
]

FORMAT = "srlab-checkpoint/1"
COLOR_CONVENTION = "Y of BT.601 studio-swing YCbCr (MATLAB rgb2ycbcr), values in [0, 1]"
_METADATA_KEY = "srlab"


class CheckpointError(ValueError):
    """A checkpoint cannot be used; the message says which file and why."""


def _paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """``(weights, sidecar)`` for a path given as ``X.safetensors``, ``X.json`` or ``X``."""
    p = Path(path)
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def describe(model: nn.Module, **extra: Any) -> dict:
    """The sidecar description of a model: what is needed to rebuild it, and provenance."""
    args = getattr(model, "hparams", None)
    if args is None:
        raise TypeError(f"{type(model).__name__} has no hparams; only srlab models can be saved")
    return {
        "format": FORMAT,
        "name": getattr(model, "registry_name", type(model).__name__.lower()),
        "arch": type(model).__name__,
        "args": dict(args),
        "scale": args["scale"],
        "color": COLOR_CONVENTION,
        "srlab_version": __version__,
        **extra,
    }


def _write_pair(weights: Path, sidecar: Path, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    text = json.dumps(meta, indent=2, sort_keys=True, default=str)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    # Weights first: the embedded copy of the sidecar lets a reader detect a
    # sidecar left from an older write if the process dies between the two.
    atomic_write(weights, lambda tmp: save_file(tensors, str(tmp), metadata={_METADATA_KEY: text}))
    atomic_write(sidecar, lambda tmp: tmp.write_text(text + "\n"))


def save_model(model: nn.Module, path: str | os.PathLike, **extra: Any) -> Path:
    """Write ``path.safetensors`` and ``path.json``; ``extra`` goes into the sidecar (metrics, config...)."""
    weights, sidecar = _paths(path)
    meta = describe(model, **extra)
    meta["tensors"] = {k: list(v.shape) for k, v in model.state_dict().items()}
    _write_pair(weights, sidecar, model.state_dict(), meta)
    return weights


# Suffixes of pickled PyTorch weights (torch.save and friends).
_PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".tar")


def _check_given(path: str | os.PathLike) -> None:
    """Refuse a file given by a name that is not ``X.safetensors``/``X.json`` with a clear reason.

    Without this, ``model.pt`` would be looked for as ``model.pt.safetensors``
    and reported missing, which hides why it cannot be used.
    """
    p = Path(path)
    if p.suffix in (".safetensors", ".json") or not p.is_file():
        return
    _check_safetensors(p)
    raise CheckpointError(f"{p}: srlab checkpoints are named NAME.safetensors (with NAME.json beside it); rename the file")


def _check_safetensors(path: Path) -> None:
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file")
    with open(path, "rb") as f:
        head = f.read(9)
    # A safetensors header length can start with byte 0x80 too; its JSON at byte 8 tells them apart.
    # Protocol-0 pickles have no magic bytes; their suffix gives them away.
    pickled = head[:2] == b"PK" or head[:1] == b"\x80" or path.suffix.lower() in _PICKLE_SUFFIXES
    if pickled and head[8:9] != b"{":
        raise CheckpointError(
            f"{path}: a PyTorch pickle, not a safetensors file; srlab never unpickles weights "
            "(a pickle can run code). Convert it where you trust it: "
            "safetensors.torch.save_file(torch.load(f, weights_only=True), 'out.safetensors')"
        )
    if len(head) < 9 or head[8:9] != b"{":
        raise CheckpointError(f"{path}: not a safetensors file (expected an 8-byte header length and JSON)")


def _load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict | None]:
    _check_safetensors(path)
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: corrupt or truncated safetensors file ({exc})") from None
    embedded = metadata.get(_METADATA_KEY)
    return tensors, (json.loads(embedded) if embedded else None)


def read_sidecar(path: str | os.PathLike) -> dict:
    """The JSON description of a checkpoint (from ``X.json``, or embedded in ``X.safetensors``)."""
    _check_given(path)
    weights, sidecar = _paths(path)
    if sidecar.is_file():
        try:
            meta = json.loads(sidecar.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{sidecar}: not valid JSON ({exc})") from None
    else:
        _, meta = _load_tensors(weights)
        if meta is None:
            raise CheckpointError(f"{sidecar}: missing, and {weights.name} carries no srlab description")
    if not isinstance(meta, dict):
        raise CheckpointError(f"{sidecar}: expected a JSON object")
    missing = [k for k in ("arch", "args", "scale") if k not in meta]
    if missing:
        raise CheckpointError(f"{sidecar}: missing key(s) {', '.join(missing)}")
    if not isinstance(meta["args"], dict):
        raise CheckpointError(f"{sidecar}: 'args' must be a JSON object of constructor arguments, got {meta['args']!r}")
    scale = meta["args"].get("scale")
    if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1 or meta["scale"] != scale:
        raise CheckpointError(f"{sidecar}: 'scale' must be a positive integer, the same at the top and in 'args' (got {meta['scale']!r} and {scale!r})")
    return meta


def training_time_s(meta: dict) -> float | None:
    """Training time behind a checkpoint, from its description: its run's ``elapsed_s`` plus
    ``init_from_elapsed_s``, the time behind the weights that run started from (so a chain
    of continuations adds up). None when it records no time."""
    elapsed = meta.get("elapsed_s")
    if isinstance(elapsed, bool) or not isinstance(elapsed, (int, float)):
        return None
    before = meta.get("init_from_elapsed_s")
    return float(elapsed) + (float(before) if isinstance(before, (int, float)) and not isinstance(before, bool) else 0.0)


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a model from its sidecar and load its weights strictly, in eval mode.

    Raises :class:`CheckpointError` for a pickle, a truncated file, a sidecar
    that does not describe the tensors, or tensors of the wrong names or shapes.
    """
    weights, sidecar = _paths(path)
    meta = read_sidecar(path)
    tensors, embedded = _load_tensors(weights)
    if embedded is not None and embedded.get("iteration") != meta.get("iteration"):
        raise CheckpointError(f"{sidecar}: describes iteration {meta.get('iteration')} but {weights.name} holds {embedded.get('iteration')}")
    # Built first on the meta device (no memory): a hostile sidecar asking for a
    # huge model is caught by the shape check below, before anything is allocated,
    # because the tensors in the file must match it.
    try:
        with torch.device("meta"):
            skeleton = build_from_config(meta["arch"], meta["args"], meta.get("name"))
    except (ValueError, TypeError, RuntimeError, OverflowError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]  # torch appends a C++ trace
        raise CheckpointError(f"{sidecar}: cannot build {meta['arch']!r} from args {meta['args']!r} ({reason})") from None
    expected = skeleton.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = [f"{k} {tuple(tensors[k].shape)} != {tuple(v.shape)}" for k, v in expected.items() if k in tensors and tensors[k].shape != v.shape]
    problems = []
    if missing:
        problems.append(f"missing tensors: {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors: {', '.join(unexpected)}")
    if wrong:
        problems.append(f"wrong shapes: {'; '.join(wrong)}")
    if problems:
        raise CheckpointError(f"{weights}: does not match {meta['arch']}({meta['args']}): " + " | ".join(problems))
    model = build_from_config(meta["arch"], meta["args"], meta.get("name"))
    model.load_state_dict(tensors, strict=True)
    model.checkpoint_meta = meta
    return model.to(map_location).eval()


def save_train_state(
    path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer, extra_tensors: dict[str, torch.Tensor], info: dict
) -> None:
    """Everything needed to resume, in ONE safetensors file (so it is written atomically as a whole).

    Holds the model weights, the optimizer moments, ``extra_tensors`` (sampler
    RNG) and, in its metadata, ``info`` (iteration, best score, ...). The JSON
    beside it is a readable copy; loading trusts the embedded one.
    """
    weights, sidecar = _paths(str(path) + ".state")
    opt = optimizer.state_dict()
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"extra.{k}": v for k, v in extra_tensors.items()})
    scalars: dict[str, dict[str, Any]] = {}
    for pid, state in opt["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{pid}.{key}"] = value
            else:
                scalars.setdefault(str(pid), {})[key] = value
    meta = {"format": FORMAT + "+state", **info, "param_groups": opt["param_groups"], "optimizer_scalars": scalars}
    _write_pair(weights, sidecar, tensors, meta)


def load_train_state(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Restore ``model`` and ``optimizer`` in place; return ``(extra_tensors, info)``."""
    weights, _ = _paths(str(path) + ".state")
    tensors, meta = _load_tensors(weights)
    if meta is None:
        raise CheckpointError(f"{weights}: carries no srlab training state")
    model_state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(model_state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{weights}: does not fit this model ({exc})") from None
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    for pid, scalars in meta.get("optimizer_scalars", {}).items():
        state.setdefault(int(pid), {}).update(scalars)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    extra = {k[len("extra.") :]: v for k, v in tensors.items() if k.startswith("extra.")}
    return extra, meta
