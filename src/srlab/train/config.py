"""Training configuration: dataclass defaults, then a YAML file, then ``key=value`` overrides.

Validated once, here; the rest of the code reads typed attributes, never
``dict.get``. An unknown key or a bad value is a :class:`ConfigError` that names
the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from ..models import create_model, list_models

__all__ = ["TrainConfig", "ConfigError", "load_config"]


# time_budget_s measures speed between these iterations, inside the warm-up.
CALIBRATION_START, CALIBRATION_END = 50, 300


class ConfigError(ValueError):
    """A configuration key or value is not valid; the message says which and what is allowed."""


@dataclass
class TrainConfig:
    # What to train.
    model: str = "fsrcnn"
    scale: int = 3
    model_args: dict = field(default_factory=dict)  # extra constructor arguments, e.g. {d: 32}
    # Data. Paths are used as given, or looked up under $SRLAB_DATA.
    train_data: str = "BSDS500/train"
    val_data: str | None = "BSDS500/val"  # BSD100; never Set5/Set14/BSDS500-test (those are for reporting)
    val_limit: int | None = None  # use only the first N validation images (faster checks)
    dataset: str = "patches"  # "patches" (papers) or "reference" (centre crops, scale-1 restore model)
    lr_patch: int = 11  # LR patch side; FSRCNN x3 paper: 11 (HR 33)
    augment: bool = True  # 8 flips/rotations
    scale_augment: list = field(default_factory=list)  # extra down-scaled HR copies, FSRCNN: [0.9, 0.8, 0.7, 0.6]
    reference_crop: int = 300  # only for dataset=reference
    # > 1: draw this many patches per batch slot and keep the ones with the most LR detail
    # (SamplingAug's idea; data/patches.py). 1 is the papers' uniform sampling.
    detail_oversample: float = 1.0
    # Optimisation.
    iterations: int = 100_000
    batch_size: int = 64
    optimizer: str = "adam"  # adam | sgd
    lr: float = 1e-3
    momentum: float = 0.9  # sgd only
    weight_decay: float = 0.0
    lr_multipliers: dict = field(default_factory=dict)  # {module-name prefix: factor}, FSRCNN paper: {deconvolution: 0.1}
    schedule: str = "cosine"  # constant | step | multistep | cosine
    warmup: int = 0  # iterations of linear warm-up
    milestones: list = field(default_factory=list)  # multistep: iterations where lr *= gamma
    step_size: int = 10_000  # step: every step_size iterations lr *= gamma
    gamma: float = 0.1
    decay_start: float = 0.0  # cosine: fraction of the run at constant lr before the decay
    min_lr_ratio: float = 0.0  # cosine: final lr as a fraction of lr
    loss: str = "mse"  # mse | l1
    # HR pixels left out of the loss on each side of the output patch. The network sees only
    # the LR patch, so outputs near its edge are computed from zero padding, not image: on
    # small patches that is most of the patch, while on a test image it is a thin border.
    # Leaving them out (the SRCNN paper's "valid" convolutions) trains the interior only; a
    # test image's own edges then go untrained, so end with a phase at 0 (docs/TRAINING.md).
    loss_border: int = 0
    grad_clip: float | None = None
    # "bf16": the network's forward and backward in bfloat16 autocast (weights, optimizer state
    # and the loss stay float32). SRCNN trains about 1.7-1.9x faster on a CPU with avx512_bf16
    # (docs/TRAINING.md); validation, checkpoints and inference are always float32.
    precision: str = "fp32"
    # Fit the run into a wall-clock budget: iterations is re-set from the speed measured
    # during warm-up (so the schedule is unchanged), again halfway through the flat part of
    # the schedule where it has one, and written to config.yaml.
    time_budget_s: float | None = None
    # > 0: validate and save an exponential moving average of the weights instead of the raw
    # ones (BasicSR's ema_decay; 0.999 averages over about the last thousand steps).
    ema_decay: float = 0.0
    # Bookkeeping.
    seed: int = 0
    val_every: int = 2000
    log_every: int = 50
    # Also keep the weights of every validation step in RUN/snapshots/ (tens of KB each for
    # FSRCNN): curves on test sets afterwards (time-to-quality), never used to pick weights.
    keep_snapshots: bool = False
    init_from: str | None = None  # start from this checkpoint's weights
    reinit: list = field(default_factory=list)  # module-name prefixes re-initialised after init_from
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int | None = None  # torch CPU threads (None: torch's default)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_CHOICES = {
    "dataset": ("patches", "reference"),
    "optimizer": ("adam", "sgd"),
    "schedule": ("constant", "step", "multistep", "cosine"),
    "loss": ("mse", "l1"),
    "precision": ("fp32", "bf16"),
}
_POSITIVE = ("scale", "lr_patch", "iterations", "batch_size", "val_every", "log_every", "step_size", "reference_crop")


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    """Check/convert ``value`` to the field's type; YAML and ``--set`` give plain scalars."""
    hint = typing.get_type_hints(TrainConfig)[name]
    args = typing.get_args(hint)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if args else hint
    if value is None or (isinstance(value, str) and value.lower() in ("none", "null") and optional):
        if optional:
            return None
        raise ConfigError(f"{name}: may not be empty (expected {base.__name__})")
    if base is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{name}: expected true or false, got {value!r}")
    if base is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.lstrip("-").isdigit())):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{name}: expected an integer, got {value!r}")
        return int(value)
    if base is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected a number, got {value!r}") from None
    if base is str:
        if not isinstance(value, (str, int, float)):
            raise ConfigError(f"{name}: expected a string, got {value!r}")
        return str(value)
    if base in (list, dict):
        if isinstance(value, str):
            value = yaml.safe_load(value)
        if not isinstance(value, base):
            raise ConfigError(f"{name}: expected a {base.__name__}, got {value!r}")
        return value
    return value


def _validate(cfg: TrainConfig) -> None:
    models = list_models()
    if cfg.model not in models:
        raise ConfigError(f"model: unknown {cfg.model!r}; choose one of: {', '.join(models)}")
    for key, allowed in _CHOICES.items():
        if getattr(cfg, key) not in allowed:
            raise ConfigError(f"{key}: {getattr(cfg, key)!r} is not one of: {', '.join(allowed)}")
    for key in _POSITIVE:
        if getattr(cfg, key) < 1:
            raise ConfigError(f"{key}: must be >= 1, got {getattr(cfg, key)}")
    if cfg.scale > 8:
        raise ConfigError(f"scale: {cfg.scale} is not supported (allowed: 1 to 8)")
    if not cfg.lr > 0:
        raise ConfigError(f"lr: must be > 0, got {cfg.lr}")
    if not 0 <= cfg.decay_start < 1:
        raise ConfigError(f"decay_start: must be in [0, 1), got {cfg.decay_start}")
    if any(isinstance(f, bool) or not isinstance(f, (int, float)) for f in cfg.scale_augment):
        raise ConfigError(f"scale_augment: expected a list of numbers in (0, 1], got {cfg.scale_augment}")
    if any(not (0 < f <= 1) for f in cfg.scale_augment):
        raise ConfigError(f"scale_augment: factors must be in (0, 1], got {cfg.scale_augment}")
    if cfg.loss_border < 0:
        raise ConfigError(f"loss_border: must be >= 0, got {cfg.loss_border}")
    hr_patch = cfg.lr_patch * cfg.scale
    if cfg.dataset == "patches" and 2 * cfg.loss_border >= hr_patch:
        raise ConfigError(f"loss_border: {cfg.loss_border} on each side leaves nothing of the {hr_patch}x{hr_patch} HR patch (lr_patch {cfg.lr_patch} x scale {cfg.scale})")
    if cfg.warmup < 0:
        raise ConfigError(f"warmup: must be >= 0, got {cfg.warmup}")
    if cfg.val_limit is not None and cfg.val_limit < 1:
        raise ConfigError(f"val_limit: must be >= 1 or null, got {cfg.val_limit}")
    if cfg.time_budget_s is not None and cfg.warmup < CALIBRATION_END:
        raise ConfigError(f"time_budget_s: needs warmup >= {CALIBRATION_END} (speed is measured during warm-up), got warmup={cfg.warmup}")
    if cfg.reinit and not cfg.init_from:
        raise ConfigError("reinit: needs init_from (re-initialising layers of a fresh model does nothing)")
    if cfg.grad_clip is not None and not cfg.grad_clip > 0:
        raise ConfigError(f"grad_clip: must be > 0 or null, got {cfg.grad_clip}")
    if not cfg.gamma > 0:
        raise ConfigError(f"gamma: must be > 0, got {cfg.gamma}")
    if not cfg.detail_oversample >= 1:  # _coerce has made it a float
        raise ConfigError(f"detail_oversample: must be a number >= 1, got {cfg.detail_oversample}")
    if cfg.weight_decay < 0:
        raise ConfigError(f"weight_decay: must be >= 0, got {cfg.weight_decay}")
    if not 0 <= cfg.ema_decay < 1:
        raise ConfigError(f"ema_decay: must be in [0, 1) (0 = off; e.g. 0.999), got {cfg.ema_decay}")
    if not 0 <= cfg.min_lr_ratio <= 1:
        raise ConfigError(f"min_lr_ratio: must be in [0, 1], got {cfg.min_lr_ratio}")
    if cfg.threads is not None and cfg.threads < 1:
        raise ConfigError(f"threads: must be >= 1 or null, got {cfg.threads}")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", cfg.device):
        raise ConfigError(f"device: {cfg.device!r} is not one of: auto, cpu, cuda, cuda:N, mps")
    if any(isinstance(m, bool) or not isinstance(m, int) or m < 0 for m in cfg.milestones):
        raise ConfigError(f"milestones: expected a list of iterations (integers >= 0), got {cfg.milestones}")
    bad_mult = {k: v for k, v in cfg.lr_multipliers.items() if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0}
    if bad_mult:
        raise ConfigError(f"lr_multipliers: factors must be numbers >= 0, got {bad_mult}")
    _validate_model_args(cfg)


def _validate_model_args(cfg: TrainConfig) -> None:
    """Build the model on the meta device (no memory), so bad ``model_args`` fail here, not mid-run."""
    model_scale = 1 if cfg.dataset == "reference" else cfg.scale
    with torch.device("meta"):
        probe = create_model(cfg.model, model_scale)
    allowed = [p for p in inspect.signature(type(probe).__init__).parameters if p not in ("self", "scale")]
    unknown = sorted(k for k in cfg.model_args if k not in allowed)
    if unknown:
        raise ConfigError(f"model_args: {', '.join(map(str, unknown))} not accepted by {cfg.model} (allowed: {', '.join(allowed)}; scale is its own key)")
    try:
        with torch.device("meta"):
            create_model(cfg.model, model_scale, **cfg.model_args)
    except (ValueError, TypeError, RuntimeError, OverflowError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"model_args: {cfg.model} cannot be built with {cfg.model_args} ({reason})") from None


def load_config(path: str | os.PathLike | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Defaults, then the YAML file at ``path``, then ``key=value`` overrides; validated."""
    values: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: config file not found")
        try:
            loaded = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML ({' '.join(str(exc).split())})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: expected a mapping of key: value")
        values.update(loaded)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        values[key.strip()] = yaml.safe_load(raw) if raw.strip() else raw
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(known))}")
    cfg = TrainConfig(**{k: _coerce(k, v, None) for k, v in values.items()})
    _validate(cfg)
    return cfg
