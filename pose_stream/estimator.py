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
from typing import Sequence

import numpy as np

from pose_stream._optional import available
from pose_stream.decoding import NMS_KERNEL, Aggregated, Decoder, ScaleResult, refine_search_from
from pose_stream.errors import PoseStreamError
from pose_stream.joints import JointSet
from pose_stream.kernels.group_numba import NumbaGrouper
from pose_stream.kernels.grouping_types import GroupingParams
from pose_stream.models.config import get_config
from pose_stream.poses import Poses
from pose_stream.preprocessing import Preprocessor, Transform, check_image

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt")


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
    """The backend's outputs for one image: per scale the plain and (with flip test) flipped outputs."""

    scales: tuple[ScaleResult, ...]
    transform: Transform


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
    ) -> None:
        try:
            self._config = get_config(model)
        except ValueError as exc:
            raise PoseStreamError(str(exc)) from None
        self.backend_name = _resolve_backend(backend, weights, onnx, engine)
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
        self._aggregation = None  # the CUDA aggregation, when chosen
        self._closed = False
        if eager:
            self._ensure_backend()

    # ------------------------------------------------------------------------------------------- info
    @property
    def joint_set(self) -> JointSet:
        return self._config.joint_set

    @property
    def backend_info(self):
        """BackendInfo of the backend (created here, in the calling thread, if it does not exist yet)."""
        return self._ensure_backend().info

    # ----------------------------------------------------------------------------------------- stages
    def prepare(self, image_bgr: np.ndarray) -> Prepared:
        """Resize and normalise one BGR image for every scale (and its mirror under flip test)."""
        image_bgr = check_image(image_bgr)
        inputs = []
        for factor in self.scales:
            tensor, _ = self._preprocessors[factor](image_bgr)
            if self.flip:
                tensor = np.concatenate([tensor, tensor[:, :, :, ::-1]])
            inputs.append(np.ascontiguousarray(tensor))
        transform = self._base.transform_for((image_bgr.shape[1], image_bgr.shape[0]))
        return Prepared(tuple(inputs), self.scales, transform)

    def infer(self, prepared: Prepared) -> RawOutputs:
        """Run the network (creates the backend on first use, in this thread)."""
        return self._infer_many([prepared])[0]

    def aggregate(self, raw: RawOutputs) -> Aggregated:
        """Aggregate the outputs of all passes and scales into per-joint candidates."""
        self._check_open()
        aggregation = self._cuda_aggregation()
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
        """People in each of several images; images whose inputs agree in shape share backend calls."""
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

    def _infer_many(self, prepared: Sequence[Prepared]) -> list[RawOutputs]:
        backend = self._ensure_backend()
        if backend.info.device != "cpu" and threading.get_ident() != self._backend_thread:
            raise PoseStreamError("infer() must run in the thread that created the GPU backend")
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
                results.append(ScaleResult(factor, [out0[0:1], out1[0:1]], flipped))
            raws.append(RawOutputs(tuple(results), p.transform))
        return raws

    @staticmethod
    def _run(backend, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        fixed = backend.input_shape[0]
        if fixed is None or fixed == batch.shape[0]:
            out0, out1 = backend.infer(batch)
            return out0, out1
        if batch.shape[0] % fixed:
            raise PoseStreamError(f"the backend takes batches of exactly {fixed}, cannot split {batch.shape[0]}")
        parts = [backend.infer(batch[i:i + fixed]) for i in range(0, batch.shape[0], fixed)]
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

    def _cuda_aggregation(self):
        """The CUDA aggregation when the backend runs on a GPU and pycuda is there, else None (Numba)."""
        if self._aggregation is not None or self._backend is None or self._backend.info.device == "cpu":
            return self._aggregation
        if not (available("pycuda.driver") and available("pose_stream.kernels.aggregate_cuda")):
            return None
        self._aggregation = CudaAggregation(self.joint_set, self._decoder.params)
        log.info("aggregation: CUDA")
        return self._aggregation


class CudaAggregation:
    """The aggregation helper's `aggregate_cuda.CudaAggregator` behind the decoder's stages (GPU machines).

    Owns one CudaAggregator per set of output shapes and the device buffers the host outputs are copied to,
    all in the device's primary context (shared with the backend; pushed around every call, never created).
    Groups right after aggregating: the GPU refine reads the aggregator's latest maps, so the people must be
    found before the next frame is aggregated. Untested without a GPU (integrator: check on one).
    """

    def __init__(self, joint_set: JointSet, params: GroupingParams) -> None:
        import pycuda.driver as cuda

        cuda.init()
        self._cuda = cuda
        self._context = cuda.Device(0).retain_primary_context()
        self._joint_set = joint_set
        self._params = params
        self._grouper = NumbaGrouper(joint_set.visit_order, params)
        self._aggregators: dict[tuple, object] = {}
        self._device: dict[tuple[int, tuple[int, ...]], object] = {}

    def aggregate(self, scales: Sequence[ScaleResult], transform: Transform) -> Aggregated:
        from pose_stream.kernels.aggregate_cuda import DeviceOutputs

        self._context.push()
        try:
            aggregator = self._aggregator(scales, transform)
            pointers = []
            for position, scale in enumerate(scales):
                arrays = list(scale.outputs) + (list(scale.flipped) if scale.flipped is not None else [])
                pointers.append(DeviceOutputs(*[self._upload(position, i, a) for i, a in enumerate(arrays)]))
            cands = aggregator.aggregate(pointers)
            grouped = self._grouper.group(cands, neighbours=cands.neighbours,
                                          refine_search=refine_search_from(aggregator.refine))
        finally:
            self._context.pop()
        return Aggregated(cands, cands.neighbours, transform, grouped=grouped)

    def _aggregator(self, scales: Sequence[ScaleResult], transform: Transform):
        from pose_stream.kernels.aggregate_cuda import CudaAggregator, ScaleShape

        flip = scales[0].flipped is not None
        shapes = tuple(
            ScaleShape(tuple(np.shape(s.outputs[0])[-2:]), tuple(np.shape(s.outputs[1])[-2:]), s.factor)
            for s in scales
        )
        w, h = transform.network_size
        key = (shapes, (h, w), flip)
        if key not in self._aggregators:
            self._aggregators[key] = CudaAggregator(
                self._joint_set.num_joints, (h, w), shapes, self._joint_set.flip_index if flip else None,
                self._params.max_people, NMS_KERNEL,
            )
        return self._aggregators[key]

    def _upload(self, position: int, index: int, array: np.ndarray) -> int:
        host = np.ascontiguousarray(array, np.float32)
        key = (position * 4 + index, host.shape)
        if key not in self._device:
            self._device[key] = self._cuda.mem_alloc(host.nbytes)
        self._cuda.memcpy_htod(self._device[key], host)
        return int(self._device[key])

    def close(self) -> None:
        self._context.push()
        try:
            for aggregator in self._aggregators.values():
                aggregator.close()
            for buffer in self._device.values():
                buffer.free()
        finally:
            self._context.pop()
            self._context.detach()
        self._aggregators.clear()
        self._device.clear()


def _check_precision(precision: str, backend: str, device: str) -> None:
    if precision not in ("fp32", "fp16"):
        raise PoseStreamError(f"precision must be fp32 or fp16, got {precision!r}")
    if precision == "fp16" and backend != "torch":
        raise PoseStreamError(f"precision fp16 applies to the torch backend; a {backend} model carries its own")
    if precision == "fp16":
        import torch

        if device == "cpu" or not torch.cuda.is_available():
            raise PoseStreamError("precision fp16 needs a CUDA GPU (the torch backend runs FP32 on the CPU)")


def _resolve_backend(backend: str, weights, onnx, engine) -> str:
    if backend not in BACKENDS:
        raise PoseStreamError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        backend = "tensorrt" if engine is not None else "onnxruntime" if onnx is not None else "torch"
    needs = {"tensorrt": ("engine", engine), "onnxruntime": ("onnx", onnx)}
    if backend in needs and needs[backend][1] is None:
        raise PoseStreamError(f"backend '{backend}' needs {needs[backend][0]}=PATH")
    return backend
