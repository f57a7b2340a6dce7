"""Device names from the command line and configs."""

from __future__ import annotations

import pytest
import torch

from srlab.device import resolve_device
from srlab.train.distributed import pick_device


def test_cpu_and_auto():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("name", ["tpu", "cuda:x", "", "gpu0"])
def test_bad_names_say_what_is_expected(name):
    with pytest.raises(ValueError, match="expected auto, cpu, cuda, cuda:N or mps|runs on cpu, cuda or mps"):
        resolve_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_missing_cuda_is_named_before_any_work():
    with pytest.raises(ValueError, match="device 'cuda:1': CUDA is not available"):
        resolve_device("cuda:1")
    with pytest.raises(ValueError, match="CUDA is not available"):
        pick_device("cuda")  # what `srlab train --set device=cuda` goes through


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_python_api_refuses_missing_cuda_with_a_value_error():
    import numpy as np

    import srlab

    with pytest.raises(ValueError, match="CUDA is not available"):
        srlab.upscale(np.zeros((8, 8), np.uint8), 2, model="bicubic", device="cuda")
