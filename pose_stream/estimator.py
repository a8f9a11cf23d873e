"""PoseEstimator: image -> Poses, as four stages a pipeline can run in separate threads.

prepare (resize, normalise, flip) -> infer (the backend) -> aggregate (candidates) -> group (people).
`predict` runs them in a row; `predict_batch` feeds several images (and the plain and flipped passes) to the
backend in one call where their shapes agree.
"""
from __future__ import annotations

import importlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Sequence

import numpy as np

from pose_stream._optional import available
from pose_stream.decoding import Aggregated, Decoder, ScaleOutputs
from pose_stream.errors import PoseStreamError
from pose_stream.joints import JointSet
from pose_stream.decoding.grouping_types import GroupingParams
from pose_stream.models.config import get_config
from pose_stream.poses import Poses
from pose_stream.decoding.preprocess import Preprocessor, Transform, check_image

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt")
DEFAULT_MAX_ASPECT = 4.0  # long side / short side of the largest image `prepare` takes


@dataclass(frozen=True)
class Prepared:
    """Network inputs of one image.

    Attributes:
        inputs: per scale, float32 (P, 3, h, w) with P = 2 (plain, flipped) under flip test, else 1.
        factors: the scale factor of each entry of inputs.
        transform: the scale-1 resize of the image (decoded points are mapped back with it).
    """

    inputs: tuple[np.ndarray, ...]
    factors: tuple[float, ...]
    transform: Transform


@dataclass(frozen=True)
class RawOutputs:
    """The backend's outputs for one image: per scale the plain and (with flip test) flipped outputs.

    Attributes:
        scales: per scale, host arrays, or (device outputs) DeviceTensors of batch 1 left on the GPU.
        transform: the scale-1 resize of the image.
        stream: device outputs: the backend's CUDA stream their producing work is queued on.
        generation: device outputs: the backend call they came from; a later `infer` overwrites them.
    """

    scales: tuple[ScaleOutputs, ...]
    transform: Transform
    stream: Any = None
    generation: int | None = None

    @property
    def on_device(self) -> bool:
        return self.generation is not None


class PoseEstimator:
    """Multi-person pose estimation with HigherHRNet.

    Args:
        model: model config name (e.g. "w32_512", "crowdpose_w32_512"); it also names the joint set.
        weights: a checkpoint (.pth) for the torch backend; without one the network is random (a warning).
        onnx: an exported ONNX model (ONNX Runtime backend).
        engine: a TensorRT engine file (TensorRT backend).
        backend: "auto" (tensorrt with engine, onnxruntime with onnx, else torch) or one of those names.
        input_size: S, the network size of the shorter image side.
        flip: flip test (a second pass on the mirrored input).
        scales: test scale factors; several make a multi-scale test and must include 1.0.
        device: "auto", "cpu" or "cuda[:N]" for the torch backend.
        eager: create the backend now instead of on the first `infer` (backends that hold GPU state must
            be used from the thread that created them).
        params: grouping settings.
        precision: "fp32", or "fp16" for the torch backend on CUDA (ONNX and TensorRT models carry theirs).
        device_outputs: with the TensorRT backend, leave the network outputs on the GPU and aggregate them there
            (CUDA kernels compiled by pycuda; without a compiler it falls back to host copies and Numba, with a
            warning). Each frame must then be aggregated before the next `infer`, in the same thread: the
            pipeline does so (see `aggregate_in_infer_thread`).
        max_aspect: refuse images whose long side is more than this many times the short side (the short side
            is scaled to input_size, so a 4x4000 strip would become a 128x128000 network input); None: no limit.
    """

    def __init__(
        self,
        model: str = "w32_512",
        weights: str | Path | None = None,
        onnx: str | Path | None = None,
        engine: str | Path | None = None,
        backend: str = "auto",
        input_size: int = 512,
        flip: bool = True,
        scales: Sequence[float] = (1.0,),
        device: str = "auto",
        eager: bool = False,
        params: GroupingParams = GroupingParams(),
        precision: str = "fp32",
        device_outputs: bool = True,
        max_aspect: float | None = DEFAULT_MAX_ASPECT,
    ) -> None:
        try:
            self._config = get_config(model)
        except ValueError as exc:
            raise PoseStreamError(str(exc)) from None
        self.backend_name = resolve_backend(backend, weights, onnx, engine)
        if max_aspect is not None and not max_aspect >= 1:
            raise PoseStreamError(f"max_aspect must be at least 1 (or None for no limit), got {max_aspect}")
        self.max_aspect = max_aspect
        factors = tuple(float(s) for s in scales)
        if not factors or any(not s > 0 for s in factors) or len(set(factors)) != len(factors):
            raise PoseStreamError(f"scales must be distinct positive factors, got {list(scales)}")
        if len(factors) > 1 and 1.0 not in factors:
            raise PoseStreamError(f"a multi-scale test needs the scale 1.0 (its tags are used), got {list(factors)}")
        if input_size <= 0:
            raise PoseStreamError(f"input_size must be positive, got {input_size}")
        _check_precision(precision, self.backend_name, device)
        self.precision = precision
        self.weights, self.onnx, self.engine = weights, onnx, engine
        self.input_size = input_size
        self.flip = flip
        self.scales = tuple(sorted(factors, reverse=True))
        self.device = device
        min_scale = min(self.scales)
        self._preprocessors = {s: Preprocessor(input_size, s, min_scale) for s in self.scales}
        self._base = Preprocessor(input_size, 1.0, min_scale)
        self._decoder = Decoder(self.joint_set, params)
        self._backend = None
        self._backend_thread: int | None = None
        self._device_outputs = device_outputs and self.backend_name == "tensorrt"
        self._generation = 0  # backend calls made with device outputs
        self._aggregation = None  # the GPU aggregation, when chosen
        self._aggregation_unavailable = False
        self._closed = False
        if eager:
            self._ensure_backend()

    # ------------------------------------------------------------------------------------------- info
    @property
    def joint_set(self) -> JointSet:
        return self._config.joint_set

    @property
    def aggregate_in_infer_thread(self) -> bool:
        """True when outputs stay on the GPU: `aggregate` must follow each `infer` in the inference thread."""
        return self._device_outputs

    @property
    def backend_info(self):
        """BackendInfo of the backend (created here, in the calling thread, if it does not exist yet)."""
        return self._ensure_backend().info

    # ----------------------------------------------------------------------------------------- stages
    def prepare(self, image_bgr: np.ndarray) -> Prepared:
        """Resize and normalise one BGR image for every scale (and its mirror under flip test)."""
        image_bgr = check_image(image_bgr)
        height, width = image_bgr.shape[:2]
        if self.max_aspect is not None and max(height, width) > self.max_aspect * min(height, width):
            raise PoseStreamError(
                f"a {width}x{height} image is {max(height, width) / min(height, width):.1f}:1, beyond the limit of "
                f"{self.max_aspect:g}:1 (its short side is scaled to {self.input_size} px, so the network input "
                f"would be {max(height, width) * self.input_size // min(height, width)} px long); crop it, or raise "
                "the limit (--max-aspect)")
        inputs = []
        for factor in self.scales:
            tensor, _ = self._preprocessors[factor](image_bgr)
            if tensor.shape[2] % 32 or tensor.shape[3] % 32:
                # The reference rounds the smallest scale's size to 64 and multiplies it up, so a factor such as
                # 0.75 gives sizes the network's five stride-2 steps cannot take.
                raise PoseStreamError(
                    f"test scale {factor:g} makes a {tensor.shape[3]}x{tensor.shape[2]} network input for this "
                    f"{image_bgr.shape[1]}x{image_bgr.shape[0]} image, but the network needs multiples of 32; "
                    f"use factors such as 2, 1, 0.5 (scales {', '.join(f'{s:g}' for s in self.scales)} given)"
                )
            if self.flip:
                tensor = np.concatenate([tensor, tensor[:, :, :, ::-1]])
            inputs.append(np.ascontiguousarray(tensor))
        transform = self._base.transform_for((image_bgr.shape[1], image_bgr.shape[0]))
        return Prepared(tuple(inputs), self.scales, transform)

    def infer(self, prepared: Prepared) -> RawOutputs:
        """Run the network (creates the backend on first use, in this thread)."""
        self._ensure_backend()
        if self._device_outputs:
            return self._infer_on_device(prepared)
        return self._infer_many([prepared])[0]

    def aggregate(self, raw: RawOutputs) -> Aggregated:
        """Aggregate the outputs of all passes and scales into per-joint candidates."""
        self._check_open()
        if raw.on_device:
            if raw.generation != self._generation:
                raise PoseStreamError(
                    "these GPU outputs were overwritten by a later infer(): with device outputs, aggregate each "
                    "frame before inferring the next, in the same thread (PoseEstimator.aggregate_in_infer_thread)"
                )
            return self._aggregation.aggregate(raw.scales, raw.transform, raw.stream)
        aggregation = self._host_gpu_aggregation()
        if aggregation is not None:
            return aggregation.aggregate(raw.scales, raw.transform)
        return self._decoder.aggregate(raw.scales, raw.transform)

    def group(self, aggregated: Aggregated) -> Poses:
        """Group candidates into people, in image pixels."""
        self._check_open()
        return self._decoder.group(aggregated)

    def predict(self, image_bgr: np.ndarray) -> Poses:
        """People in one BGR image."""
        return self.group(self.aggregate(self.infer(self.prepare(image_bgr))))

    def predict_batch(self, images_bgr: Sequence[np.ndarray]) -> list[Poses]:
        """People in each of several images; images whose inputs agree in shape share backend calls (except
        with device outputs, which one image at a time keeps on the GPU)."""
        self._ensure_backend()
        if self._device_outputs:
            return [self.predict(image) for image in images_bgr]
        raws = self._infer_many([self.prepare(image) for image in images_bgr])
        return [self.group(self.aggregate(raw)) for raw in raws]

    # -------------------------------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Release the backend (and the CUDA aggregation); idempotent."""
        if self._closed:
            return
        self._closed = True
        for resource in (self._aggregation, self._backend):
            if resource is not None:
                resource.close()
        self._aggregation = self._backend = None

    def __enter__(self) -> "PoseEstimator":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ---------------------------------------------------------------------------------------- private
    def _check_open(self) -> None:
        if self._closed:
            raise PoseStreamError("this PoseEstimator is closed")

    def _check_backend_thread(self, backend) -> None:
        if backend.info.device != "cpu" and threading.get_ident() != self._backend_thread:
            raise PoseStreamError("infer() must run in the thread that created the GPU backend")

    def _infer_on_device(self, prepared: Prepared) -> RawOutputs:
        """Every pass of one image through `infer_device`; all but the last call's outputs are kept on the GPU
        by the aggregation (the backend's buffers are overwritten by each call)."""
        backend = self._ensure_backend()
        self._check_backend_thread(backend)
        calls = [(s, part) for s, batch in enumerate(prepared.inputs)  # (scale index, backend batch)
                 for part in self._backend_batches(backend, batch)]
        self._generation += 1
        rows: list[list[tuple]] = [[] for _ in prepared.inputs]
        stream = None
        for n, (s, batch) in enumerate(calls):
            outputs = backend.infer_device(batch)
            stream = outputs.stream
            tensors = tuple(outputs)
            if n < len(calls) - 1:
                tensors = self._aggregation.keep(tensors, n, stream)
            rows[s].extend(tuple(t.row(r) for t in tensors) for r in range(batch.shape[0]))
        scales = tuple(ScaleOutputs(tuple(r[0]), tuple(r[1]) if self.flip else None, factor)
                       for factor, r in zip(prepared.factors, rows))
        return RawOutputs(scales, prepared.transform, stream=stream, generation=self._generation)

    def _infer_many(self, prepared: Sequence[Prepared]) -> list[RawOutputs]:
        backend = self._ensure_backend()
        self._check_backend_thread(backend)
        # outputs[i][s]: the (out0, out1) batch rows of image i at scale s
        outputs: list[list[list[np.ndarray] | None]] = [[None] * len(self.scales) for _ in prepared]
        for s in range(len(self.scales)):
            by_shape: dict[tuple[int, ...], list[int]] = {}
            for i, p in enumerate(prepared):
                by_shape.setdefault(p.inputs[s].shape, []).append(i)
            for members in by_shape.values():
                batch = np.concatenate([prepared[i].inputs[s] for i in members])
                out0, out1 = self._run(backend, batch)
                rows = prepared[members[0]].inputs[s].shape[0]
                for n, i in enumerate(members):
                    outputs[i][s] = [out0[n * rows:(n + 1) * rows], out1[n * rows:(n + 1) * rows]]
        raws = []
        for p, per_scale in zip(prepared, outputs):
            results = []
            for factor, (out0, out1) in zip(p.factors, per_scale):
                flipped = [out0[1:2], out1[1:2]] if self.flip else None
                results.append(ScaleOutputs((out0[0:1], out1[0:1]), flipped, factor))
            raws.append(RawOutputs(tuple(results), p.transform))
        return raws

    @staticmethod
    def _backend_batches(backend, batch: np.ndarray) -> list[np.ndarray]:
        """`batch` cut into the backend's fixed batch size (whole when it takes any size)."""
        fixed = backend.input_shape[0]
        if fixed is None or fixed == batch.shape[0]:
            return [batch]
        if batch.shape[0] % fixed:
            raise PoseStreamError(f"the backend takes batches of exactly {fixed}, cannot split {batch.shape[0]}")
        return [batch[i:i + fixed] for i in range(0, batch.shape[0], fixed)]

    @classmethod
    def _run(cls, backend, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        parts = [backend.infer(part) for part in cls._backend_batches(backend, batch)]
        if len(parts) == 1:
            out0, out1 = parts[0]
            return out0, out1
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _ensure_backend(self):
        self._check_open()
        if self._backend is None:
            backend = self._create_backend()
            if backend.num_joints != self.joint_set.num_joints:
                backend.close()
                raise PoseStreamError(
                    f"the network has {backend.num_joints} joints but model '{self._config.name}' has "
                    f"{self.joint_set.num_joints} ({self.joint_set.name}); pass the matching model="
                )
            self._backend = backend
            self._backend_thread = threading.get_ident()
            log.info("backend: %s", backend.info)
            if self._device_outputs:
                self._device_aggregation(backend)
        return self._backend

    def _create_backend(self):
        if self.backend_name == "tensorrt":
            engine_module = importlib.import_module("pose_stream.engine")
            backend_class = getattr(engine_module, "TensorRTBackend", None)
            if backend_class is None:
                raise PoseStreamError("this build of pose-stream has no TensorRT backend")
            return backend_class(self.engine)
        if self.backend_name == "onnxruntime":
            from pose_stream.engine import OnnxRuntimeBackend

            return OnnxRuntimeBackend(self.onnx)
        from pose_stream.engine import TorchBackend
        from pose_stream.models import build_model, load_checkpoint

        model = build_model(self._config)
        if self.weights is not None:
            load_checkpoint(model, self.weights)
        else:
            log.warning("no weights given: model '%s' is randomly initialised and will find no one",
                        self._config.name)
        return TorchBackend(model, self.device, fp16=self.precision == "fp16")

    def _device_aggregation(self, backend) -> None:
        """The GPU aggregation in the TensorRT backend's context, or host outputs (Numba) if it cannot run."""
        from pose_stream.decoding.aggregate_gpu import GpuAggregation

        try:
            self._aggregation = GpuAggregation(self.joint_set, self._decoder.params, context=backend.cuda_context)
        except PoseStreamError as exc:
            log.warning("%s; the outputs are copied to the host and aggregated on the CPU instead", exc)
            self._device_outputs = False
            self._aggregation_unavailable = True  # the host path would compile the same kernels
        else:
            log.info("aggregation: CUDA, reading the engine's outputs on the GPU")

    def _host_gpu_aggregation(self):
        """The GPU aggregation for host outputs of a GPU backend when pycuda is there, else None (Numba)."""
        if (self._aggregation is not None or self._aggregation_unavailable or self._backend is None
                or self._backend.info.device == "cpu"):
            return self._aggregation
        if not (available("pycuda.driver") and available("pose_stream.decoding.aggregate_cuda")):
            self._aggregation_unavailable = True
            return None
        from pose_stream.decoding.aggregate_gpu import GpuAggregation

        try:
            self._aggregation = GpuAggregation(self.joint_set, self._decoder.params)
        except PoseStreamError as exc:
            log.warning("%s; aggregating on the CPU (Numba)", exc)
            self._aggregation_unavailable = True
            return None
        log.info("aggregation: CUDA")
        return self._aggregation


def _check_precision(precision: str, backend: str, device: str) -> None:
    if precision not in ("fp32", "fp16"):
        raise PoseStreamError(f"precision must be fp32 or fp16, got {precision!r}")
    if precision == "fp16" and backend != "torch":
        raise PoseStreamError(f"precision fp16 applies to the torch backend; a {backend} model carries its own")
    if precision == "fp16":
        import torch

        if device == "cpu" or not torch.cuda.is_available():
            raise PoseStreamError("precision fp16 needs a CUDA GPU (the torch backend runs FP32 on the CPU)")


def resolve_backend(backend: str, weights=None, onnx=None, engine=None) -> str:
    """The backend that runs: `backend`, or for "auto" the one the model file is for (torch without one).

    PoseStreamError when the name is unknown, when several model files are given, or when the model file is for
    another backend than the one asked for (an ONNX file under --backend torch would otherwise be ignored and a
    random network run instead).
    """
    if backend not in BACKENDS:
        raise PoseStreamError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    files = [(name, kind, path) for name, kind, path in (("torch", "PyTorch checkpoint", weights),
                                                          ("onnxruntime", "ONNX model", onnx),
                                                          ("tensorrt", "TensorRT engine", engine)) if path is not None]
    if len(files) > 1:
        raise PoseStreamError(f"give one model file, not {' and '.join(f'a {kind} ({path})' for _, kind, path in files)}")
    if backend == "auto":
        return files[0][0] if files else "torch"
    if files and files[0][0] != backend:
        name, kind, path = files[0]
        raise PoseStreamError(f"{path} is a {kind}, which the {name} backend runs, but backend '{backend}' was asked "
                              f"for: drop the backend choice or give a model file for '{backend}'")
    needs = {"tensorrt": "engine=PATH (a TensorRT engine, --engine)", "onnxruntime": "onnx=PATH (an ONNX model, --onnx)"}
    if backend in needs and not files:
        raise PoseStreamError(f"backend '{backend}' needs {needs[backend]}")
    return backend
