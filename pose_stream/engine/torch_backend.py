"""PyTorch backend: CPU FP32, or CUDA FP32/FP16 with optional CUDA-graph capture."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from contextlib import contextmanager, nullcontext

import numpy as np
import torch
from torch import nn

from pose_stream.engine.base import Backend, BackendInfo, DeviceOutputs, DeviceTensor
from pose_stream.devices import torch_device
from pose_stream.errors import PoseStreamError

log = logging.getLogger(__name__)


@contextmanager
def ieee_fp32_convolutions() -> Iterator[None]:
    """cuDNN convolutions in full FP32 inside the block.

    PyTorch lets cuDNN convolutions use TF32 (a 10-bit mantissa) by default; on an H200 that moved HigherHRNet's
    outputs by 3e-4 to 7e-4 relative to the CPU's FP32 (measured), five times what "fp32" promises here.
    The switch is process-wide, so it is restored on the way out.
    """
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = previous


class TorchBackend(Backend):
    """Runs a HigherHRNet module directly.

    Args:
        model: the network (moved to `device`, set to eval).
        device: "cpu", "cuda", "cuda:N" or "auto" (CUDA when available).
        fp16: half precision on CUDA (outputs are returned as float32): the fast path, with the NHWC layout
            (channels_last) the tensor cores want and cuDNN's autotuner on. FP32 keeps NCHW and IEEE FP32
            convolutions: the exact path, compared with the reference.
        cuda_graph: capture the forward pass in a CUDA graph per input shape (batch size included), lazily, and
            replay it: one launch instead of hundreds of small kernels (CUDA only).
        channels_last: the NHWC layout (default: with fp16).
        compile: run the network through torch.compile (Inductor's fused kernels; the first call of each shape
            compiles, for seconds to minutes). An alternative to CUDA graphs, measured against them in
            benchmarks/gpu_check.py; not combined with them.
    """

    def __init__(self, model: nn.Module, device: str = "auto", fp16: bool = False, cuda_graph: bool = False,
                 channels_last: bool | None = None, compile: bool = False) -> None:
        if compile and cuda_graph:
            raise PoseStreamError("torch.compile and CUDA graphs are alternatives: choose one")
        self.device = torch_device(device)
        if self.device.type == "cpu" and (fp16 or cuda_graph):
            raise PoseStreamError("FP16 and CUDA graphs need a GPU; use fp16=False on the CPU")
        self.dtype = torch.float16 if fp16 else torch.float32
        self.memory_format = torch.channels_last if (fp16 if channels_last is None else channels_last) \
            else torch.contiguous_format
        if fp16:
            torch.backends.cudnn.benchmark = True  # one shape per stream all run long: let cuDNN pick kernels
        self.model = model.eval().to(self.device, self.dtype, memory_format=self.memory_format)
        if compile:
            self.model = torch.compile(self.model)
        self.num_joints = int(self.model.final_layers[1].out_channels)
        self.cuda_graph = cuda_graph
        self._graphs: dict[tuple[int, ...], tuple[torch.cuda.CUDAGraph, torch.Tensor, list[torch.Tensor]]] = {}
        self._pinned: dict[tuple[int, ...], tuple[torch.Tensor, Any]] = {}
        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu"
        where = f"{self.device} ({name})" if self.device.type == "cuda" else "cpu"
        detail = "cuda graph" if cuda_graph else "compiled" if compile else ""
        self.info = BackendInfo("torch", where, "fp16" if fp16 else "fp32", detail)
        self._closed = False

    @property
    def input_shape(self) -> tuple[None, int, None, None]:
        return (None, 3, None, None)

    def infer(self, batch: np.ndarray) -> list[np.ndarray]:
        return [t.float().cpu().numpy() for t in self.infer_tensors(batch)]

    def infer_device(self, batch: np.ndarray | torch.Tensor) -> DeviceOutputs:
        """The outputs left on the GPU as float32 DeviceTensors (each holds its torch tensor), written by work
        queued on the device's current stream: the CUDA aggregation reads them there (CUDA only)."""
        if self.device.type != "cuda":
            raise PoseStreamError("device outputs need the torch backend on CUDA")
        outputs = [t.float().contiguous() for t in self.infer_tensors(batch)]
        tensors = tuple(DeviceTensor(name, t.data_ptr(), tuple(t.shape), np.dtype(np.float32), owner=t)
                        for name, t in zip(("out0", "out1"), outputs))
        return DeviceOutputs(tensors, torch.cuda.current_stream(self.device).cuda_stream)

    def infer_tensors(self, batch: np.ndarray | torch.Tensor) -> list[torch.Tensor]:
        """Like infer, but returns the outputs as tensors on the backend's device (no host copy)."""
        if self._closed:
            raise PoseStreamError("the torch backend is closed")
        uploaded = None
        if isinstance(batch, np.ndarray):
            batch, uploaded = self._staged(self.check_input(batch))
        x = batch.to(self.device, self.dtype, non_blocking=True).contiguous(memory_format=self.memory_format)
        if uploaded is not None:
            uploaded.record(torch.cuda.current_stream(self.device))  # the staging buffer is free after this
        exact = ieee_fp32_convolutions() if self.device.type == "cuda" and self.dtype == torch.float32 else nullcontext()
        with torch.inference_mode(), exact:
            if self.cuda_graph:
                return self._replay(x)
            return list(self.model(x))

    def _replay(self, x: torch.Tensor) -> list[torch.Tensor]:
        key = tuple(x.shape)
        if key not in self._graphs:
            static_in = x.clone()
            stream = torch.cuda.Stream(self.device)
            stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(stream):
                for _ in range(2):  # warm-up outside the graph, as CUDA-graph capture requires
                    self.model(static_in)
            torch.cuda.current_stream(self.device).wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = list(self.model(static_in))
            self._graphs[key] = (graph, static_in, static_out)
            log.info("captured a CUDA graph for input %s", key)
        graph, static_in, static_out = self._graphs[key]
        static_in.copy_(x)
        graph.replay()
        return [t.clone() for t in static_out]

    def _staged(self, batch: np.ndarray) -> tuple[torch.Tensor, Any]:
        """On CUDA, the batch in a pinned (page-locked) host buffer, so that its upload is asynchronous, and the
        event to record once the upload is queued; the buffer of each shape is reused once its previous upload
        has finished. On the CPU, the batch itself and None."""
        if self.device.type != "cuda":
            return torch.from_numpy(batch), None
        staging = self._pinned.get(batch.shape)
        if staging is None:
            staging = self._pinned[batch.shape] = (torch.empty(batch.shape, dtype=torch.float32).pin_memory(),
                                                   torch.cuda.Event())
        buffer, uploaded = staging
        uploaded.synchronize()  # returns at once for an event never recorded
        buffer.numpy()[...] = batch
        return buffer, uploaded

    def close(self) -> None:
        if not self._closed:
            self._pinned.clear()
            self._graphs.clear()
            self._closed = True
