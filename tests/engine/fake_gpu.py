"""Stand-ins for `tensorrt` (10.x Python API) and `pycuda.driver`, for machines without either.

They implement only the calls pose-stream makes, with the documented signatures and return
conventions (None for a failed build or deserialization, False from setters that reject a value),
and check what real TensorRT would check: input shapes inside the active optimization profile, a
tensor address for every I/O tensor, buffers large enough for the data copied. "Device memory" is
host memory addressed by fake pointers; "execution" runs the ONNX model with ONNX Runtime (rounded
through float16 for FP16 plans). This proves pose-stream's control flow, not TensorRT itself.
"""
from __future__ import annotations

import enum
import itertools
import json
import types

import numpy as np

PLAN_MAGIC = "FAKE-TENSORRT-PLAN"
# Fake device addresses: allocation n starts at BASE + n * STRIDE (tests/support/emulated_cuda.py uses the same map).
BASE, STRIDE = 1 << 40, 1 << 32
TIMING_MAGIC = b"FAKE-TIMING-CACHE:"


# -- pycuda.driver -------------------------------------------------------------------------------------
class CudaState:
    """Everything the fake driver tracks, for assertions."""

    def __init__(self, devices=(("NVIDIA Fake GPU", (9, 0)),)) -> None:
        self.devices = list(devices)
        self.memory: dict[int, np.ndarray] = {}
        self.next_pointer = itertools.count(BASE, STRIDE)
        self.copies = {"htod": 0, "dtoh": 0, "dtod": 0}  # bytes copied each way
        self.context_stack: list[object] = []
        self.retained = 0
        self.host_allocations: list[object] = []


def make_pycuda_driver(state: CudaState) -> types.ModuleType:
    cuda = types.ModuleType("pycuda.driver")

    class Error(Exception):
        pass

    def init() -> None:
        if not state.devices:
            raise Error("cuInit failed: no CUDA-capable device is detected")

    class Context:
        def __init__(self, index: int) -> None:
            self.index, self.detached = index, False

        def push(self) -> None:
            state.context_stack.append(self)

        @staticmethod
        def pop() -> None:
            if not state.context_stack:
                raise Error("cannot pop non-current context")
            state.context_stack.pop()

        def detach(self) -> None:
            assert not self.detached, "detached twice"
            self.detached = True
            state.retained -= 1

    class Device:
        def __init__(self, index: int) -> None:
            self.index = index

        @staticmethod
        def count() -> int:
            return len(state.devices)

        def name(self) -> str:
            return state.devices[self.index][0]

        def compute_capability(self) -> tuple[int, int]:
            return state.devices[self.index][1]

        def total_memory(self) -> int:
            return 80 << 30

        def retain_primary_context(self) -> Context:
            state.retained += 1
            return Context(self.index)

    def require_context() -> None:
        if not state.context_stack:
            raise Error("no currently active context")

    class DeviceAllocation:
        def __init__(self, nbytes: int) -> None:
            require_context()
            self.pointer = next(state.next_pointer)
            state.memory[self.pointer] = np.zeros(nbytes, dtype=np.uint8)

        def __int__(self) -> int:
            return self.pointer

        def free(self) -> None:
            require_context()
            del state.memory[self.pointer]

    class HostAllocation(bytearray):
        freed = False

        def free(self) -> None:
            self.freed = True

    def pagelocked_empty(count: int, dtype) -> np.ndarray:
        require_context()
        allocation = HostAllocation(int(count) * np.dtype(dtype).itemsize)
        state.host_allocations.append(allocation)
        return np.ndarray((int(count),), dtype=dtype, buffer=allocation)  # .base is the allocation, as in pycuda

    class Stream:
        handles = itertools.count(1)

        def __init__(self) -> None:
            require_context()
            self.handle = next(Stream.handles)

    class Event:
        def __init__(self, flags: int = 0) -> None:
            self.recorded = False

        def record(self, stream=None) -> None:
            self.recorded = True

        def query(self) -> bool:
            return True  # the fake GPU finishes everything at once

    def _device_bytes(pointer: int, nbytes: int) -> np.ndarray:
        """The bytes at a device address, which may point inside an allocation."""
        pointer = int(pointer)
        base = BASE + (pointer - BASE) // STRIDE * STRIDE
        if base not in state.memory:
            raise Error(f"invalid device pointer {pointer:#x}")
        buffer, offset = state.memory[base], pointer - base
        if offset + nbytes > buffer.size:
            raise Error(f"copy of {nbytes} bytes at offset {offset} overruns a {buffer.size}-byte allocation")
        return buffer[offset:offset + nbytes]

    def memcpy_htod_async(dest, src: np.ndarray, stream=None) -> None:
        require_context()
        data = np.ascontiguousarray(src).view(np.uint8).reshape(-1)
        _device_bytes(dest, data.size)[:] = data
        state.copies["htod"] += data.size

    def memcpy_dtoh_async(dest: np.ndarray, src, stream=None) -> None:
        require_context()
        out = dest.reshape(-1).view(np.uint8)
        out[:] = _device_bytes(src, out.size)
        state.copies["dtoh"] += out.size

    def memcpy_dtod_async(dest, src, size: int, stream=None) -> None:
        require_context()
        _device_bytes(dest, size)[:] = _device_bytes(src, size)
        state.copies["dtod"] += size

    cuda.Error, cuda.init, cuda.Context, cuda.Device = Error, init, Context, Device
    cuda.mem_alloc, cuda.pagelocked_empty, cuda.Stream, cuda.Event = DeviceAllocation, pagelocked_empty, Stream, Event
    cuda.memcpy_htod_async, cuda.memcpy_dtoh_async = memcpy_htod_async, memcpy_dtoh_async
    cuda.memcpy_htod, cuda.memcpy_dtoh, cuda.memcpy_dtod_async = memcpy_htod_async, memcpy_dtoh_async, memcpy_dtod_async
    cuda.event_flags = types.SimpleNamespace(DISABLE_TIMING=2)
    cuda.device_bytes = _device_bytes
    return cuda


# -- tensorrt ------------------------------------------------------------------------------------------
def make_tensorrt(cuda_state: CudaState, version: str = "10.9.0.34", unsupported_ops=()) -> types.ModuleType:
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version

    class Severity(enum.IntEnum):
        INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

    class ILogger:
        def __init__(self) -> None:
            pass

    ILogger.Severity = Severity

    class IProgressMonitor:
        def __init__(self) -> None:
            pass

    class TensorIOMode(enum.Enum):
        NONE, INPUT, OUTPUT = range(3)

    class DataType(enum.Enum):
        FLOAT = 0

    trt.ILogger, trt.IProgressMonitor, trt.TensorIOMode, trt.DataType = ILogger, IProgressMonitor, TensorIOMode, DataType
    trt.float32 = DataType.FLOAT
    trt.nptype = lambda dtype: np.float32
    trt.BuilderFlag = types.SimpleNamespace(FP16="FP16")
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")

    class Tensor:
        def __init__(self, name, shape) -> None:
            self.name, self.shape = name, tuple(shape)

    class Network:
        def __init__(self) -> None:
            self.inputs, self.outputs, self.onnx_path = [], [], None

        def get_input(self, i):
            return self.inputs[i]

        def get_output(self, i):
            return self.outputs[i]

        @property
        def num_outputs(self) -> int:
            return len(self.outputs)

    class ParserError:
        def __init__(self, desc, node, name, op) -> None:
            self._v = (desc, node, name, op)

        def desc(self):
            return self._v[0]

        def node(self):
            return self._v[1]

        def node_name(self):
            return self._v[2]

        def node_operator(self):
            return self._v[3]

    class OnnxParser:
        def __init__(self, network, logger) -> None:
            self.network, self.errors = network, []

        @property
        def num_errors(self) -> int:
            return len(self.errors)

        def get_error(self, i):
            return self.errors[i]

        def parse_from_file(self, path: str) -> bool:
            import onnx

            model = onnx.load(path)
            for index, node in enumerate(model.graph.node):
                if node.op_type in unsupported_ops:
                    self.errors.append(ParserError(f"No importer registered for op: {node.op_type}", index,
                                                   node.name, node.op_type))
            if self.errors:
                return False
            inp = model.graph.input[0]
            dims = [d.dim_value if d.dim_value > 0 else -1 for d in inp.type.tensor_type.shape.dim]
            self.network.inputs = [Tensor(inp.name, dims)]
            self.network.outputs = [Tensor(o.name, ()) for o in model.graph.output]
            self.network.onnx_path = path
            return True

    class OptimizationProfile:
        def __init__(self) -> None:
            self.shapes = {}

        def set_shape(self, name, min, opt, max) -> None:  # noqa: A002 - TensorRT's keyword names
            self.shapes[name] = (tuple(min), tuple(opt), tuple(max))

    class TimingCache:
        def __init__(self, entries: int) -> None:
            self.entries = entries

        def serialize(self) -> bytes:
            return TIMING_MAGIC + str(self.entries).encode()

    class BuilderConfig:
        def __init__(self) -> None:
            self.flags, self.profiles, self.pool, self.timing, self.progress_monitor = set(), [], {}, None, None

        def set_memory_pool_limit(self, pool, size) -> None:
            self.pool[pool] = size

        def set_flag(self, flag) -> None:
            self.flags.add(flag)

        def add_optimization_profile(self, profile) -> int:
            self.profiles.append(profile)
            return len(self.profiles) - 1

        def create_timing_cache(self, blob: bytes):
            if blob and not blob.startswith(TIMING_MAGIC):
                return TimingCache(-1)  # "created", but set_timing_cache will refuse it
            return TimingCache(int(blob[len(TIMING_MAGIC):] or 0) if blob else 0)

        def set_timing_cache(self, cache, ignore_mismatch: bool) -> bool:
            if cache.entries < 0 and not ignore_mismatch:
                return False
            self.timing = cache
            return True

        def get_timing_cache(self):
            return self.timing

    class Builder:
        builds = 0

        def __init__(self, logger) -> None:
            self.logger = logger

        def create_network(self, flags: int = 0):
            return Network()

        def create_builder_config(self):
            return BuilderConfig()

        def create_optimization_profile(self):
            return OptimizationProfile()

        def build_serialized_network(self, network, config):
            monitor = config.progress_monitor
            if monitor is not None:
                monitor.phase_start("Building engine", None, 2)
                monitor.phase_start("Tactic selection", "Building engine", 3)
                for step in range(3):
                    if not monitor.step_complete("Tactic selection", step):
                        monitor.phase_finish("Tactic selection")
                        monitor.phase_finish("Building engine")
                        return None
                monitor.phase_finish("Tactic selection")
                monitor.step_complete("Building engine", 0)
                monitor.step_complete("Building engine", 1)
                monitor.phase_finish("Building engine")
            name, shape = network.inputs[0].name, network.inputs[0].shape
            if -1 in shape:
                if not config.profiles:
                    self.logger.log(Severity.ERROR, "Network has dynamic or shape inputs, but no optimization profile")
                    return None
                profiles = [p.shapes[name] for p in config.profiles]
            else:
                profiles = [(shape, shape, shape)]
            if config.timing is not None:
                config.timing.entries += 1
            Builder.builds += 1
            plan = {"magic": PLAN_MAGIC, "version": version, "onnx": network.onnx_path, "input": name,
                    "input_shape": list(shape), "outputs": [o.name for o in network.outputs],
                    "profiles": [[list(s) for s in p] for p in profiles], "fp16": "FP16" in config.flags}
            return json.dumps(plan).encode()

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

    trt.Builder, trt.Runtime, trt.OnnxParser = Builder, Runtime, OnnxParser
    return trt


def install(monkeypatch, *, devices=(("NVIDIA Fake GPU", (9, 0)),), version: str = "10.9.0.34",
            unsupported_ops=()) -> tuple[types.ModuleType, types.ModuleType, CudaState]:
    """Put fake `tensorrt`, `pycuda` and `pycuda.driver` modules in sys.modules for one test."""
    import sys

    from pose_stream.engine import trt_runtime

    state = CudaState(devices)
    cuda = make_pycuda_driver(state)
    trt = make_tensorrt(state, version, unsupported_ops)
    pycuda = types.ModuleType("pycuda")
    pycuda.driver = cuda
    monkeypatch.setitem(sys.modules, "pycuda", pycuda)
    monkeypatch.setitem(sys.modules, "pycuda.driver", cuda)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(trt_runtime, "_logger", None)  # the logger singleton belongs to one tensorrt module
    return trt, cuda, state
