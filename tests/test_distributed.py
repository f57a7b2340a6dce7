"""Data-parallel training on CPU (gloo): 2 ranks end with identical weights, equal to one
process on the same global batch."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
import yaml
from safetensors.torch import load_file, save_file

from srlab.train import TrainConfig, train


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _run_or_dump_stacks(cmd: list[str], env: dict, timeout: float) -> subprocess.CompletedProcess:
    """Run ``cmd``; if it hangs, make the workers print their stacks (srlab's SIGUSR1
    handler) and fail with them, so a hang seen once in CI says where it was."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        workers = _children(proc.pid)  # torchrun puts them in sessions of their own
        for pid in workers:
            os.kill(pid, signal.SIGUSR1)
        try:
            out, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            for pid in [*workers, proc.pid]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            out, err = proc.communicate()
        pytest.fail(f"torchrun hung for {timeout:.0f}s; worker stacks:\n{err[-6000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _config(image_folder) -> dict:
    train_dir = image_folder("train", n=2, size=(40, 36))
    val_dir = image_folder("val", n=1, size=(30, 30), seed=9)
    return dict(
        model="fsrcnn", scale=2, model_args={"d": 8, "s": 4, "m": 1}, train_data=str(train_dir), val_data=str(val_dir),
        val_limit=1, lr_patch=6, batch_size=8, iterations=6, val_every=3, log_every=2, lr=3e-3, seed=0,
        device="cpu", threads=1,
    )


def _worker(rank: int, world: int, port: int, cfg: dict, out: str, result_dir: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    from srlab.train import trainer

    made = []
    create = trainer.create_model

    def capture(*args, **kwargs):  # keep a handle on this rank's model to compare its weights
        made.append(create(*args, **kwargs))
        return made[-1]

    trainer.create_model = capture
    trainer.train(TrainConfig(**cfg), out, progress=False)
    save_file({k: v.contiguous() for k, v in made[0].state_dict().items()}, os.path.join(result_dir, f"rank{rank}.safetensors"))


def _single_process(cfg: dict, out) -> dict[str, torch.Tensor]:
    before = torch.get_num_threads()
    try:
        train(TrainConfig(**cfg), out, progress=False)
    finally:
        torch.set_num_threads(before)
    return load_file(str(out / "last.safetensors"))


def _assert_close(a: dict, b: dict, atol: float) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=atol, rtol=0, msg=lambda m, k=k: f"{k}: {m}")


@pytest.mark.slow
def test_two_gloo_ranks_match_each_other_and_one_process(image_folder, tmp_path):
    cfg = _config(image_folder)
    out = tmp_path / "ddp"
    mp.spawn(_worker, args=(2, _free_port(), cfg, str(out), str(tmp_path)), nprocs=2, join=True)
    rank0 = load_file(str(tmp_path / "rank0.safetensors"))
    rank1 = load_file(str(tmp_path / "rank1.safetensors"))
    for k in rank0:
        assert torch.equal(rank0[k], rank1[k]), f"ranks differ in {k}"
    # Only rank 0 wrote, and what it wrote is its model.
    _assert_close(load_file(str(out / "last.safetensors")), rank0, atol=0)
    single = _single_process(cfg, tmp_path / "single")
    _assert_close(rank0, single, atol=1e-6)
    # The comparison means something: training moved the weights far more than the tolerance.
    torch.manual_seed(0)
    from srlab.models import create_model

    fresh = create_model("fsrcnn", 2, d=8, s=4, m=1).state_dict()
    assert max((rank0[k] - fresh[k]).abs().max().item() for k in fresh) > 1e-3
    # The logged loss is the global batch's, the same as one process logs.
    read = lambda p: [r for r in map(json.loads, p.read_text().splitlines()) if "loss" in r]  # noqa: E731
    ddp_rows, single_rows = read(out / "metrics.jsonl"), read(tmp_path / "single" / "metrics.jsonl")
    assert [r["iteration"] for r in ddp_rows] == [r["iteration"] for r in single_rows] == [2, 4, 6]
    for a, b in zip(ddp_rows, single_rows):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)


@pytest.mark.slow
def test_torchrun_cli(image_folder, tmp_path):
    cfg = _config(image_folder)
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           "-m", "srlab", "-q", "train", "--config", str(tmp_path / "cfg.yaml"), "--out", str(tmp_path / "run")]
    done = _run_or_dump_stacks(cmd, env, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    ddp = load_file(str(tmp_path / "run" / "last.safetensors"))
    _assert_close(ddp, _single_process(cfg, tmp_path / "single"), atol=1e-6)
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["batch_size"] == 8


def test_pick_device_gives_each_local_rank_its_own_gpu(monkeypatch):
    from srlab.train.distributed import pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto", 5) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert pick_device("auto", 1) == torch.device("cuda:1")
    with pytest.raises(ValueError, match=r"local rank 2 has no GPU of its own: 2 visible.*--nproc_per_node=2"):
        pick_device("auto", 2)
    assert pick_device("cpu", 7) == torch.device("cpu")
