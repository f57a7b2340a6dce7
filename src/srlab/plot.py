"""Training curves from a run folder's ``metrics.jsonl``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .imageio import atomic_write  # noqa: E402

__all__ = ["read_metrics", "plot_run"]


def read_metrics(run: str | os.PathLike) -> tuple[list[dict], list[dict]]:
    """``(loss records, validation records)`` of a run folder."""
    path = Path(run) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics log (is {run} an srlab run folder?)")
    train_rows, val_rows = [], []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        (val_rows if "val_psnr" in row else train_rows).append(row)
    return train_rows, val_rows


def plot_run(runs: list[str | os.PathLike] | str | os.PathLike, out: str | os.PathLike | None = None, by_time: bool = False) -> Path:
    """Loss (log scale) and validation PSNR against iterations (or hours) for one or more runs."""
    runs = [runs] if isinstance(runs, (str, os.PathLike)) else list(runs)
    out = Path(out) if out else Path(runs[0]) / "curves.png"
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(11, 4))
    key = "elapsed_s" if by_time else "iteration"
    scale = 3600.0 if by_time else 1.0
    for run in runs:
        train_rows, val_rows = read_metrics(run)
        label = Path(run).name
        if train_rows:
            ax_loss.plot([r[key] / scale for r in train_rows], [r["loss"] for r in train_rows], label=label, lw=1)
        if val_rows:
            ax_val.plot([r[key] / scale for r in val_rows], [r["val_psnr"] for r in val_rows], marker=".", label=label)
    xlabel = "hours of training" if by_time else "iteration"
    ax_loss.set(xlabel=xlabel, ylabel="training loss", yscale="log", title="Loss")
    ax_val.set(xlabel=xlabel, ylabel="PSNR (dB, Y, paper protocol)", title="Validation PSNR")
    # Fine-tuning curves move by thousandths of a dB: show 28.425, not "+2.842e1" and 0.005.
    ax_val.ticklabel_format(axis="y", useOffset=False)
    for ax in (ax_loss, ax_val):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(out, lambda tmp: fig.savefig(tmp, dpi=110))
    plt.close(fig)
    return out
