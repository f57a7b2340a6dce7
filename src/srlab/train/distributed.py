"""Data-parallel training with torch.distributed, started by ``torchrun``.

Every rank draws the same global batch from an identically seeded sampler and
trains on its own slice; DistributedDataParallel averages the gradients, so K
processes give the same update as one process on the whole batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..device import resolve_device

__all__ = ["DistInfo", "setup", "teardown", "pick_device"]


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(requested: str = "auto", local_rank: int = 0) -> torch.device:
    """CUDA when present (one GPU per local rank), else CPU; ``requested`` overrides."""
    if requested == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        visible = torch.cuda.device_count()
        if local_rank >= visible:
            # Without this, two ranks would share a GPU, or CUDA would fail with an invalid-ordinal error.
            raise ValueError(
                f"local rank {local_rank} has no GPU of its own: {visible} visible; start at most {visible} "
                f"processes per node (torchrun --nproc_per_node={visible}) or set device: cpu"
            )
        return torch.device(f"cuda:{local_rank}")
    return resolve_device(requested)


def setup() -> DistInfo:
    """Join the process group if launched by torchrun (``WORLD_SIZE`` > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend)
    return info


def teardown(info: DistInfo) -> None:
    """Leave the process group only once every rank has finished its last collective.

    A barrier alone is not enough: a rank that leaves the barrier first and destroys
    the group can drop its last in-flight message, and a slower rank then waits in
    that barrier until gloo's 30-minute timeout (seen in CI on a loaded machine).
    So the ranks also meet through the rendezvous store, which lives outside the
    group: each says "done" and waits for every other "done" before destroying
    anything, and again after destroying, so that no rank exits (closing its sockets)
    while another is still closing its own connections. Rank 0 leaves last, because
    it may host the store (``env://``): the others tell it they have seen every
    "destroyed" before it shuts the store down. The caller drops its
    DistributedDataParallel wrapper first, because the wrapper holds the group: a
    rank once hung in CI while that wrapper was being freed at ``train()``'s return,
    after the handshake, with the other rank already gone (its stack ended there,
    in native code).
    """
    if not (info.enabled and dist.is_initialized()):
        return
    dist.barrier()
    store = dist.distributed_c10d._get_default_store()
    _meet(store, "done", info)
    dist.destroy_process_group()
    _meet(store, "destroyed", info)
    if info.is_main:
        store.wait([f"srlab/released/{r}" for r in range(1, info.world_size)])
    else:
        store.set(f"srlab/released/{info.rank}", "1")


def _meet(store, stage: str, info: DistInfo) -> None:
    """Say this rank reached ``stage`` and wait until every rank has."""
    store.set(f"srlab/{stage}/{info.rank}", "1")
    store.wait([f"srlab/{stage}/{r}" for r in range(info.world_size)])
