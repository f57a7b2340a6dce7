"""How each shipped file's test-set PSNR grew with its training hours, across every session.

Usage: python scripts/training_history.py [--last 0.33] [--figure docs/figures/training_history.png]

Reads the git history, not new evaluations: every commit that changed docs/results.json (the
tables scripts/results_table.py writes) gives each model's Set5, Set14 and BSDS500/test mean
PSNR, and the shipped sidecar at that commit gives the hours behind the weights (elapsed_s
plus init_from_elapsed_s, srlab.checkpoint.training_time_s). Weights are committed before
their tables are re-made, so a score is paired with the hours of the commit where the score
changed; a re-scoring with no new weights (a pipeline change) replaces the point at the same
hours. Prints, per file and test set, the PSNR now, the slope of a straight line through
the points in the last third (--last) of its training hours, and the hours that slope would
need to reach the paper's figure and the issue's target (also written between the
training-history markers of docs/RESULTS.md; the figures themselves are in the targets
table above it, which scripts/results_table.py writes). The gains per hour have shrunk
phase after phase, so those hours are a lower bound, not a forecast.
Draws one panel per file: Set5 and Set14 as dB above the paper's figure, with the targets.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_table import PAPER, RESULTS_MD, TARGET, TARGET_SETS, replace_between  # noqa: E402

from srlab.checkpoint import training_time_s  # noqa: E402
from srlab.imageio import atomic_write  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = "docs/results.json"
WEIGHTS = "src/srlab/weights"
HISTORY_BEGIN, HISTORY_END = "<!-- training-history:begin -->", "<!-- training-history:end -->"
Y_FLOOR = -0.35  # dB from the paper where a panel is cut, unless its file is still below it


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def show(repo: Path, commit: str, path: str) -> dict | list | None:
    """A JSON file as it was at ``commit``; None where it did not exist or did not parse."""
    try:
        return json.loads(git(repo, "show", f"{commit}:{path}"))
    except (subprocess.CalledProcessError, json.JSONDecodeError):
        return None


def collect(repo: Path = ROOT) -> dict[tuple[str, int, str], list[tuple[float, float]]]:
    """(model, scale, set) -> [(training hours, mean PSNR), ...] in history order."""
    commits = git(repo, "log", "--reverse", "--format=%H", "--", RESULTS).split()
    history: dict[tuple[str, int, str], list[tuple[float, float]]] = {}
    for commit in commits:
        rows = show(repo, commit, RESULTS)
        if not isinstance(rows, list):
            continue
        sidecars: dict[tuple[str, int], dict | None] = {}
        for row in rows:
            model, scale = row["model"], row["scale"]
            if (model, scale) not in TARGET:  # bicubic, self-ensemble rows
                continue
            key = (model, scale, row["set"])
            points = history.setdefault(key, [])
            if points and points[-1][1] == row["mean_psnr"]:
                continue  # this commit did not re-score this file on this set
            if (model, scale) not in sidecars:
                sidecars[(model, scale)] = show(repo, commit, f"{WEIGHTS}/{model}_x{scale}.json")
            seconds = training_time_s(sidecars[(model, scale)] or {})
            if seconds is None:
                continue
            point = (seconds / 3600, row["mean_psnr"])
            if points and points[-1][0] == point[0]:
                points[-1] = point
            else:
                points.append(point)
    return history


def recent_slope(points: list[tuple[float, float]], last: float) -> float | None:
    """dB per hour of a least-squares line through the points in the last fraction ``last``
    of the training hours (a fraction, not fixed hours: the files' hours differ several-fold)."""
    recent = [(h, p) for h, p in points if h >= points[-1][0] * (1 - last)]
    if len({h for h, _ in recent}) < 2:  # a line needs two distinct hours
        return None
    hours, psnr = zip(*recent)
    return float(np.polyfit(hours, psnr, 1)[0])


def hours_to(goal: float, now: float, slope: float | None) -> str:
    if now >= goal:
        return "reached"
    if slope is None or slope <= 0:
        return "not at this rate"
    return f"{(goal - now) / slope:.1f}"


def table(history: dict, last: float) -> list[str]:
    # The paper's figure and the target are in the targets table earlier in RESULTS (results_table.py).
    lines = [f"| file | set | hours | PSNR now | dB/h (last {last:.0%} of the hours) | hours to paper | hours to target |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for (model, scale) in TARGET:
        for column, test_set in enumerate(TARGET_SETS):
            points = history.get((model, scale, test_set))
            if not points:
                continue
            hours, now = points[-1]
            slope = recent_slope(points, last)
            paper, target = PAPER[(model, scale)][column], TARGET[(model, scale)][column]
            rate = f"{slope:+.4f}" if slope is not None else "-"
            lines.append(f"| {model} x{scale} | {test_set} | {hours:.1f} | {now:.3f} | {rate} | "
                         f"{hours_to(paper, now, slope)} | {hours_to(target, now, slope)} |")
    return lines


def figure(history: dict, path: Path) -> None:
    files = list(TARGET)
    fig, axes = plt.subplots(2, 4, figsize=(17, 7.5), sharex=False)
    for ax, (model, scale) in zip(axes.flat, files):
        latest = []
        for column, (test_set, colour) in enumerate(zip(TARGET_SETS, ("tab:blue", "tab:orange"))):
            points = history.get((model, scale, test_set), [])
            paper, target = PAPER[(model, scale)][column], TARGET[(model, scale)][column]
            ax.plot([h for h, _ in points], [p - paper for _, p in points], "o-", ms=3, color=colour, label=test_set)
            ax.axhline(target - paper, color=colour, ls="--", lw=1)
            latest += [points[-1][1] - paper] if points else []
        ax.axhline(0, color="black", lw=1)
        # The first hours climb 0.5-1 dB; cut there so the last hours, which the question
        # "how much would more time give" is about, get the height.
        ax.set_ylim(bottom=max(ax.get_ylim()[0], min([Y_FLOOR, *(v - 0.1 for v in latest)])))
        ax.set_title(f"{model} x{scale}")
        ax.set_xlabel("training hours (all phases)")
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("dB above the paper's figure")
    axes[0, 0].legend(title="solid: shipped; dashed: target", fontsize=8, title_fontsize=8)
    fig.suptitle("Shipped weights over their training: PSNR minus the paper's figure (0 = paper, black line); "
                 f"one point per re-scoring in git history; panels cut at {Y_FLOOR} dB (lower where a file still is)", fontsize=11)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--last", type=float, default=1 / 3, help="fraction of each file's training hours, at the end, that the slope is fitted to")
    parser.add_argument("--figure", type=Path, default=ROOT / "docs" / "figures" / "training_history.png")
    args = parser.parse_args(argv)
    history = collect()
    rows = "\n".join(table(history, args.last))
    print(rows)
    replace_between(RESULTS_MD, HISTORY_BEGIN, HISTORY_END, rows)
    figure(history, args.figure)
    print(f"wrote {args.figure} and the table in {RESULTS_MD}")


if __name__ == "__main__":
    main()
