"""PoseEstimator: image -> Poses, as four stages a pipeline can run in separate threads.

prepare (resize, normalise, flip) -> infer (the backend) -> aggregate (candidates) -> group (people).
`predict` runs them in a row; `predict_batch` feeds several images (and the plain and flipped passes) to the
backend in one call where their shapes agree. What it computes is an `EstimatorConfig`; the backend comes
from `engine.registry`.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from types import TracebackType
from typing import Any, Sequence

import numpy as np

from pose_stream.decoding.decoder import Aggregated, Decoder
from pose_stream.decoding.warm_up import with_planted_people
from pose_stream.errors import PoseStreamError
from pose_stream.estimator.aggregation import Aggregation, keeps_outputs_on_device
from pose_stream.estimator.config import EstimatorConfig
from pose_stream.estimator.passes import BackendPasses, InputMaker, Prepared, RawOutputs
from pose_stream.joints import JointSet
from pose_stream.poses import Poses

log = logging.getLogger(__name__)


WARM_UP_SIDE = 64  # pixels of the blank image warm_up runs (any size works; small is quick)


class PoseEstimator:
    """Multi-person pose estimation with HigherHRNet.

    Args:
        model: a model config name (then `options` are the other EstimatorConfig fields: weights, onnx, engine,
            backend, input_size, flip, scales, device, precision, params, device_outputs, max_aspect), or an
            EstimatorConfig (`options` then change some of its fields).
        eager: create the backend now instead of on the first `infer` (a backend that holds GPU state must be
            used from the thread that created it).

    With TensorRT device outputs each frame must be aggregated before the next `infer`, in the same thread;
    the pipeline does so (see `aggregate_in_infer_thread`).
    """

    def __init__(self, model: str | EstimatorConfig = "w32_512", *, eager: bool = False, **options: Any) -> None:
        if isinstance(model, EstimatorConfig):
            self.config = replace(model, **options) if options else model
        else:
            self.config = EstimatorConfig(model=model, **options)
        config = self.config
        self.spec = config.backend_spec
        self._inputs = InputMaker(config.input_size, config.scales, config.flip, config.max_aspect)
        self._decoder = Decoder(config.joint_set, config.params)
        self._aggregation = Aggregation(self._decoder)
        self._backend: Any = None
        self._passes: BackendPasses | None = None
        self._device_outputs = config.device_outputs and keeps_outputs_on_device(self.spec.framework, config.device)
        self._closed = False
        if eager:
            self._ensure_backend()

    @property
    def joint_set(self) -> JointSet:
        return self.config.joint_set

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
        return self._inputs(image_bgr)

    def infer(self, prepared: Prepared) -> RawOutputs:
        """Run the network (creates the backend on first use, in this thread)."""
        return self.infer_batch([prepared])[0]

    def infer_batch(self, prepared: Sequence[Prepared]) -> list[RawOutputs]:
        """Run the network on several images at once: images whose inputs agree in shape (and their flipped
        passes) share one backend call. With device outputs, aggregate every one of them before the next call."""
        self._ensure_backend()
        if self._device_outputs:
            return self._passes.on_device(prepared, self._aggregation.keep)
        return self._passes.host(prepared)

    def aggregate(self, raw: RawOutputs) -> Aggregated:
        """Aggregate the outputs of all passes and scales into per-joint candidates."""
        self._check_open()
        if raw.on_device and (self._passes is None or raw.generation != self._passes.generation):
            raise PoseStreamError(
                "these GPU outputs were overwritten by a later infer(): with device outputs, aggregate each "
                "frame before inferring the next, in the same thread (PoseEstimator.aggregate_in_infer_thread)"
            )
        return self._aggregation(raw, self._backend)

    def group(self, aggregated: Aggregated) -> Poses:
        """Group candidates into people, in image pixels."""
        self._check_open()
        return self._decoder.group(aggregated)

    def predict(self, image_bgr: np.ndarray) -> Poses:
        """People in one BGR image."""
        return self.group(self.aggregate(self.infer(self.prepare(image_bgr))))

    def warm_up(self) -> None:
        """Create the backend and run a small blank image through every stage (in the calling thread, the one
        that will infer), with two people planted in its host outputs before aggregation and grouping, so that a
        first real frame is not slowed by loading the network, the first call's allocations, or compiling (or
        loading) the decoding kernels, some of which run only where there are people."""
        raw = self.infer(self.prepare(np.zeros((WARM_UP_SIDE, WARM_UP_SIDE, 3), np.uint8)))
        if not raw.on_device:  # outputs left on the GPU are decoded by CUDA kernels, not these Numba ones
            raw = replace(raw, scales=with_planted_people(raw.scales))
        self.group(self.aggregate(raw))

    def predict_batch(self, images_bgr: Sequence[np.ndarray]) -> list[Poses]:
        """People in each of several images; images whose inputs agree in shape share backend calls."""
        raws = self.infer_batch([self.prepare(image) for image in images_bgr])
        return [self.group(self.aggregate(raw)) for raw in raws]

    # -------------------------------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Release the backend (and the CUDA aggregation); idempotent."""
        if self._closed:
            return
        self._closed = True
        self._aggregation.close()
        if self._backend is not None:
            self._backend.close()
        self._backend = self._passes = None

    def __enter__(self) -> "PoseEstimator":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise PoseStreamError("this PoseEstimator is closed")

    def _ensure_backend(self):
        self._check_open()
        if self._backend is None:
            config = self.config
            backend = self._create_backend()
            if backend.num_joints != self.joint_set.num_joints:
                backend.close()
                raise PoseStreamError(
                    f"the network has {backend.num_joints} joints but model '{config.model}' has "
                    f"{self.joint_set.num_joints} ({self.joint_set.name}); pass the matching model="
                )
            self._check_batch_range(backend)
            self._backend = backend
            device = getattr(backend, "device", None)  # a torch backend's
            if device is not None and config.torch_preprocess is not False and (
                    config.torch_preprocess or getattr(device, "type", "") == "cuda"):
                self._inputs.use_torch_device(device)  # frames prepared from now on go up as uint8
            self._passes = BackendPasses(backend, config.flip)
            log.info("backend: %s", backend.info)
            if self._device_outputs and not self._aggregation.on_device(backend):
                self._device_outputs = False
        return self._backend

    def _create_backend(self):
        from pose_stream.engine.registry import open_backend

        config = self.config
        triton = config.triton
        if triton is None and self.spec.framework == "triton":
            from pose_stream.engine.registry import TritonOptions

            triton = TritonOptions()
        return open_backend(self.spec, config.model_file, model=config.model, device=config.device,
                            cuda_graph=config.cuda_graph, torch_compile=config.torch_compile, triton=triton)

    def _check_batch_range(self, backend) -> None:
        """With batching asked for (batch > 1), a backend with a batch limit must take the whole batch of frames
        (and their flipped copies) in one call; closes it and raises otherwise. Without, a frame's passes are
        split into the calls the backend takes, as ever."""
        low, high = backend.batch_range
        passes = 2 if self.config.flip else 1
        needed = self.config.batch * passes
        if self.config.batch > 1 and high is not None and high < needed:
            backend.close()
            flip = " with the flip test, 2 a frame" if self.config.flip else ""
            raise PoseStreamError(
                f"--batch {self.config.batch} needs {needed} network inputs in one call{flip}, but the "
                f"{backend.info.name} model takes batches of {low} to {high}: rebuild it with "
                f"`pose-stream build-engine --batch {passes}-{needed}`, or lower --batch")
