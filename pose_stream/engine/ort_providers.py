"""Execution-provider lists for ONNX Runtime, including its TensorRT execution provider.

The TensorRT EP is the second route to TensorRT (no pycuda, no plan files to manage): ONNX Runtime
builds the engine itself on the first run and, with the engine cache on, reuses it afterwards.
"""
from __future__ import annotations

import os
from pathlib import Path

from pose_stream.engine.engine_cache import default_cache_dir

TENSORRT_EP = "TensorrtExecutionProvider"
CUDA_EP = "CUDAExecutionProvider"
CPU_EP = "CPUExecutionProvider"


def tensorrt_provider(
    *,
    fp16: bool = False,
    cache_dir: str | os.PathLike | None = None,
    timing_cache: bool = True,
    device_id: int = 0,
    workspace_gb: float | None = None,
) -> tuple[str, dict[str, object]]:
    """('TensorrtExecutionProvider', options) with engine and timing caches under `cache_dir`
    (default: <pose-stream cache>/ort-tensorrt). Engines are keyed by ONNX Runtime itself."""
    path = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir() / "ort-tensorrt"
    path.mkdir(parents=True, exist_ok=True)
    options: dict[str, object] = {
        "device_id": device_id,
        "trt_fp16_enable": fp16,
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(path),
        "trt_timing_cache_enable": timing_cache,
    }
    if timing_cache:
        options["trt_timing_cache_path"] = str(path)
    if workspace_gb is not None:
        options["trt_max_workspace_size"] = int(workspace_gb * (1 << 30))
    return TENSORRT_EP, options


def gpu_providers(available: list[str] | set[str], *, fp16: bool = False,
                  cache_dir: str | os.PathLike | None = None) -> list:
    """The best providers among `available`: TensorRT (with caches), then CUDA, then CPU."""
    providers: list = []
    if TENSORRT_EP in available:
        providers.append(tensorrt_provider(fp16=fp16, cache_dir=cache_dir))
    if CUDA_EP in available:
        providers.append(CUDA_EP)
    providers.append(CPU_EP)
    return providers


def uses_fp16(provider_options: dict[str, dict[str, str]]) -> bool:
    """Whether a session's TensorRT EP runs FP16, from `InferenceSession.get_provider_options()`."""
    value = str(provider_options.get(TENSORRT_EP, {}).get("trt_fp16_enable", "0")).lower()
    return value in ("1", "true")
