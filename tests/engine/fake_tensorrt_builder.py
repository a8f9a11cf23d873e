"""The build side of the fake `tensorrt` (see fake_gpu.py): network, ONNX parser, builder config, builder.

A "plan" is JSON naming the ONNX file, its input and outputs, the optimization profiles and the FP16 flag;
fake_tensorrt_runtime deserializes it.
"""
from __future__ import annotations

import json
import types

from fake_tensorrt_api import PLAN_MAGIC, TIMING_MAGIC


def make_network_classes() -> tuple[type, type]:
    """`Tensor` (name and shape) and the `Network` a parser fills with input and output tensors."""

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

    return Tensor, Network


def make_parser_class(Tensor: type, unsupported_ops=()) -> type:
    """`OnnxParser`: reads the ONNX graph's I/O into a Network; a node in `unsupported_ops` is a parser error."""

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

    return OnnxParser


def make_config_classes() -> tuple[type, type]:
    """`OptimizationProfile` and `BuilderConfig` (flags, memory pools, profiles, a TIMING_MAGIC timing cache)."""

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

    return OptimizationProfile, BuilderConfig


def report_build_progress(monitor) -> bool:
    """Drive an IProgressMonitor through the phases of a build; False when it cancels (all phases finished)."""
    monitor.phase_start("Building engine", None, 2)
    monitor.phase_start("Tactic selection", "Building engine", 3)
    for step in range(3):
        if not monitor.step_complete("Tactic selection", step):
            monitor.phase_finish("Tactic selection")
            monitor.phase_finish("Building engine")
            return False
    monitor.phase_finish("Tactic selection")
    monitor.step_complete("Building engine", 0)
    monitor.step_complete("Building engine", 1)
    monitor.phase_finish("Building engine")
    return True


def make_builder_class(api: types.SimpleNamespace, version: str, Network: type, BuilderConfig: type,
                       OptimizationProfile: type) -> type:
    """`Builder`: serializes a parsed network into a JSON plan for `version`, counting builds in Builder.builds."""
    Severity = api.Severity

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
            if monitor is not None and not report_build_progress(monitor):
                return None
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

    return Builder
