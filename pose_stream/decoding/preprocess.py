"""The reference resize: aspect-preserving affine warp to a multiple-of-64 canvas, then ImageNet normalisation.

Exactly the HigherHRNet test-time preprocessing (see the reference doc, section Resizing): the box of size
scale * 200 centred at `center` is mapped onto the network canvas, bilinear, black border; the affine matrix
is built from float32 points the way the reference builds it, so `cv2.warpAffine` (OpenCV 4.x) gives the
same pixels. `Transform` maps between network-input and image coordinates.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Sequence

import cv2
import numba
import numpy as np

from pose_stream.errors import PoseStreamError

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB
IMAGENET_STD = (0.229, 0.224, 0.225)
SIZE_MULTIPLE = 64


@dataclass(frozen=True)
class Transform:
    """Where a network input came from: the resize of one image.

    Attributes:
        center: (cx, cy) integer image point at the canvas centre.
        scale: (sw, sh); the box scale * 200 (image pixels) fills the canvas. Only sw is used by the
            affine map (the reference builds a similarity transform from scale[0]).
        network_size: (w, h) of the network input (the aggregated maps live at this size).
        image_size: (w, h) of the original image.
    """

    center: tuple[int, int]
    scale: tuple[float, float]
    network_size: tuple[int, int]
    image_size: tuple[int, int]

    def __post_init__(self) -> None:
        if min(self.network_size) <= 0 or min(self.image_size) <= 0:
            raise ValueError(f"sizes must be positive, got network {self.network_size}, image {self.image_size}")
        if self.scale[0] <= 0:
            raise ValueError(f"scale must be positive, got {self.scale}")

    @cached_property
    def matrix(self) -> np.ndarray:
        """float64 (2, 3): image pixel -> network-input pixel (the warp's matrix)."""
        src, dst = _reference_points(self.center, self.scale, self.network_size)
        return cv2.getAffineTransform(src, dst)

    @cached_property
    def inverse_matrix(self) -> np.ndarray:
        """float64 (2, 3): network-input pixel -> image pixel (the reference's inverse, built the same way)."""
        src, dst = _reference_points(self.center, self.scale, self.network_size)
        return cv2.getAffineTransform(dst, src)

    def to_image(self, xy: np.ndarray) -> np.ndarray:
        """Map points (..., 2) in network-input pixels to image pixels (float64)."""
        return _apply_affine(self.inverse_matrix, xy)

    def to_network(self, xy: np.ndarray) -> np.ndarray:
        """Map points (..., 2) in image pixels to network-input pixels (float64)."""
        return _apply_affine(self.matrix, xy)

    @property
    def pixel_ratio(self) -> float:
        """Image pixels per network-input pixel."""
        return float(np.hypot(self.inverse_matrix[0, 0], self.inverse_matrix[1, 0]))


def _reference_points(center: tuple[int, int], scale: tuple[float, float], size: tuple[int, int]):
    """The three float32 point pairs the reference feeds to cv2.getAffineTransform (rotation 0, no shift)."""
    src_w = scale[0] * 200.0
    dst_w, dst_h = size
    src = np.zeros((3, 2), np.float32)
    dst = np.zeros((3, 2), np.float32)
    src[0] = center
    src[1] = np.asarray(center, np.float64) + np.array([0.0, src_w * -0.5])
    dst[0] = [dst_w * 0.5, dst_h * 0.5]
    dst[1] = np.array([dst_w * 0.5, dst_h * 0.5]) + np.array([0, dst_w * -0.5], np.float32)
    src[2] = _third_point(src[0], src[1])
    dst[2] = _third_point(dst[0], dst[1])
    return src, dst


def _third_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # b + (a - b) rotated by 90 degrees, in float32 as the reference computes it.
    direct = a - b
    return b + np.array([-direct[1], direct[0]], np.float32)


def _apply_affine(matrix: np.ndarray, xy: np.ndarray) -> np.ndarray:
    xy = np.asarray(xy, np.float64)
    if xy.shape[-1] != 2:
        raise ValueError(f"points must have a last axis of 2 (x, y), got shape {xy.shape}")
    return xy @ matrix[:, :2].T + matrix[:, 2]


def make_transform(
    image_size: tuple[int, int], input_size: int = 512, scale_factor: float = 1.0, min_scale: float = 1.0
) -> Transform:
    """The reference's resize geometry (`get_multi_scale_size`) for an image of image_size=(w, h).

    The network size for scale_factor s is the size for min_scale, rounded up to a multiple of 64, times
    s / min_scale. With the defaults a 1920x1080 image gives a 960x512 network input.
    """
    w, h = (int(v) for v in image_size)
    if w <= 0 or h <= 0:
        raise PoseStreamError(f"image size must be positive, got {w}x{h}")
    if input_size <= 0 or scale_factor <= 0 or min_scale <= 0:
        raise PoseStreamError(
            f"input_size, scale_factor and min_scale must be positive, got {input_size}, {scale_factor}, {min_scale}"
        )
    center = (int(w / 2.0 + 0.5), int(h / 2.0 + 0.5))
    min_input_size = int((min_scale * input_size + 63) // 64 * 64)
    if w < h:
        net_w = int(min_input_size * scale_factor / min_scale)
        net_h = int(int((min_input_size / w * h + 63) // 64 * 64) * scale_factor / min_scale)
        scale = (w / 200.0, net_h / net_w * w / 200.0)
    else:
        net_h = int(min_input_size * scale_factor / min_scale)
        net_w = int(int((min_input_size / h * w + 63) // 64 * 64) * scale_factor / min_scale)
        scale = (net_w / net_h * h / 200.0, h / 200.0)
    return Transform(center, scale, (net_w, net_h), (w, h))


def make_exact_transform(image_size: tuple[int, int], network_hw: tuple[int, int]) -> Transform:
    """An image of image_size=(w, h) scaled to fit inside a network input of exactly network_hw=(H, W), centred,
    its aspect ratio kept (the rest of the canvas is black). Built like the reference's transform (an integer
    centre, a similarity from scale[0]), so `Transform` maps points both ways as for `make_transform`."""
    w, h = (int(v) for v in image_size)
    net_h, net_w = (int(v) for v in network_hw)
    if min(w, h, net_w, net_h) <= 0:
        raise PoseStreamError(f"sizes must be positive, got image {w}x{h}, network {net_w}x{net_h}")
    factor = min(net_w / w, net_h / h)  # network pixels per image pixel
    center = (int(w / 2.0 + 0.5), int(h / 2.0 + 0.5))
    return Transform(center, (net_w / factor / 200.0, net_h / factor / 200.0), (net_w, net_h), (w, h))


def _normalisation_lut() -> np.ndarray:
    """float32 (3, 256): normalised value of each uint8 level per RGB channel.

    Computed with the same float32 operations as ToTensor + Normalize ((v / 255 - mean) / std), so a table
    lookup gives the same numbers as the reference.
    """
    levels = np.arange(256, dtype=np.float32) / np.float32(255)
    mean = np.asarray(IMAGENET_MEAN, np.float32)[:, None]
    std = np.asarray(IMAGENET_STD, np.float32)[:, None]
    return ((levels[None, :] - mean) / std).astype(np.float32)


_LUT = _normalisation_lut()


@numba.njit(cache=True, nogil=True)
def _bgr_to_normalised_chw(warped: np.ndarray, lut: np.ndarray, out: np.ndarray) -> None:
    """warped uint8 (H, W, 3) BGR -> out float32 (3, H, W) normalised RGB."""
    h, w = warped.shape[0], warped.shape[1]
    for y in range(h):
        for x in range(w):
            out[0, y, x] = lut[0, warped[y, x, 2]]
            out[1, y, x] = lut[1, warped[y, x, 1]]
            out[2, y, x] = lut[2, warped[y, x, 0]]


def check_image(image_bgr: np.ndarray) -> np.ndarray:
    """Validate a BGR frame: uint8 (H, W, 3)."""
    if not isinstance(image_bgr, np.ndarray):
        raise PoseStreamError(f"expected an image as a numpy array, got {type(image_bgr).__name__}")
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        raise PoseStreamError(f"expected a BGR image of shape (H, W, 3), got shape {image_bgr.shape}")
    if image_bgr.dtype != np.uint8:
        raise PoseStreamError(f"expected a uint8 image, got dtype {image_bgr.dtype}")
    if image_bgr.shape[0] == 0 or image_bgr.shape[1] == 0:
        raise PoseStreamError(f"the image is empty (shape {image_bgr.shape})")
    return image_bgr


def warp_image(image_bgr: np.ndarray, transform: Transform) -> np.ndarray:
    """uint8 (h, w, 3) network-size canvas: bilinear warp with a black border, as the reference does."""
    return cv2.warpAffine(image_bgr, transform.matrix, transform.network_size, flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def normalise_into(warped_bgr: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Write the normalised RGB planes of a warped uint8 BGR canvas into out float32 (3, h, w)."""
    _bgr_to_normalised_chw(np.ascontiguousarray(warped_bgr), _LUT, out)
    return out


def preprocess(
    image_bgr: np.ndarray, input_size: int = 512, scale_factor: float = 1.0, min_scale: float = 1.0
) -> tuple[np.ndarray, Transform]:
    """One image -> (network input float32 (1, 3, H, W), Transform), exactly as the reference resizes it.

    Args:
        image_bgr: uint8 (height, width, 3) in OpenCV's BGR order.
        input_size: S, the network size of the shorter image side (512 or 640 for the released models).
        scale_factor: multi-scale test factor s (the network size is the min_scale size times s / min_scale).
        min_scale: the smallest scale factor of a multi-scale test (1.0 for single scale).
    """
    image_bgr = check_image(image_bgr)
    transform = make_transform((image_bgr.shape[1], image_bgr.shape[0]), input_size, scale_factor, min_scale)
    w, h = transform.network_size
    out = np.empty((1, 3, h, w), np.float32)
    normalise_into(warp_image(image_bgr, transform), out[0])
    return out, transform


class Preprocessor:
    """Video-friendly preprocessing: transforms cached by frame size, batches built in place.

    Frames of one stream share a size, so the affine geometry is computed once. `batch` stacks several
    frames (and scale factors of a multi-scale test make one Preprocessor each).

    Args:
        input_size, scale_factor, min_scale: as for `preprocess`.
        exact: (H, W): every image is fitted into exactly H * scale_factor x W * scale_factor network pixels
            (`make_exact_transform`) instead of the reference's short-side resize (input_size is then unused).
    """

    def __init__(self, input_size: int = 512, scale_factor: float = 1.0, min_scale: float = 1.0,
                 exact: tuple[int, int] | None = None) -> None:
        self.input_size = input_size
        self.scale_factor = scale_factor
        self.min_scale = min_scale
        self.exact = exact
        self._transforms: dict[tuple[int, int], Transform] = {}

    def transform_for(self, image_size: tuple[int, int]) -> Transform:
        """The (cached) Transform for an image of image_size=(w, h)."""
        key = (int(image_size[0]), int(image_size[1]))
        transform = self._transforms.get(key)
        if transform is None:
            if self.exact is not None:
                hw = tuple(int(round(side * self.scale_factor)) for side in self.exact)
                transform = make_exact_transform(key, hw)
            else:
                transform = make_transform(key, self.input_size, self.scale_factor, self.min_scale)
            self._transforms[key] = transform
        return transform

    def __call__(self, image_bgr: np.ndarray, out: np.ndarray | None = None) -> tuple[np.ndarray, Transform]:
        """Like `preprocess`; writes into out float32 (3, H, W) or (1, 3, H, W) when given."""
        image_bgr = check_image(image_bgr)
        transform = self.transform_for((image_bgr.shape[1], image_bgr.shape[0]))
        w, h = transform.network_size
        if out is None:
            out = np.empty((1, 3, h, w), np.float32)
        plane = out[0] if out.ndim == 4 else out
        if plane.shape != (3, h, w) or plane.dtype != np.float32:
            raise PoseStreamError(f"output buffer must be float32 (3, {h}, {w}), got {plane.dtype} {plane.shape}")
        normalise_into(warp_image(image_bgr, transform), plane)
        return out, transform

    def batch(self, images_bgr: Sequence[np.ndarray]) -> tuple[np.ndarray, list[Transform]]:
        """Several frames -> (float32 (N, 3, H, W), their Transforms); all must give the same network size."""
        if not images_bgr:
            raise PoseStreamError("batch() needs at least one image")
        transforms = [self.transform_for((check_image(im).shape[1], im.shape[0])) for im in images_bgr]
        sizes = {t.network_size for t in transforms}
        if len(sizes) != 1:
            raise PoseStreamError(f"images in one batch must give one network size, got {sorted(sizes)}")
        w, h = transforms[0].network_size
        out = np.empty((len(images_bgr), 3, h, w), np.float32)
        for i, (image, transform) in enumerate(zip(images_bgr, transforms)):
            normalise_into(warp_image(image, transform), out[i])
        return out, transforms
