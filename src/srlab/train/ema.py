"""An exponential moving average of the weights (BasicSR's ``ema_decay``, timm's ``ModelEma``).

Adam's last steps move the weights around a minimum rather than into it; the average over
the last few thousand steps sits nearer its centre. Validation, ``best``, ``last`` and the
snapshots then hold the average, while the optimizer keeps stepping the raw weights.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["WeightAverage"]


class WeightAverage:
    """``average = d * average + (1 - d) * weights`` after every optimizer step.

    ``d = min(decay, (1 + n) / (10 + n))`` after ``n`` updates (TensorFlow's ``num_updates``
    rule): early on the average follows the weights closely, so a run from random
    initialisation is not dragged back to it for the first ``1 / (1 - decay)`` steps.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    def decay_after(self, updates: int) -> float:
        return min(self.decay, (1 + updates) / (10 + updates))

    @torch.no_grad()
    def update(self, model: nn.Module, updates: int) -> None:
        """Blend ``model``'s weights in; ``updates`` is how many updates came before this one."""
        d = self.decay_after(updates)
        floats, currents = [], []
        for averaged, current in zip(self.model.state_dict().values(), model.state_dict().values()):
            if averaged.is_floating_point():
                floats.append(averaged)
                currents.append(current)
            else:  # integer buffers (counters) are copied, not averaged
                averaged.copy_(current)
        # One fused update of every tensor (timm's ModelEmaV3 does the same): on a GPU a kernel
        # per tensor would cost more than the step itself for these small nets.
        torch._foreach_lerp_(floats, currents, 1 - d)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state, strict=True)
