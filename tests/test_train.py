"""`srlab train`: exact resume, NaN stop, config errors, fine-tuning, logs, plots, time budget, configs."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file

from srlab.checkpoint import load_model, save_model
from srlab.cli import main
from srlab.models import create_model
from srlab.train import ConfigError, TrainConfig, load_config, train
from srlab.train import trainer as trainer_module
from srlab.train.config import CALIBRATION_END
from srlab.train.ema import WeightAverage
from srlab.train.schedule import lr_factor

REPO = Path(__file__).resolve().parents[1]




@pytest.fixture
def tiny(image_folder, tmp_path):
    """A config file for a tiny FSRCNN on two generated images; returns (path, settings)."""
    settings = {
        "model": "fsrcnn", "scale": 2, "model_args": {"d": 8, "s": 4, "m": 1},
        "train_data": str(image_folder("train", n=2, size=(40, 36))),
        "val_data": str(image_folder("val", n=2, size=(30, 30), seed=5)), "val_limit": 1,
        "lr_patch": 6, "batch_size": 4, "iterations": 8, "val_every": 4, "log_every": 2,
        "lr": 3e-3, "seed": 0, "device": "cpu", "threads": 1,
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path, settings


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "last.safetensors"))


def _stop_at_iteration(monkeypatch, step: int):
    """Make runs stop at the start of ``step`` as Ctrl-C would; returns the function that undoes it."""
    real = trainer_module.lr_factor

    def interrupt(c, it):
        if it == step:
            raise KeyboardInterrupt
        return real(c, it)

    monkeypatch.setattr(trainer_module, "lr_factor", interrupt)
    return lambda: monkeypatch.setattr(trainer_module, "lr_factor", real)


def test_resume_is_exact(tiny, tmp_path, monkeypatch):
    cfg, _ = tiny
    assert main(["-q", "train", "--config", str(cfg), "--out", str(tmp_path / "straight")]) == 0

    # The same run, stopped at the start of step 4 (just after the step-4 checkpoint) ...
    carry_on = _stop_at_iteration(monkeypatch, 4)
    assert main(["-q", "train", "--config", str(cfg), "--out", str(tmp_path / "split")]) == 130
    assert json.loads((tmp_path / "split" / "last.json").read_text())["iteration"] == 4
    carry_on()
    # ... then resumed for the other half.
    assert main(["-q", "train", "--config", str(cfg), "--out", str(tmp_path / "split"), "--resume"]) == 0

    straight, split = _weights(tmp_path / "straight"), _weights(tmp_path / "split")
    assert straight.keys() == split.keys()
    for k in straight:
        assert torch.equal(straight[k], split[k]), f"{k} differs after resume"
    assert not torch.equal(straight["deconvolution.weight"], create_model("fsrcnn", 2, d=8, s=4, m=1).state_dict()["deconvolution.weight"])
    assert json.loads((tmp_path / "split" / "last.json").read_text())["iteration"] == 8
    iterations = [r["iteration"] for r in map(json.loads, (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()) if "loss" in r]
    assert iterations == [2, 4, 6, 8]  # no step logged twice


def test_run_folder_contents(tiny, tmp_path):
    cfg, settings = tiny
    run = tmp_path / "run"
    assert main(["-q", "train", "--config", str(cfg), "--set", "lr=0.002", "--out", str(run)]) == 0
    # config.yaml: every key, resolved (defaults + file + --set).
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert set(resolved) == set(TrainConfig().to_dict())
    assert resolved["lr"] == 0.002 and resolved["batch_size"] == 4 and resolved["schedule"] == TrainConfig().schedule
    # metrics.jsonl: loss every log_every steps, validation every val_every steps.
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r for r in rows if "loss" in r]
    vals = [r for r in rows if "val_psnr" in r]
    assert [r["iteration"] for r in losses] == [2, 4, 6, 8]
    assert [r["iteration"] for r in vals] == [4, 8]
    assert all(math.isfinite(r["loss"]) and r["loss"] > 0 and r["samples_per_s"] > 0 for r in losses)
    assert losses[0]["lr"] == pytest.approx(0.002 * lr_factor(load_config(cfg, ["lr=0.002"]), 1))
    assert all(0 < r["val_psnr"] < 60 and 0 < r["val_ssim"] <= 1 for r in vals)
    # Checkpoints: best is the best validation, last is the end; both rebuild from their sidecars.
    last, best = json.loads((run / "last.json").read_text()), json.loads((run / "best.json").read_text())
    assert last["iteration"] == 8 and best["metrics"]["val_psnr"] == max(r["val_psnr"] for r in vals)
    assert last["config"]["lr"] == 0.002
    assert load_model(run / "best").scale == 2
    # srlab plot draws both curves into a PNG.
    assert main(["-q", "plot", str(run)]) == 0
    png = Image.open(run / "curves.png")
    assert png.format == "PNG" and png.size[0] > 600
    assert np.asarray(png.convert("L")).std() > 5  # not a blank canvas
    assert main(["-q", "plot", str(tmp_path / "no-run")]) == 1


def test_keep_snapshots_saves_every_validation_step(tiny, tmp_path):
    cfg, _ = tiny
    run = tmp_path / "run"
    assert main(["-q", "train", "--config", str(cfg), "--set", "keep_snapshots=true", "--out", str(run)]) == 0
    snaps = sorted((run / "snapshots").glob("*.safetensors"))
    assert [p.name for p in snaps] == ["iter_00000004.safetensors", "iter_00000008.safetensors"]
    assert json.loads(snaps[0].with_suffix(".json").read_text())["iteration"] == 4
    first, final = load_file(str(snaps[0])), load_file(str(snaps[1]))
    assert all(torch.equal(final[k], v) for k, v in _weights(run).items())  # the last one is last.safetensors
    assert not torch.equal(first["deconvolution.weight"], final["deconvolution.weight"])  # and the first is earlier
    assert load_model(run / "snapshots" / "iter_00000004").scale == 2
    # Off by default: no folder.
    assert main(["-q", "train", "--config", str(cfg), "--out", str(tmp_path / "plain")]) == 0
    assert not (tmp_path / "plain" / "snapshots").exists()


def test_weight_average_blends_by_the_num_updates_rule():
    model = create_model("fsrcnn", 2, d=8, s=4, m=1)
    average = WeightAverage(model, 0.999)
    assert average.decay_after(0) == pytest.approx(0.1) and average.decay_after(90) == pytest.approx(0.91)
    assert average.decay_after(10**6) == 0.999
    before = {k: v.clone() for k, v in average.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    average.update(model, 90)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(average.state_dict()[k], 0.91 * before[k] + 0.09 * v)
    assert not any(p.requires_grad for p in average.model.parameters())
    with pytest.raises(ValueError, match="decay must be in"):
        WeightAverage(model, 1.0)


def test_ema_run_saves_the_average_and_steps_the_raw_weights_unchanged(tiny, tmp_path, monkeypatch):
    cfg, _ = tiny
    assert main(["-q", "train", "--config", str(cfg), "--out", str(tmp_path / "plain")]) == 0
    seen = []  # the raw weights after every optimizer step, as the average sees them
    real_update = WeightAverage.update

    def record(self, model, updates):
        seen.append((updates, {k: v.clone() for k, v in model.state_dict().items()}))
        real_update(self, model, updates)

    monkeypatch.setattr(WeightAverage, "update", record)
    run = tmp_path / "ema"
    assert main(["-q", "train", "--config", str(cfg), "--set", "ema_decay=0.9", "--set", "keep_snapshots=true", "--out", str(run)]) == 0
    assert [n for n, _ in seen] == list(range(8))
    # The optimizer's path is the plain run's: the raw weights in the state match its last file.
    raw = {k[len("model.") :]: v for k, v in load_file(str(run / "last.state.safetensors")).items() if k.startswith("model.")}
    assert all(torch.equal(raw[k], v) for k, v in _weights(tmp_path / "plain").items())
    # What last (and the step-8 snapshot) hold is the average, computed here by hand.
    expected = {k: v.clone() for k, v in load_file(str(run / "snapshots" / "iter_00000004.safetensors")).items()}
    for n, weights in seen[4:]:
        d = min(0.9, (1 + n) / (10 + n))
        expected = {k: d * expected[k] + (1 - d) * weights[k] for k in expected}
    last = _weights(run)
    for k in last:
        torch.testing.assert_close(last[k], expected[k])
    assert not torch.equal(last["deconvolution.weight"], raw["deconvolution.weight"])
    # Validation scored the average: the logged PSNR is that of the saved file.
    val = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if "val_psnr" in line][-1]
    assert json.loads((run / "last.json").read_text())["metrics"]["val_psnr"] == val["val_psnr"]
    assert json.loads((run / "last.json").read_text())["config"]["ema_decay"] == 0.9


def test_ema_run_resumes_exactly(tiny, tmp_path, monkeypatch):
    cfg, _ = tiny
    ema = ["--set", "ema_decay=0.9"]
    assert main(["-q", "train", "--config", str(cfg), *ema, "--out", str(tmp_path / "straight")]) == 0
    carry_on = _stop_at_iteration(monkeypatch, 4)
    assert main(["-q", "train", "--config", str(cfg), *ema, "--out", str(tmp_path / "split")]) == 130
    carry_on()
    assert main(["-q", "train", "--config", str(cfg), *ema, "--out", str(tmp_path / "split"), "--resume"]) == 0
    straight, split = _weights(tmp_path / "straight"), _weights(tmp_path / "split")
    for k in straight:
        assert torch.equal(straight[k], split[k]), f"{k} of the average differs after resume"


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tiny, tmp_path, monkeypatch, capsys):
    cfg, _ = tiny
    run = tmp_path / "run"
    real = torch.nn.functional.mse_loss
    calls = {"n": 0}

    def poisoned(a, b):
        calls["n"] += 1
        loss = real(a, b)
        return loss * float("nan") if calls["n"] == 6 else loss  # step 5 (0-based): after the step-4 checkpoint

    monkeypatch.setattr(trainer_module.F, "mse_loss", poisoned)
    assert main(["train", "--config", str(cfg), "--out", str(run)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "loss became nan at iteration 5" in err[0] and "last good checkpoint" in err[0]
    meta = json.loads((run / "last.json").read_text())
    assert meta["iteration"] == 4
    model = load_model(run / "last")
    assert all(torch.isfinite(p).all() for p in model.parameters())
    before = _weights(run)
    # lr = 1e30 blows the weights up at once: a clear stop too, and the earlier checkpoint is untouched.
    monkeypatch.setattr(trainer_module.F, "mse_loss", real)
    assert main(["train", "--config", str(cfg), "--set", "lr=1e30", "--out", str(tmp_path / "huge")]) == 1
    err = capsys.readouterr().err
    assert "became" in err and ("nan" in err.lower() or "inf" in err.lower()) and "lower lr" in err
    assert not (tmp_path / "huge" / "last.json").exists()
    after = _weights(run)
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize(
    "override, message",
    [
        ("learning_rate=0.1", r"unknown key\(s\) learning_rate; valid keys: .*batch_size.*lr.*"),
        ("optimizer=rmsprop", r"optimizer: 'rmsprop' is not one of: adam, sgd"),
        ("schedule=linear", r"schedule: 'linear' is not one of: constant, step, multistep, cosine"),
        ("model=vdsr", r"model: unknown 'vdsr'; choose one of: .*fsrcnn"),
        ("batch_size=0", r"batch_size: must be >= 1"),
        ("batch_size=many", r"batch_size: expected an integer"),
        ("lr=-1", r"lr: must be > 0"),
        ("loss_border=-1", r"loss_border: must be >= 0"),
        ("loss_border=17", r"loss_border: 17 on each side leaves nothing of the 33x33 HR patch"),
        ("precision=fp16", r"precision: 'fp16' is not one of: fp32, bf16"),
        ("ema_decay=1", r"ema_decay: must be in \[0, 1\) \(0 = off; e.g. 0.999\), got 1.0"),
    ],
)
def test_config_errors_list_what_is_valid(override, message, capsys, tmp_path):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])
    assert main(["train", "--set", override, "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("srlab train: error:")
    assert not (tmp_path / "r").exists()


def test_loss_border_leaves_the_patch_edge_out_of_the_loss():
    torch.manual_seed(0)
    sr, hr = torch.rand(2, 1, 12, 12), torch.rand(2, 1, 12, 12)
    inner = (slice(None), slice(None), slice(3, 9), slice(3, 9))
    assert trainer_module.patch_loss(sr, hr, "mse", 3).item() == pytest.approx(((sr[inner] - hr[inner]) ** 2).mean().item())
    assert trainer_module.patch_loss(sr, hr, "l1", 3).item() == pytest.approx((sr[inner] - hr[inner]).abs().mean().item())
    assert trainer_module.patch_loss(sr, hr, "mse", 0).item() == pytest.approx(((sr - hr) ** 2).mean().item())
    # Changing the outer 3 pixels of the target changes nothing; one pixel inside does.
    edged = hr.clone()
    edged[..., :3, :] = 5.0
    edged[..., :, -3:] = -5.0
    assert trainer_module.patch_loss(sr, edged, "mse", 3).item() == trainer_module.patch_loss(sr, hr, "mse", 3).item()
    edged[0, 0, 3, 3] += 1.0
    assert trainer_module.patch_loss(sr, edged, "mse", 3).item() > trainer_module.patch_loss(sr, hr, "mse", 3).item()


def test_train_takes_every_loss_with_the_configured_border(tiny, tmp_path, monkeypatch):
    """Every step's loss is taken with the configured border, and the config records it."""
    cfg, _ = tiny
    seen = []
    real = trainer_module.patch_loss

    def spy(sr, hr, loss, border):
        seen.append((tuple(sr.shape), border))
        return real(sr, hr, loss, border)

    monkeypatch.setattr(trainer_module, "patch_loss", spy)
    run = tmp_path / "border"
    assert main(["-q", "train", "--config", str(cfg), "--set", "loss_border=2", "--out", str(run)]) == 0
    assert seen and all(shape == (4, 1, 12, 12) and border == 2 for shape, border in seen)
    assert yaml.safe_load((run / "config.yaml").read_text())["loss_border"] == 2
    assert all(torch.isfinite(t).all() for t in _weights(run).values())


@pytest.mark.parametrize("precision, train_dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_precision_sets_the_training_forward_and_nothing_else(precision, train_dtype, tiny, tmp_path, monkeypatch):
    """bf16 runs the training forward in autocast; validation and the saved weights stay float32."""
    cfg, _ = tiny
    outputs, losses = [], []
    real_create, real_loss = trainer_module.create_model, trainer_module.patch_loss

    def create(*args, **kwargs):
        model = real_create(*args, **kwargs)
        model.register_forward_hook(lambda module, inputs, out: outputs.append((module.training, out.dtype)))
        return model

    def loss(sr, hr, kind, border):
        losses.append(sr.dtype)
        return real_loss(sr, hr, kind, border)

    monkeypatch.setattr(trainer_module, "create_model", create)
    monkeypatch.setattr(trainer_module, "patch_loss", loss)
    run = tmp_path / precision
    assert main(["-q", "train", "--config", str(cfg), "--set", f"precision={precision}", "--out", str(run)]) == 0
    assert [dtype for training, dtype in outputs if training] == [train_dtype] * 8
    assert {dtype for training, dtype in outputs if not training} == {torch.float32}  # validation
    assert losses == [torch.float32] * 8  # the loss is taken in float32 either way
    weights = _weights(run)
    assert all(t.dtype == torch.float32 and torch.isfinite(t).all() for t in weights.values())
    assert yaml.safe_load((run / "config.yaml").read_text())["precision"] == precision


@pytest.mark.parametrize("native", [True, False])
def test_bf16_on_a_cpu_without_native_bfloat16_warns(native, tiny, tmp_path, monkeypatch, caplog):
    """Emulated bfloat16 is slower than float32 (2.4x on an AVX2-only EPYC), so say so."""
    cfg, _ = tiny
    monkeypatch.setattr(trainer_module, "native_bf16", lambda: native)
    with caplog.at_level(logging.WARNING, logger="srlab.train.trainer"):
        train(load_config(cfg, ["precision=bf16"]), tmp_path / "r", progress=False)
    warned = [r.getMessage() for r in caplog.records if "no bfloat16 support" in r.getMessage()]
    assert len(warned) == (0 if native else 1)


def test_unknown_key_in_a_file_is_an_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: fsrcnn\nbatchsize: 3\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) batchsize; valid keys: "):
        load_config(path)


def test_missing_training_data_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SRLAB_DATA", str(tmp_path / "empty-root"))
    assert main(["train", "--set", "train_data=BSDS500/train", "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert "BSDS500/train" in err and "srlab data fetch bsds500" in err


def test_init_from_with_reinit_of_the_last_part(tiny, tmp_path):
    """The FSRCNN paper's transfer: train x3, then fine-tune x2 with the deconvolution re-initialised."""
    cfg, _ = tiny
    torch.manual_seed(3)
    source = create_model("fsrcnn", 3, d=8, s=4, m=1)
    with torch.no_grad():  # make every source tensor unmistakable
        for p in source.parameters():
            p.fill_(0.05)
    # The source is itself a continuation: 1000 s of its own on top of 234.5 s before it.
    save_model(source, tmp_path / "x3", elapsed_s=1000.0, init_from_elapsed_s=234.5)
    run = tmp_path / "x2"
    # One step at a negligible lr: what we see is what init_from/reinit produced.
    args = ["-q", "train", "--config", str(cfg), "--set", "iterations=1", "--set", "lr=1e-12", "--set", "val_every=1"]
    assert main([*args, "--init-from", str(tmp_path / "x3.safetensors"), "--reinit", "last_part", "--out", str(run)]) == 0
    got, src = _weights(run), source.state_dict()
    for k, v in got.items():
        if k.startswith("deconvolution."):
            assert (v - src[k]).abs().max() > 1e-2, f"{k} was not re-initialised"
        else:
            torch.testing.assert_close(v, src[k], atol=1e-8, rtol=0, msg=f"{k} was not copied from the source")
    # The deconvolution got the paper's fresh init, not leftovers: N(0, 0.001), zero bias.
    assert got["deconvolution.weight"].std().item() < 0.01 and got["deconvolution.bias"].abs().max() < 1e-6
    # All the source's training time (its run's and its lineage's) travels with the run's
    # checkpoints (time-to-quality), also after the source file is replaced, and through
    # the resumable state.
    assert json.loads((run / "last.json").read_text())["init_from_elapsed_s"] == 1234.5
    save_model(source, tmp_path / "x3", elapsed_s=99.0)
    assert main(["-q", "train", "--out", str(run), "--resume", "--set", "iterations=2"]) == 0
    assert json.loads((run / "last.json").read_text())["init_from_elapsed_s"] == 1234.5
    # Without reinit every tensor comes from the source.
    run2 = tmp_path / "x2-all"
    assert main([*args, "--init-from", str(tmp_path / "x3.safetensors"), "--out", str(run2)]) == 0
    for k, v in _weights(run2).items():
        torch.testing.assert_close(v, src[k], atol=1e-8, rtol=0)


def test_reinit_needs_init_from_and_mismatched_sources_are_named(tiny, tmp_path):
    cfg, _ = tiny
    with pytest.raises(ConfigError, match="reinit: needs init_from"):
        load_config(cfg, ["reinit=[deconvolution]"])
    save_model(create_model("fsrcnn", 2, d=16, s=4, m=1), tmp_path / "wide")
    with pytest.raises(ValueError, match=r"tensors that do not fit fsrcnn x2: .*feature_extraction\.0\.weight"):
        train(load_config(cfg, [f"init_from={tmp_path / 'wide.safetensors'}"]), tmp_path / "r", progress=False)


def test_time_budget_calibrates_iterations_and_writes_them(tiny, tmp_path, caplog):
    cfg, _ = tiny
    base = ["iterations=1000000", f"warmup={CALIBRATION_END}", "val_every=100000", "log_every=50", "lr_patch=4", "batch_size=2"]
    # A budget that the calibration steps alone exceed: the run ends right after them.
    run = tmp_path / "tiny-budget"
    summary = train(load_config(cfg, [*base, "time_budget_s=0.05"]), run, progress=False)
    written = yaml.safe_load((run / "config.yaml").read_text())
    assert summary["iterations"] == written["iterations"] == CALIBRATION_END + 1
    assert json.loads((run / "last.json").read_text())["iteration"] == CALIBRATION_END + 1
    # A real budget: iterations re-set from the measured speed, written to config.yaml, and the
    # run takes about the budget (loosely: the machine may be shared).
    # A long flat part (decay_start=0.9) lets a fast machine measure a second time, halfway
    # through it; the count written is the last one planned.
    run = tmp_path / "budget"
    with caplog.at_level(logging.INFO, logger="srlab.train.trainer"):
        summary = train(load_config(cfg, [*base, "time_budget_s=2", "decay_start=0.9"]), run, progress=False)
    plans = [r.getMessage() for r in caplog.records if "training for" in r.getMessage()]
    assert len(plans) in (1, 2) and f"at iteration {CALIBRATION_END}," in plans[0]
    written = yaml.safe_load((run / "config.yaml").read_text())
    assert plans[-1].endswith(f"training for {written['iterations']} iterations")
    assert CALIBRATION_END + 1 < summary["iterations"] == written["iterations"] < 1000000
    assert written["time_budget_s"] == 2 and written["val_every"] >= written["iterations"] // 25
    last = json.loads((run / "last.json").read_text())
    assert last["iteration"] == written["iterations"] and last["elapsed_s"] < 3 * 2 + 2
    with pytest.raises(ConfigError, match="time_budget_s: needs warmup >= 300"):
        load_config(cfg, ["time_budget_s=60"])


def test_lr_multipliers_and_schedules(tiny):
    cfg, _ = tiny
    c = load_config(cfg, ["lr_multipliers={deconvolution: 0.1}", "schedule=multistep", "milestones=[2, 5]", "gamma=0.5"])
    model = create_model("fsrcnn", 2, d=8, s=4, m=1)
    opt = trainer_module._make_optimizer(model, c)
    by_mult = {g["lr_mult"]: g for g in opt.param_groups}
    assert set(by_mult) == {1.0, 0.1}
    assert {id(p) for p in by_mult[0.1]["params"]} == {id(model.deconvolution.weight), id(model.deconvolution.bias)}
    assert [lr_factor(c, i) for i in (0, 1, 2, 4, 5, 9)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    cos = load_config(cfg, ["schedule=cosine", "iterations=100", "decay_start=0.5", "min_lr_ratio=0.1"])
    assert lr_factor(cos, 10) == 1.0 and lr_factor(cos, 75) == pytest.approx(0.1 + 0.9 * 0.5)
    assert lr_factor(cos, 100) == pytest.approx(0.1)
    warm = load_config(cfg, ["warmup=4", "schedule=constant"])
    assert [lr_factor(warm, i) for i in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    step = load_config(cfg, ["schedule=step", "step_size=3", "gamma=0.1"])
    assert lr_factor(step, 2) == 1.0 and lr_factor(step, 3) == pytest.approx(0.1) and lr_factor(step, 6) == pytest.approx(0.01)
    sgd = trainer_module._make_optimizer(model, load_config(cfg, ["optimizer=sgd", "momentum=0.8"]))
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["momentum"] == 0.8


def test_l1_loss_and_reference_dataset_train(tiny, tmp_path, image_folder):
    cfg, _ = tiny
    big = image_folder("big", n=2, size=(40, 40))
    summary = train(
        load_config(cfg, ["loss=l1", "iterations=2", "val_every=2", "dataset=reference", "reference_crop=30",
                          f"train_data={big}", "model=srcnn_ref", "model_args={}", "batch_size=2"]),
        tmp_path / "ref", progress=False,
    )
    assert summary["iterations"] == 2 and math.isfinite(summary["best_val_psnr"])  # validated in restore mode
    assert load_model(tmp_path / "ref" / "last").scale == 1  # the reference restores the bicubic image


CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


def test_paper_configs_exist():
    names = {p.stem for p in CONFIGS}
    assert names >= {"fsrcnn_x2", "fsrcnn_x3", "fsrcnn_x4", "srcnn_955_x2", "srcnn_955_x3", "srcnn_955_x4", "espcn_x3",
                     "reference_srcnn", "reference_fsrcnn"}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_configs_load_and_validate(path):
    cfg = load_config(path)
    expected_model = {"reference_srcnn": "srcnn_ref", "reference_fsrcnn": "fsrcnn"}.get(path.stem, path.stem.rsplit("_x", 1)[0])
    assert cfg.model == expected_model
    # A multiplier whose prefix names no parameter would silently do nothing.
    names = [n for n, _ in create_model(cfg.model, cfg.scale, **cfg.model_args).named_parameters()]
    for prefix in cfg.lr_multipliers:
        assert any(n.startswith(prefix) for n in names), f"lr_multipliers: {prefix!r} matches no parameter of {cfg.model}"
    if path.stem.startswith(("fsrcnn", "srcnn", "espcn")):
        assert f"x{cfg.scale}" in path.stem and cfg.dataset == "patches" and cfg.train_data == "BSDS500/train"


@pytest.mark.parametrize("name, model", [("reference_srcnn", "srcnn_ref"), ("reference_fsrcnn", "fsrcnn")])
def test_reference_configs_reproduce_the_reference_setting(name, model):
    cfg = load_config(REPO / "configs" / f"{name}.yaml")
    epoch = math.ceil(200 / cfg.batch_size)  # 200 BSDS500 training images, one crop each per epoch
    assert cfg.model == model and cfg.dataset == "reference" and cfg.reference_crop == 300
    assert cfg.optimizer == "adam" and cfg.lr == 1e-2 and cfg.loss == "mse"
    assert cfg.schedule == "multistep" and cfg.gamma == 0.1 and cfg.milestones == [50 * epoch, 75 * epoch, 100 * epoch]
    assert cfg.iterations == 500 * epoch and cfg.val_every == epoch  # validate every epoch, keep the best
    assert cfg.val_data == "BSDS500/val" and cfg.val_limit is None and cfg.augment is False


def test_time_budget_arithmetic(monkeypatch):
    from srlab.train.trainer import TimeBudget

    clock = iter([10.0, 15.0])
    monkeypatch.setattr(trainer_module.time, "perf_counter", lambda: next(clock))
    budget = TimeBudget(100.0, started=0.0)
    assert budget.plan(49) is None and budget.plan(50) is None  # iteration 50 starts the stopwatch (t=10)
    assert budget.plan(51) is None
    # Iteration 300 at t=15: 250 iterations in 5 s = 50 it/s; 85 s left, 90% of them used.
    assert budget.plan(300) == 300 + int(50 * 85 * 0.9)
    assert budget.rate == pytest.approx(50.0)
    # A budget already spent still trains one more step rather than none.
    clock = iter([1.0, 2.0])
    late = TimeBudget(1.0, started=0.0)
    late.plan(50)
    assert late.plan(300) == 301


def _committed_budget(monkeypatch, seconds: float, clock_reads: list[float]):
    """A time budget for a cosine run flat for its first 10%, on a clock that reads
    ``clock_reads`` in turn; returns it and the config it planned at iteration 300."""
    from srlab.train.trainer import TimeBudget

    clock = iter(clock_reads)
    monkeypatch.setattr(trainer_module.time, "perf_counter", lambda: next(clock))
    cfg = TrainConfig(schedule="cosine", warmup=300, decay_start=0.1, time_budget_s=seconds)
    budget = TimeBudget(seconds, started=0.0)
    budget.plan(50)
    cfg.iterations = budget.plan(300)
    budget.commit(cfg)
    return budget, cfg


def test_time_budget_measures_again_inside_the_flat_part_of_the_schedule(monkeypatch):
    from srlab.train.schedule import count_free_steps

    budget, cfg = _committed_budget(monkeypatch, 1000.0, [10.0, 15.0, 45.0])
    assert cfg.iterations == 300 + int(50 * 985 * 0.9)  # 50 it/s, 985 s left, 90% of them: 44,625
    # Halfway through the 4,462 flat steps; the schedule up to there does not depend on the count.
    assert budget.replan_at == count_free_steps(cfg) // 2 == 2231
    assert budget.plan(2230) is None
    # Iteration 2231 at t=45: 1931 steps in 30 s (64.4 it/s, faster than the short first
    # measurement); 955 s left, 95% of them.
    again = budget.plan(2231)
    assert budget.rate == pytest.approx(1931 / 30)
    assert again == 2231 + int(1931 / 30 * 955 * 0.95) == 60_627
    assert int(0.1 * again) >= 2231  # the lr stays flat past the steps already taken
    cfg.iterations = again
    budget.commit(cfg)  # the second count is final: no third measurement
    assert budget.replan_at is None and budget.plan(count_free_steps(cfg) // 2) is None


def test_time_budget_never_moves_a_learning_rate_already_used(monkeypatch):
    # The machine became 50 times slower after calibration: the time left asks for fewer steps
    # than the flat part already taken allows, so the count stops at the shortest that keeps it.
    budget, first = _committed_budget(monkeypatch, 100.0, [0.0, 1.0, 1000.0])
    assert first.iterations == 22_575  # 250 it/s, 99 s left, 90% of them
    it = budget.replan_at
    assert it == 1128  # half of the 2,257 flat steps
    shortened = dataclasses.replace(first, iterations=budget.plan(it))
    # The time left asks for one more step; the flat part must still reach iteration 1128:
    # 0.1 * N >= 1128.
    assert shortened.iterations == 11_280
    assert [lr_factor(shortened, i) for i in range(it)] == [lr_factor(first, i) for i in range(it)]


def test_time_budget_keeps_the_first_count_when_the_flat_part_is_short():
    from srlab.train.trainer import TimeBudget

    # decay_start=0 on a cosine: after warm-up every rate depends on the count; nothing to re-plan.
    budget = TimeBudget(100.0, started=0.0)
    budget._t_calibrated = 1.0  # as if calibration had run
    budget.commit(TrainConfig(schedule="cosine", warmup=300, decay_start=0.0, iterations=50_000))
    assert budget.replan_at is None
    # A step schedule never depends on the count: measure again halfway through the run.
    budget.commit(TrainConfig(schedule="step", warmup=300, iterations=50_000))
    assert budget.replan_at == 25_000


def _average_snapshots(*args) -> subprocess.CompletedProcess:
    """Run scripts/average_snapshots.py as a user would, with its arguments as strings."""
    script = REPO / "scripts" / "average_snapshots.py"
    return subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True, text=True)


def test_average_snapshots_script_averages_the_newest_k(tiny, tmp_path):
    cfg, _ = tiny
    run = tmp_path / "run"
    assert main(["-q", "train", "--config", str(cfg), "--set", "val_every=2", "--set", "keep_snapshots=true", "--out", str(run)]) == 0
    out = tmp_path / "avg"
    done = _average_snapshots(run / "snapshots", "--last", "3", "--out", out)
    assert done.returncode == 0, done.stderr
    snaps = [load_file(str(run / "snapshots" / f"iter_{i:08d}.safetensors")) for i in (4, 6, 8)]
    averaged = load_file(str(out) + ".safetensors")
    for k in averaged:
        torch.testing.assert_close(averaged[k], sum(s[k] for s in snaps) / 3)
    assert json.loads((tmp_path / "avg.json").read_text())["averaged_from"] == [f"iter_{i:08d}.safetensors" for i in (4, 6, 8)]
    assert load_model(out).scale == 2
    one = _average_snapshots(tmp_path / "nothing", "--last", "3", "--out", out)
    assert one.returncode == 1 and "needs at least 2 snapshots" in one.stderr


def test_average_snapshots_script_soups_runs_from_the_same_start(tiny, tmp_path):
    """Two runs continued from one checkpoint with different seeds average into one file whose
    training time counts both runs; runs from different starts are refused."""
    cfg, _ = tiny
    start = tmp_path / "start"
    assert main(["-q", "train", "--config", str(cfg), "--out", str(start)]) == 0
    runs = [tmp_path / f"seed{seed}" for seed in (1, 2)]
    for seed, run in zip((1, 2), runs):
        assert main(["-q", "train", "--config", str(cfg), "--init-from", str(start / "last.safetensors"),
                     "--set", f"seed={seed}", "--out", str(run)]) == 0
    out = tmp_path / "soup"
    done = _average_snapshots(*(r / "last.safetensors" for r in runs), "--out", out)
    assert done.returncode == 0, done.stderr
    a, b = (_weights(r) for r in runs)
    assert any(not torch.equal(a[k], b[k]) for k in a)  # the seeds really differ
    soup = load_file(str(out) + ".safetensors")
    for k in soup:
        torch.testing.assert_close(soup[k], (a[k] + b[k]) / 2)
    meta = json.loads((tmp_path / "soup.json").read_text())
    elapsed = [json.loads((r / "last.json").read_text())["elapsed_s"] for r in runs]
    assert meta["elapsed_s"] == pytest.approx(sum(elapsed))
    assert meta["averaged_from"] == [str(r / "last.safetensors") for r in runs]
    mixed = _average_snapshots(start / "last.safetensors", runs[0] / "last.safetensors", "--out", tmp_path / "bad")
    assert mixed.returncode == 1 and "started from different weights" in mixed.stderr
    assert not (tmp_path / "bad.safetensors").exists()
    # The same path with new weights behind it (as a shipped file is replaced) is a different start.
    for suffix in (".safetensors", ".json"):
        shutil.copy(runs[0] / f"last{suffix}", start / f"last{suffix}")
    later = tmp_path / "later"
    assert main(["-q", "train", "--config", str(cfg), "--init-from", str(start / "last.safetensors"), "--out", str(later)]) == 0
    replaced = _average_snapshots(runs[1] / "last.safetensors", later / "last.safetensors", "--out", tmp_path / "bad")
    assert replaced.returncode == 1 and "started from different weights" in replaced.stderr
    # Two fresh runs share a start (none) but not a model.
    other = tmp_path / "x3"
    assert main(["-q", "train", "--config", str(cfg), "--set", "scale=3", "--out", str(other)]) == 0
    scales = _average_snapshots(start / "last.safetensors", other / "last.safetensors", "--out", tmp_path / "bad")
    assert scales.returncode == 1 and "different models (fsrcnn x2, fsrcnn x3)" in scales.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_missing_gpu_is_one_line_and_leaves_no_run_folder(tiny, tmp_path, capsys):
    path, _ = tiny
    out = tmp_path / "run"
    assert main(["train", "--config", str(path), "--out", str(out), "--set", "device=cuda"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("srlab train: error: device 'cuda': CUDA is not available (")
    assert not out.exists()
