"""The `srlab` command itself: help, version, module entry point, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

import srlab
from srlab.cli import COMMANDS, build_parser, main


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"srlab {srlab.__version__}"
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0
    for command in ("eval", "train", "plot", "data"):
        assert command in out


def test_no_command_prints_help_and_returns_2(capsys):
    assert main([]) == 2
    assert "usage: srlab" in capsys.readouterr().out


def test_every_command_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert len(sub.choices) == len(COMMANDS)
    for name, p in sub.choices.items():
        assert p.format_help().startswith(f"usage: srlab {name}")


def test_eval_model_choices_come_from_the_registry(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    out = capsys.readouterr().out
    for name in srlab.list_models(include_baselines=True):
        assert name in out


def test_python_dash_m_srlab_runs():
    done = subprocess.run([sys.executable, "-m", "srlab", "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == f"srlab {srlab.__version__}"


def test_errors_are_one_line_without_traceback_unless_debug(tmp_path, capsys):
    assert main(["eval", "--model", "no_such_model", "--scale", "2"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("srlab eval: error: unknown model 'no_such_model'") and "Traceback" not in err[0]
    with pytest.raises(ValueError, match="unknown model"):
        main(["--debug", "eval", "--model", "no_such_model", "--scale", "2"])


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["eval", "--scale", "two"])
    assert info.value.code == 2
    assert "invalid int value" in capsys.readouterr().err


@pytest.mark.parametrize("given", ["my_x2.safetensors", "my_x2.json", "--weights"])
def test_eval_labels_a_checkpoint_by_its_stem_like_upscale_does(given, tmp_path, capsys):
    """However a checkpoint is named on the command line, the table and the JSON call it by
    its stem, the name `srlab upscale` gives its outputs."""
    import json

    from srlab.checkpoint import save_model
    from srlab.models import create_model

    save_model(create_model("fsrcnn", 2, d=8, s=4, m=1), tmp_path / "my_x2")
    model_args = ["--model", "fsrcnn", "--weights", str(tmp_path / "my_x2.safetensors")] if given == "--weights" else ["--model", str(tmp_path / given)]
    out = tmp_path / "scores.json"
    assert main(["--quiet", "eval", *model_args, "--scale", "2", "--json", str(out)]) == 0
    assert [r["model"] for r in json.loads(out.read_text())] == ["my_x2"]
    assert " my_x2 " in capsys.readouterr().out


@pytest.mark.parametrize("command", ["eval", "upscale", "features", "compare"])
def test_unavailable_device_is_a_usage_error(command, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the error is for machines without it")
    with pytest.raises(SystemExit) as info:
        main([command, "--device", "cuda", "x.png", "--out", "o"] if command == "upscale" else [command, "--device", "cuda"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --device: device 'cuda': CUDA is not available" in err and "Traceback" not in err
