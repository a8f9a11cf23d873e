"""Runs a BenchConfig: engine-only, end-to-end (pose-stream's estimator stages, serial), pipeline (the same
stages in the real threaded Pipeline) and the baseline.

Every timed configuration first runs `warmup` untimed frames. Frames come from a small pool (generated scenes:
the demo world or stick figures; or the first frames of a video; all network-input sized) that is cycled, so
frame decoding from disk is not part of the figures.
"""
from __future__ import annotations

import copy
import logging
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from pose_stream.benchmarking.backends import BackendSpec, build_estimator
from pose_stream.engine.registry import open_backend
from pose_stream.benchmarking.baseline import BaselineConfig, ReferenceStyleBaseline
from pose_stream.benchmarking.config import BenchConfig
from pose_stream.benchmarking.environment import collect_environment
from pose_stream.benchmarking.pipelined import RenderedOutputsEstimator, latency_ms, run_pipeline, stage_stats
from pose_stream.benchmarking.report import BASELINE, END_TO_END, ENGINE_ONLY, PIPELINE, BenchReport, BenchRow
from pose_stream.benchmarking.stats import StageStats
from pose_stream.benchmarking.synthetic import make_scenes
from pose_stream.decoding import ScaleOutputs
from pose_stream.errors import PoseStreamError
from pose_stream.joints import JointSet
from pose_stream.synthetic.outputs import render_flipped_outputs, render_outputs
from pose_stream.decoding.preprocess import Preprocessor
from pose_stream.input_size import InputSize

log = logging.getLogger(__name__)

FRAME_POOL = 8      # distinct frames per clip
OUTPUT_POOL = 4     # distinct rendered network outputs per clip (they are large at 512x960)
# Rendered outputs get a little noise, as a network's maps have: exactly flat maps make plateaus (near the
# border) whose equal pixels all survive NMS, so one joint would start a second person.
RENDER_NOISE = 0.01

Step = tuple[str, Callable[[Any, int], Any]]


@dataclass
class Clip:
    """Network-input-sized BGR frames, and for generated clips the rendered outputs of their people.

    outputs[i] = (outputs, flipped outputs or None) for frame i of the pool (synthetic decoding only).
    """

    frames: list[np.ndarray]
    outputs: list[tuple[list[np.ndarray], list[np.ndarray] | None]] | None = None

    def frame(self, index: int) -> np.ndarray:
        return self.frames[index % len(self.frames)]

    def rendered(self, index: int) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        assert self.outputs is not None
        return self.outputs[index % len(self.outputs)]

    def with_rendered_outputs(self, raw, index: int):
        """The estimator's RawOutputs with frame `index`'s rendered outputs in place of the network's."""
        return replace(raw, scales=(ScaleOutputs(*self.rendered(index)),), stream=None, generation=None)


def run_benchmark(config: BenchConfig, command: str = "", progress: bool = True) -> BenchReport:
    """Time every configuration of `config`; returns the report (nothing printed, nothing written)."""
    import torch

    if config.threads:
        import numba

        torch.set_num_threads(config.threads)
        numba.set_num_threads(min(config.threads, numba.config.NUMBA_NUM_THREADS))
    model, weights_label = _load_model(config)
    decode_input = config.resolved_decode_input
    report = BenchReport(collect_environment(), {
        "command": command, "model": config.model, "weights_label": weights_label, "decode_input": decode_input,
        "frames": config.frames, "warmup": config.warmup, "baseline_frames": config.baseline_frames,
        "threads": config.threads, "seed": config.seed,
    })
    joint_set = model.config.joint_set
    with tempfile.TemporaryDirectory(prefix="pose-stream-bench-") as work:
        weights = config.weights or _save_weights(model, Path(work))
        onnx = _onnx_model(config, model, Path(work))
        for size in config.input_sizes:
            for flip in config.flips:
                clips = {n: _make_clip(config, size, n, flip, joint_set, decode_input) for n in config.people_counts}
                any_clip = next(iter(clips.values()))
                for spec in config.backends:
                    for batch in config.batches:
                        report.rows.append(_engine_only(spec, config, model, onnx, size, batch, flip, any_clip, progress))
                        for people, clip in clips.items():
                            report.rows.append(_end_to_end(spec, config, weights, onnx, size, batch, flip, people,
                                                           clip, decode_input, progress))
                    for people, clip in clips.items():
                        report.rows.append(_pipeline(spec, config, weights, onnx, size, flip, people, clip,
                                                     decode_input, progress))
                if config.baseline:
                    for people, clip in clips.items():
                        report.rows.append(_baseline(config, model, size, flip, people, clip, decode_input, progress))
    return report


def _load_model(config: BenchConfig):
    import torch

    from pose_stream.models import build_model, get_config, load_checkpoint

    try:
        get_config(config.model)
    except ValueError as exc:
        raise PoseStreamError(str(exc)) from None
    torch.manual_seed(config.seed)
    model = build_model(config.model)
    if config.weights:
        load_checkpoint(model, config.weights)
        return model, config.weights
    return model, f"random weights, seed {config.seed}"


def _save_weights(model, work: Path) -> str:
    """The random network on disk, so that every path (torch, ONNX, estimator, baseline) runs the same weights."""
    import torch

    path = work / "weights.pth"
    torch.save(model.state_dict(), path)
    return str(path)


def _onnx_model(config: BenchConfig, model, work: Path) -> str | None:
    if not any(spec.framework == "onnxruntime" for spec in config.backends):
        return None
    if config.onnx:
        if not Path(config.onnx).is_file():
            raise PoseStreamError(f"ONNX model not found: {config.onnx}")
        return config.onnx
    from pose_stream.export import export_onnx

    path = work / "model.onnx"
    log.info("exporting %s to ONNX (dynamic shapes) for the onnxruntime backend", config.model)
    export_onnx(model, path, input_hw=(128, 128), dynamic=True)
    return str(path)


def _make_clip(config: BenchConfig, size_hw: tuple[int, int], people: int | None, flip: bool,
               joint_set: JointSet, decode_input: str) -> Clip:
    height, width = size_hw
    if config.video:
        return Clip(_video_frames(config.video, (width, height)))
    # What the network sees matters only where its own outputs are decoded.
    scenes = make_scenes(people, (width, height), joint_set, FRAME_POOL, config.seed + 1000 * people,
                         demo_world=decode_input == "network")
    outputs = None
    if decode_input == "synthetic":
        rng = np.random.default_rng(config.seed)
        noisy = dict(noise=RENDER_NOISE, rng=rng)
        outputs = [(render_outputs(s.people, (width, height), joint_set.num_joints, **noisy),
                    render_flipped_outputs(s.people, (width, height), joint_set, **noisy) if flip else None)
                   for s in scenes[:OUTPUT_POOL]]
    return Clip([s.frame for s in scenes], outputs)


def _video_frames(path: str, size: tuple[int, int]) -> list[np.ndarray]:
    import cv2

    if not Path(path).is_file():
        raise PoseStreamError(f"video not found: {path}")
    capture = cv2.VideoCapture(path)
    frames = []
    try:
        while len(frames) < FRAME_POOL:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
    finally:
        capture.release()
    if not frames:
        raise PoseStreamError(f"cannot read any frame from {path}")
    return frames


def _bar(total: int, description: str, progress: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="frame", leave=False, disable=not progress)


def _time_steps(steps: Sequence[Step], count: int, warmup: int, bar, sync: Callable[[], None] | None = None,
                frames_per_call: int = 1) -> tuple[dict[str, list[float]], float]:
    """Run the steps in order `warmup + count` times, each on the previous step's result.

    Returns the seconds of every timed call per step and the total timed seconds.
    """
    seconds: dict[str, list[float]] = {name: [] for name, _ in steps}
    total = 0.0
    for i in range(warmup + count):
        value: Any = None
        start = time.perf_counter()
        for name, step in steps:
            began = time.perf_counter()
            value = step(value, i)
            if sync is not None:
                sync()
            if i >= warmup:
                seconds[name].append(time.perf_counter() - began)
        if i >= warmup:
            total += time.perf_counter() - start
            bar.update(frames_per_call)
    return seconds, total


def _cuda_sync(device: str) -> Callable[[], None] | None:
    import torch

    if device == "cpu" or not torch.cuda.is_available():
        return None
    return torch.cuda.synchronize


def _engine_only(spec: BackendSpec, config: BenchConfig, model, onnx: str | None, size: tuple[int, int],
                 batch: int, flip: bool, clip: Clip, progress: bool) -> BenchRow:
    base = dict(kind=ENGINE_ONLY, backend=spec.name, input_hw=size, batch=batch, flip=flip, people=None)
    prepare = Preprocessor(min(size), exact=size)
    images = np.concatenate([prepare(clip.frame(i))[0] for i in range(batch)])
    if flip:  # the plain and the flipped pass of every frame in one call
        images = np.concatenate([images, np.ascontiguousarray(images[..., ::-1])])
    calls = math.ceil(config.frames / batch)
    # A copy: the torch backend converts its model in place (device, FP16).
    model_file = {"torch": None, "onnxruntime": onnx, "tensorrt": config.engine, "triton": None}[spec.framework]
    with open_backend(spec, model_file, model=copy.deepcopy(model) if spec.framework == "torch" else config.model,
                      device=config.device, triton=config.triton) as backend:
        for _ in range(config.warmup):  # untimed, and before the server's snapshot: its figures are the timed calls
            backend.infer(images)
        before = backend.statistics() if spec.framework == "triton" else None
        with _bar(calls * batch, f"engine-only {spec.name} {size[0]}x{size[1]} b{batch}", progress) as bar:
            seconds, total = _time_steps([("infer", lambda _, i: backend.infer(images))], calls, 0, bar,
                                         frames_per_call=batch)
        info = backend.info
        note = _server_note(before, backend.statistics()) if before is not None else ""
    return BenchRow(**base, precision=info.precision, device=info.device, frames=calls * batch,
                    fps=calls * batch / total, stages={"infer": StageStats.from_seconds(seconds["infer"])}, note=note)


def _server_note(before, after) -> str:
    """What Triton's own statistics say about the timed calls (two engine.triton_backend.ServerStatistics):
    inputs, batches, and per request the time in the queue and in compute."""
    calls = after.since(before)
    return (f"server: {calls['inputs']} inputs in {calls['executions']} executions; per request queue "
            f"{calls['queue_ms']} ms, compute {calls['compute_infer_ms']} ms (Triton's statistics of these calls)")


def _end_to_end(spec: BackendSpec, config: BenchConfig, weights: str, onnx: str | None, size: tuple[int, int],
                batch: int, flip: bool, people: int | None, clip: Clip, decode_input: str, progress: bool) -> BenchRow:
    base = dict(kind=END_TO_END, backend=spec.name, input_hw=size, batch=batch, flip=flip, people=people,
                decode_input=decode_input)
    if batch > 1 and decode_input == "synthetic":
        return BenchRow(**base, precision=spec.precision, device="", note="batched end-to-end decodes network outputs only")
    try:
        estimator = _estimator(spec, config, weights, onnx, size, flip)
    except PoseStreamError as exc:
        return BenchRow(**base, precision=spec.precision, device="", note=str(exc))
    with estimator:
        steps, grouped_early = _product_steps(estimator, clip, batch, decode_input)
        calls = math.ceil(config.frames / batch)
        with _bar(calls * batch, f"end-to-end {spec.name} {size[0]}x{size[1]} b{batch} {people} people", progress) as bar:
            seconds, total = _time_steps(steps, calls, config.warmup, bar, _cuda_sync(config.device), batch)
        info = estimator.backend_info
        stages = {name: StageStats.from_seconds(s) for name, s in seconds.items()}
        split, note = _decode_split(info.device, stages, grouped_early[0])
        return BenchRow(**base, precision=info.precision, device=info.device, frames=calls * batch,
                        fps=calls * batch / total, stages=stages, decode_split=split, note=note)


def _estimator(spec: BackendSpec, config: BenchConfig, weights: str, onnx: str | None, size: tuple[int, int],
               flip: bool):
    sources = {"torch": dict(weights=weights), "onnxruntime": dict(onnx=onnx), "tensorrt": dict(engine=config.engine),
               "triton": dict(triton=config.triton)}
    return build_estimator(spec, model=config.model, **sources[spec.framework], input_size=InputSize(exact=size),
                           flip=flip, scales=(1.0,), device=config.device)


def _pipeline(spec: BackendSpec, config: BenchConfig, weights: str, onnx: str | None, size: tuple[int, int],
              flip: bool, people: int | None, clip: Clip, decode_input: str, progress: bool) -> BenchRow:
    """The clip through the real threaded Pipeline (batch 1, no rendering, no output work); the first
    `warmup` frames are run but not counted."""
    base = dict(kind=PIPELINE, backend=spec.name, input_hw=size, batch=1, flip=flip, people=people,
                decode_input=decode_input)
    try:
        estimator = _estimator(spec, config, weights, onnx, size, flip)
    except PoseStreamError as exc:
        return BenchRow(**base, precision=spec.precision, device="", note=str(exc))
    staged = RenderedOutputsEstimator(estimator, clip.with_rendered_outputs) if decode_input == "synthetic" else estimator
    with _bar(config.frames, f"pipeline {spec.name} {size[0]}x{size[1]} {people} people", progress) as bar:
        stats, info = run_pipeline(staged, clip.frame, config.frames, config.warmup, (size[1], size[0]), bar.update)
    fps = stats.fps
    precision, device = (spec.precision, "") if info is None else (info.precision, info.device)
    return BenchRow(**base, precision=precision, device=device, frames=stats.frames,
                    fps=None if fps != fps else fps, stages=stage_stats(stats), latency_ms=latency_ms(stats),
                    note="" if fps == fps else "too few timed frames for a pipeline FPS (needs 2)")


def _product_steps(estimator, clip: Clip, batch: int, decode_input: str) -> tuple[list[Step], list[bool]]:
    """The estimator's stages as timed steps; with synthetic decoding, aggregation gets the rendered outputs
    in place of the network's. The list says whether aggregation grouped at once (the CUDA path does)."""
    grouped_early = [False]
    if batch > 1:
        return [("read", lambda _, i: [clip.frame(i * batch + j) for j in range(batch)]),
                ("predict_batch", lambda frames, i: estimator.predict_batch(frames))], grouped_early

    def aggregate(raw, i: int):
        if decode_input == "synthetic":
            raw = clip.with_rendered_outputs(raw, i)
        aggregated = estimator.aggregate(raw)
        grouped_early[0] = aggregated.grouped is not None
        return aggregated

    return [("read", lambda _, i: clip.frame(i)),
            ("prepare", lambda frame, i: estimator.prepare(frame)),
            ("infer", lambda prepared, i: estimator.infer(prepared)),
            ("aggregate", aggregate),
            ("group", lambda aggregated, i: estimator.group(aggregated))], grouped_early


def _decode_split(device: str, stages: dict[str, StageStats], grouped_early: bool) -> tuple[dict[str, float] | None, str]:
    """Median decoding milliseconds on the GPU and on the CPU, and a note where they do not separate.

    The Numba aggregation runs on the CPU; the CUDA one (GPU backends with pycuda) also groups, as its refine
    reads the maps it has just made, so its aggregate stage holds the CPU grouping too."""
    if "aggregate" not in stages or "group" not in stages:
        return None, ""
    aggregate, group = stages["aggregate"].median_ms, stages["group"].median_ms
    if not grouped_early:
        return {"gpu_ms": 0.0, "cpu_ms": aggregate + group}, ""
    return ({"gpu_ms": aggregate, "cpu_ms": group},
            f"CUDA aggregation on {device}: its stage (decode GPU ms) includes grouping, which needs its latest maps")


def _baseline(config: BenchConfig, model, size: tuple[int, int], flip: bool, people: int | None, clip: Clip,
              decode_input: str, progress: bool) -> BenchRow:
    import torch

    device = "cuda" if config.device != "cpu" and torch.cuda.is_available() else "cpu"
    baseline = ReferenceStyleBaseline(copy.deepcopy(model), BaselineConfig(input_size=min(size), flip=flip), device=device)
    if decode_input == "synthetic":
        def raw_outputs(inferred, i):
            outputs, flipped = clip.rendered(i)
            return baseline.to_device(outputs), baseline.to_device(flipped), inferred[2]
    else:
        def raw_outputs(inferred, i):
            return inferred

    steps: list[Step] = [
        ("read", lambda _, i: clip.frame(i)),
        ("prepare", lambda frame, i: baseline.prepare(frame)),
        ("infer", lambda prepared, i: (*baseline.infer(prepared[0]), prepared[1])),
        ("aggregate", lambda inferred, i: (*_aggregate(baseline, raw_outputs(inferred, i)), inferred[2])),
        ("group", lambda maps, i: baseline.group(*maps)),
    ]
    count = min(config.baseline_frames, config.frames)
    # The baseline is slow and its timing is steady after a frame or two.
    warmup = min(config.warmup, 2)
    with _bar(count, f"baseline {size[0]}x{size[1]} {people} people", progress) as bar:
        seconds, total = _time_steps(steps, count, warmup, bar, _cuda_sync(device))
    return BenchRow(kind=BASELINE, backend="torch", precision="fp32", device=device, input_hw=size, batch=1, flip=flip,
                    people=people, decode_input=decode_input, frames=count, fps=count / total,
                    stages={n: StageStats.from_seconds(s) for n, s in seconds.items()})


def _aggregate(baseline: ReferenceStyleBaseline, raw) -> tuple:
    outputs, flipped, transform = raw
    return baseline.aggregate(outputs, flipped, transform.network_size)
