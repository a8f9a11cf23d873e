"""What GPU software this machine has, for skip reasons (cheap: no CUDA context is created)."""
from __future__ import annotations

import functools

from pose_stream._optional import available


@functools.lru_cache(maxsize=None)
def ort_providers() -> frozenset[str]:
    import onnxruntime as ort

    return frozenset(ort.get_available_providers())


@functools.lru_cache(maxsize=None)
def gpu_count() -> int:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.device_count()
    if available("pycuda.driver"):  # a GPU next to a CPU-only PyTorch
        import pycuda.driver as cuda

        try:
            cuda.init()
            return cuda.Device.count()
        except Exception:  # noqa: BLE001 - no driver or no device: no GPU
            return 0
    return 0


def why_no_tensorrt() -> str | None:
    """None where TensorRT can run here, else the reason it cannot."""
    if not available("tensorrt"):
        return "tensorrt is not installed (pip install 'pose-stream[gpu]'; not installable on this project's machines)"
    if not available("pycuda.driver"):
        return "pycuda is not installed (pip install 'pose-stream[gpu]')"
    if gpu_count() == 0:
        return "no CUDA GPU"
    return None
