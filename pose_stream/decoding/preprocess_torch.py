"""The reference preprocessing on a torch device, bit for bit: frames go up as uint8 and are resized there.

`preprocess` (the CPU path) warps with OpenCV's `warpAffine` (bilinear, black border) and normalises through a
table. OpenCV's bilinear warp is fixed-point arithmetic, so it can be reproduced exactly rather than
approximated with `grid_sample`:
- the affine map is inverted in float64; each destination pixel's source position is computed in 1/1024ths
  (`AB_BITS` = 10: cvRound of the row term, of the column term, plus a rounding delta of 16), then cut to 1/32
  (`INTER_BITS` = 5): an integer pixel and a 5-bit fraction on each axis;
- the four neighbours are weighted by integers summing to 32768 (`INTER_REMAP_COEF_BITS` = 15: for the
  fractions (i, j) the weights are (32 - i)(32 - j) * 32, (32 - i) j * 32, i (32 - j) * 32, i j * 32, exact),
  neighbours outside the image count as 0 (the black border), and the sum is rounded: (sum + 16384) >> 15,
  clamped to 0..255;
- the result goes through the same normalisation table as `preprocess`.
The source positions and weights depend only on the transform, so they are computed once per frame size (on
the CPU, with NumPy) and kept on the device; each frame then costs one gather and one weighted sum there.
`tests/decoding/test_preprocess_torch.py` checks equality with OpenCV on random images and transforms.
"""
from __future__ import annotations

import numpy as np
import torch

from pose_stream.decoding.preprocess import _LUT, Transform

AB_BITS = 10
INTER_BITS = 5
INTER_TAB_SIZE = 1 << INTER_BITS
COEF_BITS = 15


def _inverted(matrix: np.ndarray) -> np.ndarray:
    """OpenCV's invertAffineTransform as warpAffine does it (float64, in its order of operations)."""
    m = np.asarray(matrix, np.float64).reshape(6).copy()
    d = m[0] * m[4] - m[1] * m[3]
    d = 1.0 / d if d != 0 else 0.0
    a11, a22 = m[4] * d, m[0] * d
    m[0], m[1], m[3], m[4] = a11, m[1] * -d, m[3] * -d, a22
    b1 = -m[0] * m[2] - m[1] * m[5]
    b2 = -m[3] * m[2] - m[4] * m[5]
    m[2], m[5] = b1, b2
    return m


def source_positions(matrix: np.ndarray, size_wh: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """For a warp by `matrix` (image -> canvas) into a canvas of size_wh: X, Y int64 (h, w), each destination
    pixel's source position in 1/32 pixels, as warpAffine computes it."""
    w, h = size_wh
    m = _inverted(matrix)
    scale = float(1 << AB_BITS)
    delta = (1 << AB_BITS) // INTER_TAB_SIZE // 2
    xs, ys = np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64)
    adelta = np.rint(m[0] * xs * scale).astype(np.int64)
    bdelta = np.rint(m[3] * xs * scale).astype(np.int64)
    x0 = np.rint((m[1] * ys + m[2]) * scale).astype(np.int64) + delta
    y0 = np.rint((m[4] * ys + m[5]) * scale).astype(np.int64) + delta
    shift = AB_BITS - INTER_BITS
    return (x0[:, None] + adelta[None, :]) >> shift, (y0[:, None] + bdelta[None, :]) >> shift


class TorchWarp:
    """Warps and normalises uint8 BGR frames on `device` exactly as `preprocess` does on the CPU.

    Holds the per-transform positions and weights (on the device) and the normalisation table.
    """

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self._lut = torch.from_numpy(_LUT).to(self.device)  # (3, 256) float32, RGB rows
        self._plans: dict[tuple, tuple[torch.Tensor, ...]] = {}

    def _plan(self, transform: Transform) -> tuple[torch.Tensor, ...]:
        key = (transform.image_size, transform.network_size, transform.matrix.tobytes())
        plan = self._plans.get(key)
        if plan is None:
            iw, ih = transform.image_size
            x, y = source_positions(transform.matrix, transform.network_size)
            sx, sy = x >> INTER_BITS, y >> INTER_BITS
            fx, fy = x & (INTER_TAB_SIZE - 1), y & (INTER_TAB_SIZE - 1)
            unit = INTER_TAB_SIZE
            weights = np.stack([(unit - fy) * (unit - fx), (unit - fy) * fx, fy * (unit - fx), fy * fx]) * 32
            indices, valid = [], []
            for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
                px, py = sx + dx, sy + dy
                inside = (px >= 0) & (px < iw) & (py >= 0) & (py < ih)
                indices.append(np.where(inside, np.clip(py, 0, ih - 1) * iw + np.clip(px, 0, iw - 1), 0))
                valid.append(inside)
            weights = weights * np.stack(valid)  # a neighbour outside the image is the black border
            plan = (torch.from_numpy(np.stack(indices)).to(self.device),
                    torch.from_numpy(weights.astype(np.int32)).to(self.device))
            if len(self._plans) > 64:  # frame sizes come and go with cameras: keep the cache bounded
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def warp(self, image: torch.Tensor, transform: Transform) -> torch.Tensor:
        """uint8 (H, W, 3) BGR on the device -> uint8 (h, w, 3) BGR canvas, equal to cv2.warpAffine's."""
        indices, weights = self._plan(transform)
        flat = image.reshape(-1, 3).to(torch.int32)
        total = torch.zeros((*weights.shape[1:], 3), dtype=torch.int32, device=self.device)
        for k in range(4):
            total += flat[indices[k]] * weights[k].unsqueeze(-1)
        return ((total + (1 << (COEF_BITS - 1))) >> COEF_BITS).clamp_(0, 255).to(torch.uint8)

    def normalise(self, canvas: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 (h, w, 3) BGR -> float32 (3, h, w) normalised RGB, through the table `preprocess` uses."""
        levels = canvas.to(torch.int64)
        planes = [self._lut[c][levels[..., 2 - c]] for c in range(3)]  # RGB from BGR
        result = torch.stack(planes)
        if out is not None:
            out.copy_(result)
            return out
        return result

    def __call__(self, image: torch.Tensor, transform: Transform) -> torch.Tensor:
        """uint8 (H, W, 3) BGR on the device -> the network input float32 (3, h, w) of `preprocess`."""
        return self.normalise(self.warp(image, transform))
