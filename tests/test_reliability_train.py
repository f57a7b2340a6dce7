"""Training runs that are killed, fail, diverge or are misconfigured lose nothing.

A tiny FSRCNN-s on four generated 48x48 images trains at a few ms per step on
one CPU thread, so a 300-step run with a checkpoint every 20 steps takes
seconds; the SIGKILL test kills real `srlab train` processes at random steps.
"""

from __future__ import annotations

import errno
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file

import srlab
import srlab.checkpoint
from srlab.cli import main
from srlab.data import PatchSampler
from srlab.train import ConfigError, RunDirError, TrainingDiverged, load_config, train

IS_ROOT = os.name == "posix" and os.geteuid() == 0
ITERATIONS = 300


def _settings(data: Path, **overrides) -> dict:
    return {
        "model": "fsrcnn_s", "scale": 2, "lr_patch": 8, "batch_size": 8, "iterations": ITERATIONS,
        "val_every": 20, "log_every": 5, "train_data": str(data / "train"), "val_data": str(data / "val"),
        "device": "cpu", "threads": 1, "lr": 1e-3, **overrides,
    }


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Four smooth-plus-noise 48x48 gray training images and one validation image."""
    root = tmp_path_factory.mktemp("data")
    yy, xx = np.mgrid[0:48, 0:48]
    for split, n, offset in (("train", 4, 0), ("val", 1, 10)):
        (root / split).mkdir()
        for i in range(n):
            rng = np.random.default_rng(i + offset)
            img = 128 + 60 * np.sin(xx / (3 + i)) * np.cos(yy / (4 + i)) + rng.normal(0, 10, (48, 48))
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / split / f"{i}.png")
    return root


def _train(settings: dict, out: Path, resume: bool = False) -> dict:
    """In-process training that leaves torch's thread count as it found it."""
    threads = torch.get_num_threads()
    try:
        cfg = load_config(None, [f"{k}={json.dumps(v)}" for k, v in settings.items()])
        return train(cfg, out, resume=resume, progress=False)
    finally:
        torch.set_num_threads(threads)


def _weights(run: Path, name: str = "last") -> dict[str, torch.Tensor]:
    return load_file(str(run / f"{name}.safetensors"))


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory) -> Path:
    """The uninterrupted run every interrupted one must end up equal to."""
    out = tmp_path_factory.mktemp("reference") / "run"
    _train(_settings(data), out)
    return out


# -- configuration ---------------------------------------------------------------------------

CONFIG_ERRORS = [
    ({"modle": "fsrcnn"}, r"unknown key\(s\) modle; valid keys: augment, batch_size, "),
    ({"batch_size": "big"}, r"batch_size: expected an integer, got 'big'"),
    ({"batch_size": -4}, r"batch_size: must be >= 1, got -4"),
    ({"lr_patch": 0}, r"lr_patch: must be >= 1, got 0"),
    ({"iterations": 2.5}, r"iterations: expected an integer"),
    ({"lr": -0.1}, r"lr: must be > 0"),
    ({"augment": "maybe"}, r"augment: expected true or false"),
    ({"scale": 9}, r"scale: 9 is not supported \(allowed: 1 to 8\)"),
    ({"scale": 0}, r"scale: must be >= 1, got 0"),
    ({"scale": 2.5}, r"scale: expected an integer, got 2.5"),
    ({"model": "bicubic"}, r"model: unknown 'bicubic'; choose one of: espcn, fsrcnn, fsrcnn_s"),
    ({"schedule": "linear"}, r"schedule: 'linear' is not one of: constant, step, multistep, cosine"),
    ({"model_args": {"dd": 3}}, r"model_args: dd not accepted by fsrcnn \(allowed: channels, d, s, m; scale is its own key\)"),
    ({"model_args": {"scale": 3}}, r"model_args: scale not accepted by fsrcnn"),
    ({"model_args": {"d": -1}}, r"model_args: fsrcnn cannot be built with \{'d': -1\}"),
    ({"model_args": [1, 2]}, r"model_args: expected a dict"),
    ({"scale_augment": [2.0]}, r"scale_augment: factors must be in \(0, 1\]"),
    ({"scale_augment": ["a"]}, r"scale_augment: expected a list of numbers"),
    ({"detail_oversample": 0.5}, r"detail_oversample: must be a number >= 1, got 0.5"),
    ({"milestones": [100, "a"]}, r"milestones: expected a list of iterations"),
    ({"grad_clip": -1}, r"grad_clip: must be > 0 or null"),
    ({"gamma": 0}, r"gamma: must be > 0"),
    ({"weight_decay": -1}, r"weight_decay: must be >= 0"),
    ({"min_lr_ratio": 2}, r"min_lr_ratio: must be in \[0, 1\]"),
    ({"threads": 0}, r"threads: must be >= 1 or null"),
    ({"device": "tpu"}, r"device: 'tpu' is not one of: auto, cpu, cuda, cuda:N, mps"),
    ({"lr_multipliers": {"deconvolution": "a"}}, r"lr_multipliers: factors must be numbers >= 0"),
    ({"val_limit": 0}, r"val_limit: must be >= 1 or null"),
    ({"warmup": -5}, r"warmup: must be >= 0"),
]


@pytest.mark.parametrize("settings, message", CONFIG_ERRORS, ids=[next(iter(s)) + "=" + str(next(iter(s.values()))) for s, _ in CONFIG_ERRORS])
def test_bad_config_names_the_key(settings, message, tmp_path, capsys):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(settings))
    with pytest.raises(ConfigError, match=message):
        load_config(path)
    capsys.readouterr()
    out = tmp_path / "run"
    assert main(["--quiet", "train", "--config", str(path), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("srlab train: error: "), err
    assert not out.exists()  # refused before anything was written


@pytest.mark.parametrize("text, message", [("[1, 2]\n", r"expected a mapping of key: value"), ("a: [1\n", r"not valid YAML \(while parsing")])
def test_config_file_that_is_not_a_mapping(text, message, tmp_path, capsys):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    capsys.readouterr()
    assert main(["--quiet", "train", "--config", str(path), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(message, err[0]) and str(path) in err[0], err


# -- unwritable output -------------------------------------------------------------------------


def test_output_under_a_file_fails_before_training(data, tmp_path, monkeypatch, capsys):
    """A run folder that cannot exist (its parent is a file) fails even for root, before any data is read."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    out = blocker / "run"

    def never(*args, **kwargs):
        raise AssertionError("training data was loaded before the output folder was checked")

    monkeypatch.setattr("srlab.train.trainer._make_sampler", never)
    with pytest.raises(RunDirError, match=r"not-a-folder/run: cannot write checkpoints here"):
        _train(_settings(data), out)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_settings(data)))
    capsys.readouterr()
    assert main(["--quiet", "train", "--config", str(path), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write checkpoints here" in err[0], err


@pytest.mark.skipif(IS_ROOT, reason="running as root: root writes into read-only folders, so chmod proves nothing")
def test_read_only_output_fails_before_training(data, tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    try:
        with pytest.raises(RunDirError, match="cannot write checkpoints here"):
            _train(_settings(data), out / "run")
    finally:
        out.chmod(0o755)


def test_existing_run_needs_resume(reference, data):
    with pytest.raises(RunDirError, match="already holds a run; pass --resume"):
        _train(_settings(data), reference)


# -- divergence --------------------------------------------------------------------------------


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(data, tmp_path, monkeypatch, capsys):
    """NaN data at step 47 makes the loss NaN: the run stops there; `last` is step 40's, exactly."""
    settings = _settings(data, schedule="constant")
    good = tmp_path / "good"
    _train({**settings, "iterations": 40}, good)  # constant lr: 40 steps are the first 40 steps of any run

    real = PatchSampler.sample
    calls = {"n": 0}

    def poisoned(self, batch_size):
        lr, hr = real(self, batch_size)
        calls["n"] += 1
        if calls["n"] == 47:
            lr = lr.clone()
            lr[0, 0, 0, 0] = float("nan")
        return lr, hr

    monkeypatch.setattr(PatchSampler, "sample", poisoned)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(settings))
    out = tmp_path / "run"
    capsys.readouterr()
    assert main(["--quiet", "train", "--config", str(path), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "loss became nan at iteration 46; stopped" in err[0] and "last good checkpoint" in err[0], err
    assert json.loads((out / "last.json").read_text())["iteration"] == 40
    assert _same(_weights(out), _weights(good))
    assert all(torch.isfinite(v).all() for v in _weights(out).values())
    srlab.load_model(out / "last")  # loadable, sidecar and weights agree


def test_weights_that_turn_nan_are_never_saved(data, tmp_path, monkeypatch):
    """A finite loss, then a step that breaks the weights right before a checkpoint: nothing is saved."""
    settings = _settings(data, schedule="constant")
    good = tmp_path / "good"
    _train({**settings, "iterations": 20}, good)
    real = torch.optim.Adam.step
    calls = {"n": 0}

    def breaking_step(self, *args, **kwargs):
        result = real(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 40:  # step 40 = checkpoint 2
            self.param_groups[0]["params"][0].data[0].fill_(float("inf"))
        return result

    monkeypatch.setattr(torch.optim.Adam, "step", breaking_step)
    out = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=r"weights became NaN or infinite at iteration 40 \(feature_extraction\.0\.weight\); stopped without saving"):
        _train(settings, out)
    assert json.loads((out / "last.json").read_text())["iteration"] == 20
    assert _same(_weights(out), _weights(good))


# -- atomic checkpoint writes ------------------------------------------------------------------


def test_disk_full_during_a_checkpoint_keeps_the_previous_one_and_resume_is_exact(reference, data, tmp_path, monkeypatch):
    """The 7th tensor file written (at the third checkpoint) dies half-way: the files it would have
    replaced stay whole, no temporary is left, and --resume ends equal to the uninterrupted run."""
    real = srlab.checkpoint.save_file
    calls = {"n": 0}

    def dying_save_file(tensors, filename, metadata=None):
        calls["n"] += 1
        if calls["n"] == 7:  # each checkpoint writes state, last and (when validation improved) best
            Path(filename).write_bytes(b"half a safetensors file")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(tensors, filename, metadata=metadata)

    monkeypatch.setattr(srlab.checkpoint, "save_file", dying_save_file)
    out = tmp_path / "run"
    with pytest.raises(OSError, match="No space left"):
        _train(_settings(data), out)
    monkeypatch.undo()
    assert _leftovers(out) == []
    step = json.loads((out / "last.state.json").read_text())["iteration"]
    assert step in (20, 40, 60) and step < ITERATIONS
    srlab.load_model(out / "last")  # whole and consistent
    _train(_settings(data), out, resume=True)
    assert _same(_weights(out), _weights(reference))


def test_stale_temporaries_do_not_break_resume(reference, data, tmp_path):
    """What a SIGKILL during a write leaves is removed on resume: ours (`.last.safetensors.XXXX.tmp.safetensors`)
    and safetensors' own (`.tmpXXXXXX`: since 0.8 `save_file` writes one and renames it; a kill in
    between left one in a random-kill run with SRLAB_KILL_SEED=random)."""
    settings = _settings(data, schedule="constant")
    whole = tmp_path / "whole"
    _train({**settings, "iterations": 60}, whole)
    mid = tmp_path / "mid"
    _train({**settings, "iterations": 40}, mid)
    junk = [mid / ".last.safetensors.k2j3h4.tmp.safetensors", mid / ".last.state.safetensors.a1b2c3.tmp.safetensors", mid / ".last.json.zz.tmp.json", mid / ".tmp14BWAX"]
    keep = mid / "notes.tmp.txt"  # not a temporary of ours: left alone
    keep.write_text("mine")
    for path in junk:
        path.write_bytes(b"\x00" * 100)
    _train({**settings, "iterations": 60}, mid, resume=True)
    assert not any(p.exists() for p in junk)
    assert keep.read_text() == "mine"
    assert json.loads((mid / "last.json").read_text())["iteration"] == 60
    assert _same(_weights(mid), _weights(whole))


# -- SIGKILL at random points --------------------------------------------------------------------


def _last_logged(metrics: Path) -> int:
    try:
        lines = metrics.read_text().splitlines()
    except FileNotFoundError:
        return 0
    for line in reversed(lines):
        try:
            return int(json.loads(line)["iteration"])
        except (ValueError, KeyError, TypeError):
            continue
    return 0


def test_sigkill_at_random_points_then_resume_is_exact(reference, data, tmp_path):
    """`srlab train` killed with SIGKILL three times at random steps, resumed each time, ends with the
    uninterrupted run's weights, bit for bit; the metrics log has no duplicate or broken lines."""
    # A fixed default seed keeps CI reproducible (377707 once exposed a write-order bug); set
    # SRLAB_KILL_SEED=random to explore new kill points, or a number to replay a failure.
    # Where a kill lands inside a step still varies with timing from run to run.
    chosen = os.environ.get("SRLAB_KILL_SEED", "377707")
    seed = time.time_ns() % 1_000_000 if chosen == "random" else int(chosen)
    rng = random.Random(seed)
    # The first kill always lands before the first checkpoint (step 20): a restart from scratch.
    targets = [rng.randrange(5, 20)] + sorted(rng.sample(range(20, ITERATIONS - 40), 2))
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(_settings(data)))
    out = tmp_path / "run"
    command = [sys.executable, "-m", "srlab", "--quiet", "train", "--out", str(out)]
    killed_at = []
    for k, target in enumerate(targets):
        argv = command + (["--resume"] if k else ["--config", str(config)])  # resumes find the run's own config
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while proc.poll() is None and _last_logged(out / "metrics.jsonl") < target and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.02))  # land anywhere: mid-step, mid-validation, mid-write
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, f"seed {seed}: run {k} ended on its own ({proc.stderr.read().decode()[-500:]})"
        killed_at.append(_last_logged(out / "metrics.jsonl"))
    final = subprocess.run(command + ["--resume"], capture_output=True, timeout=180)
    assert final.returncode == 0, f"seed {seed}, killed after steps {killed_at}: {final.stderr.decode()[-800:]}"
    assert _same(_weights(out), _weights(reference)), f"seed {seed}, killed after steps {killed_at}"
    assert _same(_weights(out, "best"), _weights(reference, "best")), f"seed {seed}"
    assert _leftovers(out) == [], f"seed {seed}, killed after steps {killed_at}"
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["iteration"] for r in logged if "loss" in r]
    assert losses == list(range(5, ITERATIONS + 1, 5)), f"seed {seed}: the log repeats or misses steps"
    assert json.loads((out / "last.json").read_text())["iteration"] == ITERATIONS
