"""The run side of the fake `tensorrt` (see fake_gpu.py): runtime, engine and execution context.

An engine is a deserialized JSON plan (fake_tensorrt_builder); executing it runs the plan's ONNX model with
ONNX Runtime on the bytes at the tensor addresses in the fake device memory (rounded through float16 for
FP16 plans), after the checks TensorRT makes: a current CUDA context, an input shape inside the active
profile, an address for every I/O tensor.
"""
from __future__ import annotations

import json
import types

import numpy as np

from fake_pycuda import CudaState
from fake_tensorrt_api import PLAN_MAGIC


def make_execution_context_class(cuda_state: CudaState, api: types.SimpleNamespace) -> type:
    """`ExecutionContext`: profile and input shape, tensor addresses, and `execute_async_v3`."""
    Severity = api.Severity

    class ExecutionContext:
        def __init__(self, engine) -> None:
            self.engine, self.profile, self.shape, self.addresses = engine, 0, None, {}
            self.executions = 0

        def set_optimization_profile_async(self, index: int, stream_handle: int) -> bool:
            if not 0 <= index < len(self.engine.plan["profiles"]):
                return False
            self.profile, self.shape = index, None
            return True

        def set_input_shape(self, name: str, shape) -> bool:
            lo, _, hi = self.engine.plan["profiles"][self.profile]
            shape = tuple(int(s) for s in shape)
            if name != self.engine.plan["input"] or not all(a <= s <= b for a, s, b in zip(lo, shape, hi)):
                self.engine.logger.log(Severity.ERROR, f"setInputShape: {shape} is outside profile {self.profile}")
                return False
            self.shape = shape
            return True

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            if self.shape is None:
                return tuple(-1 for _ in range(4))
            n, _, h, w = self.shape
            k = self.engine.num_joints
            return {self.engine.plan["input"]: self.shape, "out0": (n, 2 * k, h // 4, w // 4),
                    "out1": (n, k, h // 2, w // 2)}[name]

        def set_tensor_address(self, name: str, pointer: int) -> bool:
            self.addresses[name] = int(pointer)
            return True

        def execute_async_v3(self, stream_handle: int) -> bool:
            names = [self.engine.plan["input"], *self.engine.plan["outputs"]]
            if self.shape is None or any(n not in self.addresses for n in names):
                self.engine.logger.log(Severity.ERROR, "enqueueV3: input shape or tensor address not set")
                return False
            if not cuda_state.context_stack:
                return False
            x = self._read(names[0], self.shape)
            if self.engine.plan["fp16"]:
                x = x.astype(np.float16).astype(np.float32)
            outputs = self.engine.session.run(self.engine.plan["outputs"], {names[0]: x})
            for name, value in zip(self.engine.plan["outputs"], outputs):
                if self.engine.plan["fp16"]:
                    value = value.astype(np.float16).astype(np.float32)
                self._write(name, value)
            self.executions += 1
            return True

        def _read(self, name, shape) -> np.ndarray:
            nbytes = int(np.prod(shape)) * 4
            buffer = cuda_state.memory[self.addresses[name]]
            assert nbytes <= buffer.size, f"{name}: {nbytes} bytes do not fit its {buffer.size}-byte buffer"
            return buffer[:nbytes].view(np.float32).reshape(shape).copy()

        def _write(self, name, value: np.ndarray) -> None:
            data = np.ascontiguousarray(value, dtype=np.float32).view(np.uint8).reshape(-1)
            buffer = cuda_state.memory[self.addresses[name]]
            assert data.size <= buffer.size, f"{name}: {data.size} bytes do not fit its {buffer.size}-byte buffer"
            buffer[: data.size] = data

    return ExecutionContext


def make_engine_class(cuda_state: CudaState, api: types.SimpleNamespace, ExecutionContext: type) -> type:
    """`Engine`: a plan's I/O tensors and profiles, an ONNX Runtime session, and its execution contexts."""
    TensorIOMode, DataType = api.TensorIOMode, api.DataType

    class Engine:
        def __init__(self, plan: dict, logger) -> None:
            import onnx
            import onnxruntime as ort

            self.plan, self.logger = plan, logger
            self.session = ort.InferenceSession(plan["onnx"], providers=["CPUExecutionProvider"])
            graph = onnx.load(plan["onnx"]).graph
            self.num_joints = [o for o in graph.output if o.name == plan["outputs"][1]][0] \
                .type.tensor_type.shape.dim[1].dim_value
            self.contexts = []

        @property
        def num_io_tensors(self) -> int:
            return 1 + len(self.plan["outputs"])

        @property
        def num_optimization_profiles(self) -> int:
            return len(self.plan["profiles"])

        def get_tensor_name(self, i: int) -> str:
            return [self.plan["input"], *self.plan["outputs"]][i]

        def get_tensor_mode(self, name: str):
            return TensorIOMode.INPUT if name == self.plan["input"] else TensorIOMode.OUTPUT

        def get_tensor_dtype(self, name: str):
            return DataType.FLOAT

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            if name == self.plan["input"]:
                return tuple(self.plan["input_shape"])
            k = self.num_joints
            return (-1, 2 * k if name == "out0" else k, -1, -1)

        def get_tensor_profile_shape(self, name: str, index: int):
            return [tuple(s) for s in self.plan["profiles"][index]]

        def create_execution_context(self):
            if not cuda_state.context_stack:
                return None
            context = ExecutionContext(self)
            self.contexts.append(context)
            return context

    return Engine


def make_runtime_class(api: types.SimpleNamespace, version: str, Engine: type) -> type:
    """`Runtime`: deserializes plans of `version` (None and a logged error otherwise), keeping Runtime.engines."""
    Severity = api.Severity

    class Runtime:
        engines: list = []

        def __init__(self, logger) -> None:
            self.logger = logger

        def deserialize_cuda_engine(self, data: bytes):
            try:
                plan = json.loads(bytes(data).decode())
                assert plan["magic"] == PLAN_MAGIC
            except Exception:  # noqa: BLE001 - like TensorRT: log, return None
                self.logger.log(Severity.ERROR, "IRuntime::deserializeCudaEngine: Error Code 1: Serialization "
                                "(Serialization assertion magicTagRead == kMAGIC_TAG failed.Magic tag does not match)")
                return None
            if plan["version"] != version:
                self.logger.log(Severity.ERROR, f"The engine plan file is not compatible with this version of "
                                f"TensorRT, expecting library version {version} got {plan['version']}")
                return None
            engine = Engine(plan, self.logger)
            Runtime.engines.append(engine)
            return engine

    return Runtime
