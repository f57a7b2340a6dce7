"""scripts/training_history.py: scores are paired with the hours of the weights that made them."""

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git to build a history")


@pytest.fixture
def history_script():
    path = Path(__file__).resolve().parents[1] / "scripts" / "training_history.py"
    spec = importlib.util.spec_from_file_location("training_history", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def commit(repo: Path, message: str, *, set5: float | None = None, hours: float | None = None) -> None:
    """One commit that re-scores fsrcnn x3 on Set5 and/or ships weights trained ``hours``."""
    if set5 is not None:
        rows = [{"set": "Set5", "scale": 3, "model": "bicubic", "mean_psnr": 30.39},
                {"set": "Set5", "scale": 3, "model": "fsrcnn", "mean_psnr": set5}]
        (repo / "docs" / "results.json").write_text(json.dumps(rows))
    if hours is not None:
        # Half the time in this run, half in the run it started from: both count.
        sidecar = {"elapsed_s": hours * 1800, "init_from_elapsed_s": hours * 1800}
        (repo / "src/srlab/weights/fsrcnn_x3.json").write_text(json.dumps(sidecar))
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", message], check=True)


def test_scores_take_the_hours_of_the_commit_that_changed_them(history_script, tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "src/srlab/weights").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    commit(tmp_path, "first weights and table", set5=33.00, hours=2.0)
    commit(tmp_path, "new weights; table not yet re-made", hours=4.0)  # no point: the score is the old one
    commit(tmp_path, "table re-made", set5=33.05)
    commit(tmp_path, "pipeline change re-scores the same weights", set5=33.04)  # replaces the point at 4 h
    commit(tmp_path, "more training", set5=33.08, hours=6.0)

    history = history_script.collect(tmp_path)
    assert list(history) == [("fsrcnn", 3, "Set5")]  # bicubic rows are not training
    assert history[("fsrcnn", 3, "Set5")] == [(2.0, 33.00), (4.0, 33.04), (6.0, 33.08)]


def test_recent_slope_and_hours_to_a_goal(history_script):
    points = [(1.0, 32.0), (8.0, 33.00), (10.0, 33.02), (12.0, 33.04)]
    # The last third of 12 h starts at 8 h: the first point, on a steeper stretch, is left out.
    slope = history_script.recent_slope(points, 1 / 3)
    assert slope == pytest.approx(0.01)
    assert history_script.hours_to(33.16, 33.04, slope) == "12.0"
    assert history_script.hours_to(33.00, 33.04, slope) == "reached"
    assert history_script.hours_to(33.16, 33.04, -0.001) == "not at this rate"
    assert history_script.recent_slope([(1.0, 32.0), (12.0, 33.0)], 1 / 3) is None  # one point in the window
