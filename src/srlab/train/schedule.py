"""Learning-rate schedules as pure functions of the iteration.

No scheduler object carries state, so resuming at iteration i gives exactly
the learning rate an uninterrupted run had there.
"""

from __future__ import annotations

import math

from .config import TrainConfig

__all__ = ["lr_factor", "count_free_steps"]


def lr_factor(cfg: TrainConfig, iteration: int) -> float:
    """Multiplier of ``cfg.lr`` at (0-based) ``iteration``."""
    if cfg.warmup and iteration < cfg.warmup:
        return (iteration + 1) / cfg.warmup
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "step":
        return cfg.gamma ** (iteration // cfg.step_size)
    if cfg.schedule == "multistep":
        return cfg.gamma ** sum(iteration >= m for m in cfg.milestones)
    # cosine: flat until decay_start, then half a cosine down to min_lr_ratio.
    start = int(cfg.decay_start * cfg.iterations)
    if iteration < start:
        return 1.0
    progress = min(1.0, (iteration - start) / max(1, cfg.iterations - start))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def count_free_steps(cfg: TrainConfig) -> int:
    """How many first iterations have a learning rate that does not depend on ``cfg.iterations``.

    A time budget may change the iteration count while the run is still inside them
    without changing any learning rate already used: the warm-up and the flat part of a
    cosine, or the whole run for schedules that count in fixed steps.
    """
    if cfg.schedule == "cosine":
        return max(cfg.warmup, int(cfg.decay_start * cfg.iterations))
    return cfg.iterations
