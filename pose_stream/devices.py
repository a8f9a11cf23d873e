"""Device names: which ones pose-stream takes ("auto", "cpu", "cuda", "cuda:N") and what they resolve to."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pose_stream.errors import PoseStreamError

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"
_DEVICE = re.compile(r"auto|cpu|cuda(?::(?P<index>\d+))?")


def check_device_name(name: str) -> str:
    """`name` itself when it is one of auto, cpu, cuda, cuda:N; PoseStreamError otherwise (no torch import)."""
    if not isinstance(name, str) or _DEVICE.fullmatch(name.strip().lower()) is None:
        raise PoseStreamError(f"unknown device {name!r}: use {DEVICE_CHOICES}")
    return name.strip().lower()


def torch_device(name: str) -> "torch.device":
    """The torch device `name` means here: auto picks CUDA when PyTorch sees a GPU; a CUDA device that is not
    there is a PoseStreamError naming what is."""
    import torch

    name = check_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise PoseStreamError(f"device {name}: PyTorch sees no CUDA GPU (use --device cpu)")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise PoseStreamError(f"device {name}: there {'is' if count == 1 else 'are'} only {count} CUDA "
                                  f"device{'s' * (count != 1)} (cuda:0{f' to cuda:{count - 1}' if count > 1 else ''})")
    return device
