"""The training loop: patches in, checkpoints and a metrics log out.

``train(cfg, out_dir)`` runs ``cfg.iterations`` optimizer steps; every
``cfg.val_every`` steps it scores the validation folder under the paper
protocol and writes ``last`` (weights + resumable state) and, when the
validation PSNR improved, ``best``. ``resume=True`` continues from ``last``
exactly: the learning rate is a function of the iteration and the sampler's
RNG state is saved, so N steps equal N/2 + resume + N/2.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn
from tqdm import tqdm

from ..checkpoint import load_model, load_train_state, save_model, save_train_state, training_time_s
from ..data import CenterCropSampler, PatchSampler, load_y_images
from ..device import native_bf16
from ..imageio import atomic_write
from ..imresize import imresize
from ..models import create_model
from ..protocol import score_image
from . import distributed
from .config import CALIBRATION_END, CALIBRATION_START, TrainConfig
from .ema import WeightAverage
from .schedule import count_free_steps, lr_factor

__all__ = ["train", "patch_loss", "TimeBudget", "TrainingDiverged", "RunDirError"]

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint was left as it was."""


class RunDirError(ValueError):
    """The run folder cannot be used (exists without --resume, or is not writable)."""


def _last_parameterised(model: nn.Module) -> str:
    return [name for name, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))][-1]


def _init_from(model: nn.Module, cfg: TrainConfig) -> float | None:
    """Copy weights from ``cfg.init_from``, keeping fresh init for ``cfg.reinit`` prefixes.

    Returns the training time behind the source, if it records one: its own ``elapsed_s``
    plus the time behind *its* starting weights, so a chain of continuations adds up.
    """
    loaded = load_model(cfg.init_from)
    source = loaded.state_dict()
    prefixes = [_last_parameterised(model) if p == "last_part" else p for p in cfg.reinit]
    own = model.state_dict()
    keep = {k: v for k, v in source.items() if not any(k == p or k.startswith(p + ".") for p in prefixes)}
    unknown = [k for k in keep if k not in own or own[k].shape != keep[k].shape]
    if unknown:
        raise ValueError(f"init_from {cfg.init_from}: tensors that do not fit {cfg.model} x{cfg.scale}: {', '.join(unknown)} (re-initialise them with reinit)")
    own.update(keep)
    model.load_state_dict(own)
    log.info("initialised from %s; re-initialised: %s", cfg.init_from, ", ".join(prefixes) or "nothing")
    return training_time_s(loaded.checkpoint_meta)


def _param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict]:
    groups: dict[float, list] = {}
    for name, param in model.named_parameters():
        mult = next((m for p, m in cfg.lr_multipliers.items() if name.startswith(p)), 1.0)
        groups.setdefault(float(mult), []).append(param)
    return [{"params": ps, "lr_mult": m, "lr": cfg.lr * m} for m, ps in groups.items()]


def patch_loss(sr: torch.Tensor, hr: torch.Tensor, loss: str = "mse", border: int = 0) -> torch.Tensor:
    """MSE or L1 of ``sr`` against ``hr``, leaving ``border`` pixels out on each side."""
    if border:
        sr, hr = sr[..., border:-border, border:-border], hr[..., border:-border, border:-border]
    return F.l1_loss(sr, hr) if loss == "l1" else F.mse_loss(sr, hr)


def _make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    groups = _param_groups(model, cfg)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    # On a GPU a small net's step is many tiny kernels; the fused Adam updates every parameter in one.
    fused = True if next(model.parameters()).device.type == "cuda" else None
    return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)


def _make_sampler(cfg: TrainConfig, device: torch.device):
    images, _ = load_y_images(cfg.train_data)
    if cfg.dataset == "reference":
        return CenterCropSampler(images, cfg.scale, cfg.reference_crop, device=device, seed=cfg.seed)
    return PatchSampler(images, cfg.scale, cfg.lr_patch, cfg.augment, cfg.scale_augment, device=device, seed=cfg.seed,
                        detail_oversample=cfg.detail_oversample)


def validate(model: nn.Module, images: list[np.ndarray], cfg: TrainConfig, device: torch.device) -> tuple[float, float]:
    """Mean per-image PSNR/SSIM under the paper protocol (restore mode for the reference setting)."""
    model.eval()
    if cfg.dataset == "reference":
        sr_fn = lambda lr: model(imresize(lr, float(cfg.scale)).float())  # noqa: E731
    else:
        sr_fn = lambda lr: model(lr.float())  # noqa: E731
    scores = [score_image(sr_fn, y, cfg.scale, device) for y in images]
    model.train()
    return float(np.mean([p for p, _ in scores])), float(np.mean([s for _, s in scores]))


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"x" * 1024 * 1024)
        probe.unlink()
    except OSError as exc:
        raise RunDirError(f"{out}: cannot write checkpoints here ({exc.strerror or exc})") from None


def _write_config(out: Path, cfg: TrainConfig) -> None:
    """The resolved configuration, as the run uses it (``iterations`` included once calibrated)."""
    atomic_write(out / "config.yaml", lambda tmp: tmp.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False)))


def _remove_stale_temporaries(out: Path) -> None:
    """Delete temporary files that a killed write left: ours (``.NAME.XXXX.tmp.EXT``, from
    :func:`atomic_write`) and safetensors' own (``.tmpXXXXXX``: ``save_file`` writes one and
    renames it, inside our atomic write)."""
    for tmp in [*out.glob(".*.tmp*"), *out.glob(".tmp??????")]:
        if tmp.is_file():
            tmp.unlink()
            log.info("removed %s, left by an interrupted write", tmp)


def _trim_metrics(path: Path, iteration: int) -> None:
    """Keep the log lines up to the resumed ``iteration``: the killed run's later lines
    would be logged again, and its last line may be cut in half."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("iteration", 0) <= iteration:
            kept.append(line)
    text = "".join(line + "\n" for line in kept)
    atomic_write(path, lambda tmp: tmp.write_text(text))


def _check_finite(model: nn.Module, iteration: int, out: Path) -> None:
    bad = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        raise TrainingDiverged(
            f"weights became NaN or infinite at iteration {iteration} ({', '.join(bad)}); stopped without saving. "
            f"The last good checkpoint in {out} was kept (try a lower lr or grad_clip)"
        )


class TimeBudget:
    """Turns a wall-clock budget into an iteration count, measured twice.

    ``plan(it)`` is called at the start of every iteration. It times the steps from
    ``CALIBRATION_START`` to ``CALIBRATION_END`` (past the first, slow steps, and
    before the learning rate leaves warm-up, so the schedule is not yet committed)
    and at ``CALIBRATION_END`` returns a first count, with a wide margin: a few
    hundred steps say little about the validation rounds and checkpoints to come.
    Once the run has taken that count (``commit``), the speed is measured again,
    halfway through the steps whose learning rate does not depend on the count,
    over everything since calibration, validation and checkpoints included; the
    second count uses a narrow margin and never moves a learning rate already used.
    The count, not a deadline, is what the run keeps: the schedule is a function of it.
    """

    MARGIN = 0.9  # first count: 10% of the remaining budget for validation, checkpoints, a short measurement
    # Second count: its speed already includes validation and checkpoints, but a run's later speed
    # drifts from it by several percent either way (two-hour runs measured 5.3 it/s at the re-plan
    # and averaged 5.04, one ending 1.7% over its budget with 3%; others averaged 4-7% faster and
    # ended 8-11% inside), so 5%, which leans towards ending inside.
    REPLAN_MARGIN = 0.95

    def __init__(self, seconds: float, started: float):
        self.seconds, self.started = seconds, started
        self.rate: float | None = None  # iterations per second, as last measured
        self.replan_at: int | None = None  # the iteration of the second measurement, once committed
        self._t_start: float | None = None
        self._t_calibrated: float | None = None
        self._cfg: TrainConfig | None = None
        self._replanned = False

    def plan(self, it: int) -> int | None:
        if it == CALIBRATION_START:
            self._t_start = time.perf_counter()
        elif it == CALIBRATION_END and self._t_start is not None:
            now = self._t_calibrated = time.perf_counter()
            self.rate = (CALIBRATION_END - CALIBRATION_START) / (now - self._t_start)
            return self._count(it, now, self.MARGIN)
        elif it == self.replan_at:
            now = time.perf_counter()
            self.rate = (it - CALIBRATION_END) / (now - self._t_calibrated)
            self.replan_at, self._replanned = None, True
            return max(self._count(it, now, self.REPLAN_MARGIN), self._shortest_keeping_past(it))
        return None

    def commit(self, cfg: TrainConfig) -> None:
        """The run now trains for ``cfg.iterations``; pick where to measure again (if anywhere).

        Called with the count every rank shares, so all of them re-plan at the same step.
        """
        if self._t_calibrated is None or self._replanned:
            return  # not measured yet, or the second count, which is final
        halfway = count_free_steps(cfg) // 2
        # Too few steps since calibration to measure better than it did: keep the first count.
        self.replan_at = halfway if halfway >= 2 * CALIBRATION_END else None
        self._cfg = dataclasses.replace(cfg)  # the committed count, whatever the run does with cfg

    def _count(self, it: int, now: float, margin: float) -> int:
        remaining = self.seconds - (now - self.started)
        return max(it + 1, int(it + self.rate * remaining * margin))

    def _shortest_keeping_past(self, it: int) -> int:
        """The smallest count under which the first ``it`` learning rates stay what they were.

        ``count_free_steps`` grows with the count, and the committed count keeps the past
        (the re-plan is inside its free steps), so a binary search between the two finds it.
        """
        low, high = it + 1, self._cfg.iterations
        while low < high:
            mid = (low + high) // 2
            if count_free_steps(dataclasses.replace(self._cfg, iterations=mid)) >= it:
                high = mid
            else:
                low = mid + 1
        return low


def train(cfg: TrainConfig, out_dir: str | os.PathLike, resume: bool = False, progress: bool = True) -> dict:
    """Train ``cfg.model`` and return a summary (iterations, best validation PSNR, paths)."""
    out = Path(out_dir)
    dist_info = distributed.setup()
    # Every rank checks (read-only), so they all stop together instead of one waiting for the other.
    if out.exists() and (out / "last.json").exists() and not resume:
        raise RunDirError(f"{out}: already holds a run; pass --resume to continue it or choose another --out")
    device = distributed.pick_device(cfg.device, dist_info.local_rank)  # before the run folder: a missing GPU leaves nothing behind
    if dist_info.is_main:
        _check_writable(out)
        _remove_stale_temporaries(out)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed patch sizes: pick the fastest kernels once
        torch.backends.cudnn.allow_tf32 = False  # full fp32: TF32 rounding shows at 37 dB
        torch.backends.cuda.matmul.allow_tf32 = False
    if cfg.precision == "bf16" and device.type == "cpu" and not native_bf16():
        # Measured on such a CPU (AVX2 only): FSRCNN-s trained at 4.4 it/s in bf16, 10.7 in fp32.
        log.warning("precision bf16: this CPU has no bfloat16 support in oneDNN (AVX512 or AMX), so training will be slower than fp32")

    torch.manual_seed(cfg.seed)
    model_scale = 1 if cfg.dataset == "reference" else cfg.scale
    model = create_model(cfg.model, model_scale, **cfg.model_args)
    init_elapsed = None
    if cfg.init_from:
        # Kept with every checkpoint: the training time behind the starting weights, for
        # time-to-quality curves even after that file is replaced.
        init_elapsed = _init_from(model, cfg)
    model.to(device).train()
    optimizer = _make_optimizer(model, cfg)
    sampler = _make_sampler(cfg, device)
    val_images = load_y_images(cfg.val_data, cfg.val_limit)[0] if cfg.val_data and dist_info.is_main else []

    start, best, elapsed_before, extra = 0, -math.inf, 0.0, {}
    if resume and (out / "last.state.safetensors").exists():
        extra, info = load_train_state(out / "last", model, optimizer)
        sampler.load_state_dict({k[len("sampler.") :]: v for k, v in extra.items() if k.startswith("sampler.")})
        start, best, elapsed_before = info["iteration"], info["best_psnr"], info["elapsed_s"]
        init_elapsed = info.get("init_from_elapsed_s", init_elapsed)
        log.info("resumed %s at iteration %d", out, start)
    elif resume:
        log.info("no checkpoint in %s yet; starting from scratch", out)
    average = None
    if cfg.ema_decay:
        average = WeightAverage(model, cfg.ema_decay)
        saved = {k[len("ema.") :]: v for k, v in extra.items() if k.startswith("ema.")} if start else {}
        if saved:
            average.load_state_dict(saved)
        elif start:
            log.info("%s holds no weight average; starting it from the resumed weights", out)
    # What is validated and saved as best/last/snapshots: the average when there is one.
    evaluated = average.model if average else model
    if dist_info.is_main:
        # Also when starting from scratch: a run killed before its first checkpoint left lines.
        _trim_metrics(out / "metrics.jsonl", start)

    if dist_info.is_main:
        _write_config(out, cfg)
    net = nn.parallel.DistributedDataParallel(model) if dist_info.enabled else model
    per_rank = cfg.batch_size // dist_info.world_size
    if per_rank * dist_info.world_size != cfg.batch_size:
        raise ValueError(f"batch_size {cfg.batch_size} is not divisible by {dist_info.world_size} processes")
    rank_slice = slice(dist_info.rank * per_rank, (dist_info.rank + 1) * per_rank)

    metrics_path = out / "metrics.jsonl"
    bar = tqdm(total=cfg.iterations, initial=start, disable=not (progress and dist_info.is_main), unit="it", dynamic_ncols=True)
    t0, window_loss, window_n, last_val = time.perf_counter(), 0.0, 0, None
    window: list[torch.Tensor] = []  # this window's per-step losses, still on the device
    window_start = t0

    def save(iteration: int, metrics: dict) -> None:
        elapsed = elapsed_before + time.perf_counter() - t0
        lineage = {} if init_elapsed is None else {"init_from_elapsed_s": init_elapsed}
        meta = {"iteration": iteration, "metrics": metrics, "config": cfg.to_dict(), "elapsed_s": elapsed, **lineage}
        state = {f"sampler.{k}": v for k, v in sampler.state_dict().items()}
        if average:
            state.update({f"ema.{k}": v for k, v in average.state_dict().items()})
        # The resumable state goes last: it is the commit point. A run killed before it
        # resumes from the previous state and writes best/last of this step again;
        # written first, a kill could leave a state whose best_psnr no best file holds.
        if metrics.get("val_psnr") == best:
            save_model(evaluated, out / "best", **meta)
        if cfg.keep_snapshots:
            save_model(evaluated, out / "snapshots" / f"iter_{iteration:08d}", **meta)
        save_model(evaluated, out / "last", **meta)
        save_train_state(out / "last", model, optimizer, state, {"iteration": iteration, "best_psnr": best, "elapsed_s": elapsed, **lineage})

    def log_line(record: dict) -> None:
        with open(metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")

    # A resumed run keeps the iteration count its first part planned last.
    budget = TimeBudget(cfg.time_budget_s, t0) if cfg.time_budget_s and start == 0 else None
    it = start
    while it < cfg.iterations:
        planned = budget.plan(it) if budget else None
        if planned is not None:
            if dist_info.enabled:  # every rank must stop at the same step: rank 0's plan wins
                shared = torch.tensor([planned], device=device)
                torch.distributed.broadcast(shared, 0)
                planned = int(shared.item())
            cfg.iterations = planned
            budget.commit(cfg)
            # Keep validation to about 25 rounds, whatever speed the machine turned out to have.
            cfg.val_every = max(cfg.val_every, cfg.iterations // 25)
            bar.total = cfg.iterations
            log.info(
                "time budget %.0fs: %.1f it/s measured at iteration %d, training for %d iterations",
                cfg.time_budget_s, budget.rate, it, cfg.iterations,
            )
            if dist_info.is_main:
                _write_config(out, cfg)
        factor = lr_factor(cfg, it)
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * factor * group["lr_mult"]
        lr_batch, hr_batch = sampler.sample(cfg.batch_size)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
            sr_batch = net(lr_batch[rank_slice])
        loss = patch_loss(sr_batch.float(), hr_batch[rank_slice], cfg.loss, cfg.loss_border)
        # The loss of the whole global batch: what is logged, and what every rank checks, so a
        # NaN on one rank's slice stops all of them at the same step (none waits in a collective).
        global_loss = loss.detach()
        if dist_info.enabled:
            global_loss = global_loss.clone()
            torch.distributed.all_reduce(global_loss)
            global_loss /= dist_info.world_size
        window.append(global_loss)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        if average:
            average.update(model, it)
        done = it + 1
        bar.update(1)
        logging_step = done % cfg.log_every == 0 or done == cfg.iterations
        validation_step = done % cfg.val_every == 0 or done == cfg.iterations
        if logging_step or validation_step:
            # The losses are read back here, once per window, not after every step: a read waits
            # for the device, and on a GPU that wait would stall every step. A non-finite loss is
            # still named by its own iteration, and nothing after it is ever saved.
            losses = torch.stack(window).cpu().double()
            bad = (~torch.isfinite(losses)).nonzero()
            if len(bad):
                bar.close()
                first = int(bad[0])
                raise TrainingDiverged(
                    f"loss became {losses[first].item()} at iteration {done - len(window) + first}; stopped. "
                    f"The last good checkpoint in {out} was kept (try a lower lr or grad_clip)"
                )
            window_loss += float(losses.sum())
            window_n += len(window)
            window.clear()
        if dist_info.is_main and logging_step:
            now = time.perf_counter()
            record = {
                "iteration": done,
                "loss": window_loss / window_n,
                "lr": cfg.lr * factor,
                "samples_per_s": window_n * cfg.batch_size / max(now - window_start, 1e-9),
                "elapsed_s": elapsed_before + now - t0,
            }
            log_line(record)
            bar.set_postfix(loss=f"{record['loss']:.2e}", lr=f"{record['lr']:.1e}", val=last_val or "-")
            window_loss, window_n, window_start = 0.0, 0, now
        if validation_step:
            # A finite loss can still be followed by a step that breaks the weights; never save those.
            # Weights are identical on every rank, so all ranks stop here together.
            _check_finite(model, done, out)
            if dist_info.is_main:
                metrics = {}
                if val_images:
                    p, s = validate(evaluated, val_images, cfg, device)
                    metrics = {"val_psnr": p, "val_ssim": s}
                    best = max(best, p)
                    last_val = f"{p:.2f}dB"
                    log_line({"iteration": done, **metrics, "elapsed_s": elapsed_before + time.perf_counter() - t0})
                    bar.set_postfix(loss=f"{window_loss / max(window_n, 1):.2e}", val=last_val)
                save(done, metrics)
            if dist_info.enabled:
                torch.distributed.barrier()
        it += 1
    bar.close()
    del net  # the DDP wrapper holds the process group: free it before teardown, not at this frame's exit
    distributed.teardown(dist_info)
    return {"iterations": cfg.iterations, "best_val_psnr": best if best > -math.inf else None, "out": str(out)}
