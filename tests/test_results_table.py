"""scripts/results_table.py: runs take turns on the tables, and only the marked block is rewritten."""

import importlib.util
import threading
from pathlib import Path

import pytest


@pytest.fixture
def results_table(tmp_path, monkeypatch):
    path = Path(__file__).resolve().parents[1] / "scripts" / "results_table.py"
    spec = importlib.util.spec_from_file_location("results_table", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "LOCK", tmp_path / "results.lock")
    return module


def test_second_run_waits_for_the_first(results_table, capsys):
    second_in = threading.Event()

    def second_run():
        with results_table.exclusive_turn():
            second_in.set()

    with results_table.exclusive_turn():
        thread = threading.Thread(target=second_run)
        thread.start()
        # While the first run holds its turn the second must not get in.
        assert not second_in.wait(0.5)
    assert second_in.wait(10)
    thread.join()
    assert "waiting for it" in capsys.readouterr().out


def test_replace_between_rewrites_only_the_marked_block(results_table, tmp_path):
    doc = tmp_path / "RESULTS.md"
    doc.write_text("intro\n<!-- a -->\nold row\n<!-- b -->\nprose after\n")
    results_table.replace_between(doc, "<!-- a -->", "<!-- b -->", "new row 1\nnew row 2")
    assert doc.read_text() == "intro\n<!-- a -->\nnew row 1\nnew row 2\n<!-- b -->\nprose after\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp.md")] == []
    with pytest.raises(SystemExit, match="no <!-- c -->"):
        results_table.replace_between(doc, "<!-- c -->", "<!-- d -->", "x")


def test_training_hours_add_up_every_phase_from_the_sidecar(results_table, tmp_path, monkeypatch):
    import json

    from srlab.checkpoint import save_model
    from srlab.models import create_model

    # A continuation: its own 1800 s plus the 5400 s behind the weights it started from.
    save_model(create_model("fsrcnn_s", scale=3), tmp_path / "fsrcnn_s_x3", elapsed_s=1800.0, init_from_elapsed_s=5400.0)
    save_model(create_model("espcn", scale=3), tmp_path / "espcn_x3")  # records no time
    monkeypatch.setattr(results_table, "WEIGHTS_DIR", tmp_path)
    assert json.loads((tmp_path / "fsrcnn_s_x3.json").read_text())["init_from_elapsed_s"] == 5400.0
    assert results_table.training_hours("fsrcnn_s", 3) == "2.0"
    assert results_table.training_hours("espcn", 3) == "-"
    assert results_table.training_hours("bicubic", 3) == "-"


def test_targets_table_judges_the_unrounded_score(results_table):
    results = [
        {"model": "fsrcnn", "scale": 4, "set": "Set5", "mean_psnr": 30.7096},
        {"model": "fsrcnn", "scale": 4, "set": "Set14", "mean_psnr": 27.6631},
        {"model": "srcnn_955", "scale": 2, "set": "Set5", "mean_psnr": 36.7496},  # rounds to 36.750, still short
        {"model": "bicubic", "scale": 2, "set": "Set5", "mean_psnr": 33.66},  # no target: no row
    ]
    rows = results_table.targets_table(results).splitlines()
    assert rows[0].startswith("| model | scale | set | PSNR | paper | target |")
    assert rows[2:] == [
        "| fsrcnn | x4 | Set5 | 30.710 | 30.71 | 30.80 | -0.0004 | -0.090 |",
        "| fsrcnn | x4 | Set14 | 27.663 | 27.59 | 27.65 | +0.073 | **met** |",
        "| srcnn_955 | x2 | Set5 | 36.750 | 36.66 | 36.75 | +0.090 | -0.0004 |",
    ]
