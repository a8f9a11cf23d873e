"""Stand-ins for `tensorrt` (10.x Python API) and `pycuda.driver`, for machines without either.

They implement only the calls pose-stream makes, with the documented signatures and return
conventions (None for a failed build or deserialization, False from setters that reject a value),
and check what real TensorRT would check: input shapes inside the active optimization profile, a
tensor address for every I/O tensor, buffers large enough for the data copied. "Device memory" is
host memory addressed by fake pointers; "execution" runs the ONNX model with ONNX Runtime (rounded
through float16 for FP16 plans). This proves pose-stream's control flow, not TensorRT itself.

The parts: fake_pycuda (pycuda.driver and the CudaState it records into), fake_tensorrt_api (plan and
timing-cache formats, enums and interfaces), fake_tensorrt_builder (network, parser, config, builder) and
fake_tensorrt_runtime (runtime, engine, execution context). Here: `make_tensorrt` puts the tensorrt parts
together, `install` puts fresh modules in sys.modules for one test. Every call makes new classes, so class
counters (Builder.builds, Runtime.engines, stream handles) start afresh in each test.
"""
from __future__ import annotations

import sys
import types

import numpy as np

from fake_pycuda import BASE, STRIDE, CudaState, make_pycuda_driver
from fake_tensorrt_api import PLAN_MAGIC, TIMING_MAGIC, make_api_types
from fake_tensorrt_builder import make_builder_class, make_config_classes, make_network_classes, make_parser_class
from fake_tensorrt_runtime import make_engine_class, make_execution_context_class, make_runtime_class

__all__ = ["BASE", "STRIDE", "PLAN_MAGIC", "TIMING_MAGIC", "CudaState", "make_pycuda_driver", "make_tensorrt",
           "install"]


def make_tensorrt(cuda_state: CudaState, version: str = "10.9.0.34", unsupported_ops=()) -> types.ModuleType:
    """A fresh `tensorrt` module of `version` whose engines run in `cuda_state`'s memory."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version

    api = make_api_types()
    trt.ILogger, trt.IProgressMonitor = api.ILogger, api.IProgressMonitor
    trt.TensorIOMode, trt.DataType = api.TensorIOMode, api.DataType
    trt.float32 = api.DataType.FLOAT
    trt.nptype = lambda dtype: np.float32
    trt.BuilderFlag = types.SimpleNamespace(FP16="FP16")
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")

    Tensor, Network = make_network_classes()
    OptimizationProfile, BuilderConfig = make_config_classes()
    trt.Builder = make_builder_class(api, version, Network, BuilderConfig, OptimizationProfile)
    trt.OnnxParser = make_parser_class(Tensor, unsupported_ops)

    ExecutionContext = make_execution_context_class(cuda_state, api)
    trt.Runtime = make_runtime_class(api, version, make_engine_class(cuda_state, api, ExecutionContext))
    return trt


def put_in_sys_modules(monkeypatch, trt: types.ModuleType, cuda: types.ModuleType) -> None:
    """Make `import tensorrt`, `import pycuda.driver` and pose-stream's TensorRT logger use these modules."""
    from pose_stream.engine import trt_runtime

    pycuda = types.ModuleType("pycuda")
    pycuda.driver = cuda
    monkeypatch.setitem(sys.modules, "pycuda", pycuda)
    monkeypatch.setitem(sys.modules, "pycuda.driver", cuda)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(trt_runtime, "_logger", None)  # the logger singleton belongs to one tensorrt module


def install(monkeypatch, *, devices=(("NVIDIA Fake GPU", (9, 0)),), version: str = "10.9.0.34",
            unsupported_ops=()) -> tuple[types.ModuleType, types.ModuleType, CudaState]:
    """Put fake `tensorrt`, `pycuda` and `pycuda.driver` modules in sys.modules for one test."""
    state = CudaState(devices)
    cuda = make_pycuda_driver(state)
    trt = make_tensorrt(state, version, unsupported_ops)
    put_in_sys_modules(monkeypatch, trt, cuda)
    return trt, cuda, state
