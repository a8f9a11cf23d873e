"""Device names: what is accepted, and a clear line for what is not (or not here)."""
from __future__ import annotations

import pytest
import torch

from pose_stream.devices import check_device_name, torch_device
from pose_stream.errors import PoseStreamError


@pytest.mark.parametrize("name", ["auto", "cpu", "cuda", "cuda:0", "cuda:3", " CPU "])
def test_accepted_names(name):
    assert check_device_name(name) == name.strip().lower()


@pytest.mark.parametrize("name", ["tpu", "gpu", "cuda:", "cuda:-1", "cuda:x", "cpu:0:1", "", "mps"])
def test_refused_names_say_what_is_accepted(name):
    with pytest.raises(PoseStreamError, match="auto, cpu, cuda or cuda:N"):
        check_device_name(name)


def test_auto_and_cpu_resolve_here():
    assert torch_device("cpu").type == "cpu"
    assert torch_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_one_line():
    with pytest.raises(PoseStreamError, match="sees no CUDA GPU"):
        torch_device("cuda:0")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_device_index_beyond_the_gpus_is_one_line():
    with pytest.raises(PoseStreamError, match="only"):
        torch_device(f"cuda:{torch.cuda.device_count()}")
