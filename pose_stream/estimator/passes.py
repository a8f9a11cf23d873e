"""The network passes of a PoseEstimator: images -> network inputs (`InputMaker`) and inputs -> raw outputs
(`BackendPasses`: batched host calls, or passes whose outputs stay on the GPU).

Shapes: P passes per scale (2 under flip test: plain, flipped), K joints, h x w one scale's network input.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pose_stream.decoding.preprocess import Preprocessor, Transform, check_image
from pose_stream.decoding.types import ScaleOutputs
from pose_stream.errors import PoseStreamError
from pose_stream.input_size import MULTIPLE, InputSize


@dataclass(frozen=True)
class Prepared:
    """Network inputs of one image.

    Attributes:
        inputs: per scale, float32 (P, 3, h, w).
        factors: the scale factor of each entry of inputs.
        transform: the scale-1 resize of the image (decoded points are mapped back with it).
    """

    inputs: tuple[np.ndarray, ...]
    factors: tuple[float, ...]
    transform: Transform


@dataclass(frozen=True)
class RawOutputs:
    """The backend's outputs for one image, one ScaleOutputs per scale.

    Attributes:
        scales: per scale the plain and (with flip test) flipped outputs: host arrays, or device tensors of batch
            1 left on the GPU.
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


class InputMaker:
    """Resizes and normalises an image for every test scale, with its mirror under flip test.

    The aspect-ratio limit applies to short-side sizes (S), where an elongated image makes a long network
    input; an exact HxW input fits any image into HxW. With `torch_device` the image goes to that device as
    uint8 and is warped and normalised there (`decoding.preprocess_torch`, equal to the CPU path bit for bit):
    the inputs are then torch tensors on that device."""

    def __init__(self, input_size: InputSize, scales: tuple[float, ...], flip: bool, max_aspect: float | None) -> None:
        self.size, self.scales, self.flip, self.max_aspect = input_size, scales, flip, max_aspect
        self.input_size = input_size.smaller_side
        smallest = min(scales)
        self._preprocessors = {s: Preprocessor(self.input_size, s, smallest, input_size.exact) for s in scales}
        self._base = Preprocessor(self.input_size, 1.0, smallest, input_size.exact)
        self._torch_device: Any = None
        self._warp = None

    def use_torch_device(self, device: Any) -> None:
        """From now on, warp and normalise on this torch device (the backend's, once it exists)."""
        from pose_stream.decoding.preprocess_torch import TorchWarp

        self._torch_device = device
        self._warp = TorchWarp(device)

    def __call__(self, image_bgr: np.ndarray) -> Prepared:
        image_bgr = check_image(image_bgr)
        height, width = image_bgr.shape[:2]
        if (self.size.short is not None and self.max_aspect is not None
                and max(height, width) > self.max_aspect * min(height, width)):
            raise PoseStreamError(
                f"a {width}x{height} image is {max(height, width) / min(height, width):.1f}:1, beyond the limit of "
                f"{self.max_aspect:g}:1 (its short side is scaled to {self.input_size} px, so the network input "
                f"would be {max(height, width) * self.input_size // min(height, width)} px long); crop it, or raise "
                "the limit (--max-aspect)")
        if self._warp is not None:
            return self._on_device(image_bgr)
        inputs = []
        for factor in self.scales:
            tensor, _ = self._preprocessors[factor](image_bgr)
            if tensor.shape[2] % MULTIPLE or tensor.shape[3] % MULTIPLE:
                # The reference rounds the smallest scale's size to 64 and multiplies it up, so a factor such as
                # 0.75 gives sizes the network's five stride-2 steps cannot take.
                raise PoseStreamError(
                    f"test scale {factor:g} makes a {tensor.shape[3]}x{tensor.shape[2]} network input for this "
                    f"{width}x{height} image, but the network needs multiples of {MULTIPLE}; "
                    f"use factors such as 2, 1, 0.5 (scales {', '.join(f'{s:g}' for s in self.scales)} given)"
                )
            if self.flip:
                tensor = np.concatenate([tensor, tensor[:, :, :, ::-1]])
            inputs.append(np.ascontiguousarray(tensor))
        return Prepared(tuple(inputs), self.scales, self._base.transform_for((width, height)))

    def _on_device(self, image_bgr: np.ndarray) -> Prepared:
        import torch

        height, width = image_bgr.shape[:2]
        image = torch.from_numpy(np.ascontiguousarray(image_bgr)).to(self._torch_device, non_blocking=True)
        inputs = []
        for factor in self.scales:
            transform = self._preprocessors[factor].transform_for((width, height))
            net_w, net_h = transform.network_size
            if net_h % MULTIPLE or net_w % MULTIPLE:
                raise PoseStreamError(f"test scale {factor:g} makes a {net_w}x{net_h} network input for this "
                                      f"{width}x{height} image, but the network needs multiples of {MULTIPLE}")
            tensor = self._warp(image, transform).unsqueeze(0)
            inputs.append(torch.cat([tensor, tensor.flip(-1)]) if self.flip else tensor)
        return Prepared(tuple(inputs), self.scales, self._base.transform_for((width, height)))


def _concatenate(parts: Sequence[Any]) -> Any:
    """np.concatenate, or torch.cat for inputs prepared on a torch device."""
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)
    import torch

    return torch.cat(list(parts))


class BackendPasses:
    """Runs prepared inputs through one backend, from the thread that created it.

    `host`: several images in one call per input shape, outputs copied to the host. `on_device`: the passes of
    one image with `infer_device`, outputs left on the GPU; all but the last call's outputs are copied aside by
    `keep` (the backend's buffers are overwritten by each call).
    """

    def __init__(self, backend: Any, flip: bool) -> None:
        self.backend = backend
        self.flip = flip
        self.thread = threading.get_ident()
        self.generation = 0  # calls made with device outputs

    def host(self, prepared: Sequence[Prepared]) -> list[RawOutputs]:
        self._check_thread()
        # outputs[i][s]: the (out0, out1) batch rows of image i at scale s
        scales = len(prepared[0].inputs) if prepared else 0
        outputs: list[list[Any]] = [[None] * scales for _ in prepared]
        for s in range(scales):
            by_shape: dict[tuple[int, ...], list[int]] = {}
            for i, p in enumerate(prepared):
                by_shape.setdefault(p.inputs[s].shape, []).append(i)
            for members in by_shape.values():
                out0, out1 = self._run(_concatenate([prepared[i].inputs[s] for i in members]))
                rows = prepared[members[0]].inputs[s].shape[0]
                for n, i in enumerate(members):
                    outputs[i][s] = (out0[n * rows:(n + 1) * rows], out1[n * rows:(n + 1) * rows])
        raws = []
        for p, per_scale in zip(prepared, outputs):
            results = []
            for factor, (out0, out1) in zip(p.factors, per_scale):
                flipped = (out0[1:2], out1[1:2]) if self.flip else None
                results.append(ScaleOutputs((out0[0:1], out1[0:1]), flipped, factor))
            raws.append(RawOutputs(tuple(results), p.transform))
        return raws

    def on_device(self, prepared: Sequence[Prepared], keep: Any) -> list[RawOutputs]:
        """keep(tensors, slot, stream) -> copies of tensors that survive the next call. Images whose inputs agree
        in shape share calls, as in `host`; every RawOutputs of one call to this method has the same generation,
        valid until the next."""
        self._check_thread()
        # calls: (scale index, members, backend batch); the images of a group go in one batch, in order
        calls = []
        for s in range(len(prepared[0].inputs) if prepared else 0):
            by_shape: dict[tuple[int, ...], list[int]] = {}
            for i, p in enumerate(prepared):
                by_shape.setdefault(p.inputs[s].shape, []).append(i)
            for members in by_shape.values():
                batch = _concatenate([prepared[i].inputs[s] for i in members])
                calls.extend((s, members, part) for part in self.split(batch))
        self.generation += 1
        rows: list[list[list[tuple]]] = [[[] for _ in p.inputs] for p in prepared]  # [image][scale] -> pass rows
        stream = None
        pending: dict[tuple[int, tuple[int, ...]], list[tuple]] = {}  # rows of a group until every part is in
        for n, (s, members, batch) in enumerate(calls):
            outputs = self.backend.infer_device(batch)
            stream = outputs.stream
            tensors = tuple(outputs)
            if n < len(calls) - 1:
                tensors = keep(tensors, n, stream)
            group = pending.setdefault((s, tuple(members)), [])
            passes = prepared[members[0]].inputs[s].shape[0]
            real = min(batch.shape[0], passes * len(members) - len(group))  # padding rows are not ours
            group.extend(tuple(t.row(r) for t in tensors) for r in range(real))
            if len(group) == passes * len(members):
                for position, i in enumerate(members):
                    rows[i][s] = group[position * passes:(position + 1) * passes]
        raws = []
        for p, per_scale in zip(prepared, rows):
            scales = tuple(ScaleOutputs(tuple(r[0]), tuple(r[1]) if self.flip else None, factor)
                           for factor, r in zip(p.factors, per_scale))
            raws.append(RawOutputs(scales, p.transform, stream=stream, generation=self.generation))
        return raws

    def split(self, batch: np.ndarray) -> list[np.ndarray]:
        """`batch` in the calls the backend takes: whole when its batch range allows; cut into its largest batch
        otherwise; a short last part (or a batch below the smallest size) padded with zero images to the
        smallest size it takes. The caller reads only the rows of its own images."""
        low, high = self.backend.batch_range
        step = batch.shape[0] if high is None else high
        parts = []
        for start in range(0, batch.shape[0], step):
            part = batch[start:start + step]
            if part.shape[0] < low:
                padding = np.zeros((low - part.shape[0], *part.shape[1:]), np.float32)
                if not isinstance(part, np.ndarray):
                    import torch

                    padding = torch.from_numpy(padding).to(part.device, part.dtype)
                part = _concatenate([part, padding])
            parts.append(part)
        return parts

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = batch.shape[0]
        parts = [self.backend.infer(part) for part in self.split(batch)]
        if len(parts) == 1:
            out0, out1 = parts[0]
            return out0[:rows], out1[:rows]
        return np.concatenate([p[0] for p in parts])[:rows], np.concatenate([p[1] for p in parts])[:rows]

    def _check_thread(self) -> None:
        if self.backend.info.device != "cpu" and threading.get_ident() != self.thread:
            raise PoseStreamError("infer() must run in the thread that created the GPU backend")
