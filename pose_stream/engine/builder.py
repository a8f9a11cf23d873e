"""ONNX -> TensorRT engine (plan): parse, configure (FP16, workspace, one optimization profile per
input shape range, persistent timing cache), build with a progress bar, write atomically with a
sidecar, reuse when nothing that matters changed, and check FP16 accuracy against ONNX Runtime FP32.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from pose_stream.atomic import write_bytes_atomic
from pose_stream.engine.accuracy import AccuracyLimits, AccuracyReport, compare_pose_outputs, synthetic_frame
from pose_stream.engine.build_progress import BuildProgress, make_progress_monitor
from pose_stream.engine.cuda_context import CudaContext
from pose_stream.engine.engine_cache import (
    CacheDecision, EngineCache, EngineMetadata, EngineSpec, decide, file_sha256, utc_now,
    write_engine, write_sidecar,
)
from pose_stream.engine.profiles import ShapeProfile, onnx_input_spec, profiles_for
from pose_stream.engine.trt_runtime import import_tensorrt, parser_errors, trt_logger
from pose_stream.errors import PoseStreamError

log = logging.getLogger(__name__)

MAX_PARSER_ERRORS_SHOWN = 3


@dataclass(frozen=True)
class ProfileAccuracy:
    """The accuracy check of one optimization profile, run at its smallest shape."""

    profile: ShapeProfile
    report: AccuracyReport


@dataclass(frozen=True)
class BuildResult:
    """What `build_engine` produced or reused."""

    path: Path
    metadata: EngineMetadata
    reused: bool
    reason: str
    accuracy: tuple[ProfileAccuracy, ...] = ()

    @property
    def passed(self) -> bool:
        """False when an accuracy check ran and found drift."""
        return all(a.report.passed for a in self.accuracy)

    @property
    def drifted(self) -> tuple[str, ...]:
        """The outputs that drifted in any profile's accuracy check, e.g. ("out1 heatmaps",)."""
        return tuple(dict.fromkeys(name for a in self.accuracy for name in a.report.drifted))

    def summary(self) -> str:
        spec = self.metadata.spec
        size_mb = self.path.stat().st_size / 1e6 if self.path.exists() else float("nan")
        if self.reused:
            how = f"reused, built {self.metadata.built_at}"
        else:
            how = f"built in {self.metadata.build_seconds:.1f} s"
        lines = [
            f"engine     {self.path} ({size_mb:.1f} MB, {spec.precision}, {how})",
            f"for        {spec.gpu_name} {spec.sm}, TensorRT {spec.tensorrt_version}",
            f"inputs     {', '.join(p.describe() for p in spec.profiles)}",
        ]
        for item in self.accuracy:
            verdict = "passed" if item.report.passed else "FAILED"
            lines.append(f"accuracy   {item.profile.describe()} vs ONNX Runtime FP32: {verdict}")
            lines += ["  " + line for line in item.report.summary().splitlines()]
        return "\n".join(lines)


def build_engine(
    onnx_path: str | os.PathLike,
    engine_path: str | os.PathLike | None = None,
    *,
    fp16: bool = True,
    shapes: Sequence[ShapeProfile] | None = None,
    workspace_gb: float = 4.0,
    timing_cache: bool | str | os.PathLike = True,
    cache_dir: str | os.PathLike | None = None,
    device: int = 0,
    check_accuracy: bool = True,
    accuracy_limits: AccuracyLimits = AccuracyLimits(),
    force: bool = False,
    progress: bool = True,
) -> BuildResult:
    """Build (or reuse) a TensorRT engine for an exported HigherHRNet ONNX model.

    Args:
        onnx_path: the model written by `export_onnx`.
        engine_path: where to write the plan; None: the cache directory, named by the build's key.
        fp16: allow FP16 kernels (the network's inputs and outputs stay FP32).
        shapes: one optimization profile per entry; None: the ONNX model's fixed input shape.
        workspace_gb: TensorRT's scratch memory limit while building.
        timing_cache: True: a per-TensorRT-and-GPU file in the cache directory; False: none; or a path.
        cache_dir: the engine cache (default ~/.cache/pose-stream/engines, or $POSE_STREAM_CACHE).
        check_accuracy: after a build, compare the engine with ONNX Runtime FP32 on realistic input.
        force: rebuild even when the existing plan matches.
        progress: show tqdm bars for the build phases.
    Returns:
        A BuildResult; `reused` says whether an existing plan was kept, `reason` why (not).
    """
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise PoseStreamError(f"ONNX model not found: {onnx_path}")
    if not workspace_gb > 0:
        raise PoseStreamError(f"workspace_gb must be positive, got {workspace_gb}")
    input_name, dims = onnx_input_spec(onnx_path)
    profiles = tuple(shapes) if shapes else profiles_for(dims, source=onnx_path)
    _check_profiles_fit(profiles, dims, onnx_path)
    trt = import_tensorrt("building a TensorRT engine")
    if fp16 and not hasattr(trt.BuilderFlag, "FP16"):
        raise PoseStreamError(
            f"TensorRT {trt.__version__} has no FP16 builder flag (TensorRT 11 builds strongly typed networks "
            "only); install 'tensorrt>=10,<11' or build with --fp32"
        )
    cache = EngineCache(cache_dir)

    with CudaContext(device) as cuda_ctx, cuda_ctx.active():
        spec = EngineSpec(file_sha256(onnx_path), trt.__version__, cuda_ctx.name, cuda_ctx.compute_capability,
                          "fp16" if fp16 else "fp32", profiles)
        target = Path(engine_path) if engine_path is not None else cache.path_for(spec, onnx_path.stem)
        logger = trt_logger(trt)
        runtime = trt.Runtime(logger)
        if force:
            decision = CacheDecision(False, target, "rebuild forced")
        else:
            decision = decide(target, spec, lambda plan: _deserializes(runtime, logger, plan))
        del runtime  # TensorRT objects go while their context is current
        if decision.reuse and check_accuracy and _accuracy_failed(decision.metadata):
            # Never hand out a drifting engine silently: rebuild, and check (and report) again.
            decision = CacheDecision(False, target, f"rebuilding {target.name}: its last accuracy check failed")
        log.info("%s", decision.reason)
        if decision.reuse:
            assert decision.metadata is not None
            return BuildResult(target, decision.metadata, True, decision.reason)
        if timing_cache is True:
            timing_path: Path | None = cache.timing_cache_path(spec.tensorrt_version, spec.gpu_name,
                                                               spec.compute_capability)
        else:
            timing_path = Path(timing_cache) if timing_cache else None
        started = time.perf_counter()
        plan, output_names = _build_plan(trt, logger, onnx_path, spec, workspace_gb, timing_path, progress)
        metadata = EngineMetadata(
            spec=spec, plan_sha256=hashlib.sha256(plan).hexdigest(), onnx_path=str(onnx_path.resolve()),
            input_name=input_name, output_names=output_names, build_seconds=time.perf_counter() - started,
            built_at=utc_now(), pose_stream_version=_package_version(),
        )
        write_engine(target, plan, metadata)
        log.info("wrote %s (%.1f MB) in %.1f s", target, len(plan) / 1e6, metadata.build_seconds)

    accuracy: tuple[ProfileAccuracy, ...] = ()
    if check_accuracy:
        accuracy = check_engine_accuracy(target, onnx_path, profiles, device=device, limits=accuracy_limits)
        metadata = dataclasses.replace(metadata, accuracy={
            a.profile.describe(): a.report.to_json() for a in accuracy
        })
        write_sidecar(target, metadata)
        for item in accuracy:
            if not item.report.passed:
                log.warning("%s engine drifted from ONNX Runtime FP32 at %s in %s", spec.precision.upper(),
                            item.profile.describe(), ", ".join(item.report.drifted))
    return BuildResult(target, metadata, False, decision.reason, accuracy)


def _package_version() -> str:
    import pose_stream

    return pose_stream.__version__


def _accuracy_failed(metadata: EngineMetadata | None) -> bool:
    recorded = (metadata.accuracy or {}) if metadata is not None else {}
    return any(not check.get("passed", True) for check in recorded.values())


def _check_profiles_fit(profiles: Sequence[ShapeProfile], dims, onnx_path: Path) -> None:
    """Every profile must respect the model's fixed dimensions; TensorRT would reject it later, less clearly."""
    if not profiles:
        raise PoseStreamError("at least one input shape profile is needed")
    for profile in profiles:
        for axis, fixed in enumerate(dims):
            if fixed is not None and not profile.min[axis] == profile.max[axis] == fixed:
                raise PoseStreamError(
                    f"profile {profile.describe()} does not fit {onnx_path}, whose input dimension {'NCHW'[axis]} "
                    f"is fixed at {fixed} (export with --dynamic to vary it)"
                )


def _deserializes(runtime, logger, plan: bytes) -> None:
    logger.clear()
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise PoseStreamError(logger.last_error or "TensorRT returned no engine")
    del engine


def _build_plan(
    trt: ModuleType,
    logger,
    onnx_path: Path,
    spec: EngineSpec,
    workspace_gb: float,
    timing_path: Path | None,
    progress: bool,
) -> tuple[bytes, tuple[str, ...]]:
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: every network is explicit-batch; no flag needed
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = parser_errors(parser) or [logger.last_error or "no details"]
        more = f" (+{len(errors) - MAX_PARSER_ERRORS_SHOWN} more)" if len(errors) > MAX_PARSER_ERRORS_SHOWN else ""
        raise PoseStreamError(
            f"TensorRT's ONNX parser rejected {onnx_path}: {'; '.join(errors[:MAX_PARSER_ERRORS_SHOWN])}{more}"
        )
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    if spec.precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    net_input = network.get_input(0)
    if any(int(d) < 0 for d in net_input.shape):
        for shape in spec.profiles:
            profile = builder.create_optimization_profile()
            profile.set_shape(net_input.name, shape.min, shape.opt, shape.max)
            config.add_optimization_profile(profile)
    if timing_path is not None:
        _load_timing_cache(config, timing_path)

    bars = BuildProgress(enabled=progress)
    monitor = make_progress_monitor(trt, bars)
    config.progress_monitor = monitor  # keep `monitor` referenced until the build returns
    logger.clear()
    try:
        plan = builder.build_serialized_network(network, config)
    finally:
        bars.close()
    if plan is None:
        if bars.cancelled:
            raise PoseStreamError("engine build cancelled")
        raise PoseStreamError(
            f"TensorRT could not build the engine: {logger.last_error or 'see the log (-v)'} "
            "(a larger --workspace-gb may help)"
        )
    if timing_path is not None:
        write_bytes_atomic(timing_path, memoryview(config.get_timing_cache().serialize()).tobytes())
    outputs = tuple(network.get_output(i).name for i in range(network.num_outputs))
    return memoryview(plan).tobytes(), outputs


def _load_timing_cache(config, path: Path) -> None:
    """Start from the saved timing cache: tactic timings are reused and a rebuild takes a fraction of the time."""
    blob = path.read_bytes() if path.is_file() else b""
    cache = config.create_timing_cache(blob)
    if cache is not None and config.set_timing_cache(cache, ignore_mismatch=False):
        log.info("timing cache %s (%d bytes)", path, len(blob))
        return
    log.warning("timing cache %s does not fit this TensorRT/GPU; starting a new one", path)
    config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)


def check_engine_accuracy(
    engine_path: str | os.PathLike,
    onnx_path: str | os.PathLike,
    profiles: Sequence[ShapeProfile],
    *,
    device: int = 0,
    limits: AccuracyLimits = AccuracyLimits(),
) -> tuple[ProfileAccuracy, ...]:
    """Run the engine and ONNX Runtime FP32 (CPU) on the same realistic frames, per profile."""
    from pose_stream.engine.onnxruntime_backend import OnnxRuntimeBackend
    from pose_stream.engine.tensorrt_backend import TensorRTBackend

    results = []
    with TensorRTBackend(engine_path, device) as engine, \
            OnnxRuntimeBackend(onnx_path, providers=["CPUExecutionProvider"]) as reference:
        for index, profile in enumerate(profiles):
            n, _, h, w = profile.min
            batch = np.concatenate([synthetic_frame(h, w, seed=100 * index + i) for i in range(n)])
            report = compare_pose_outputs(engine.infer(batch), reference.infer(batch), engine.num_joints, limits)
            results.append(ProfileAccuracy(profile, report))
    return tuple(results)
