"""Random similarity transforms of a training image onto the square network input, with flip."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pose_stream.errors import PoseStreamError
from pose_stream.input_size import check_network_side


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random transform (defaults: the reference's, translation scaled to the input size).

    Attributes:
        scale: (min, max) zoom relative to fitting the longer image side into the input.
        rotation: largest rotation in degrees (uniform in +-rotation).
        translation: largest shift in pixels per 512 input pixels (uniform in +- per axis).
        flip: probability of a horizontal flip (joints are swapped with the joint set's flip_index).
    """

    scale: tuple[float, float] = (0.75, 1.5)
    rotation: float = 30.0
    translation: float = 40.0
    flip: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError("scale range must be positive and ordered")
        if self.rotation < 0 or self.translation < 0 or not 0 <= self.flip <= 1:
            raise ValueError("rotation and translation must be >= 0, flip a probability")


def check_input_size(size: int) -> None:
    """A square training input the network takes (pose_stream.input_size: a multiple of 32, at least 64)."""
    try:
        check_network_side(size)
    except PoseStreamError as exc:
        raise ValueError(str(exc)) from None


NO_AUGMENTATION = AugmentConfig(scale=(1.0, 1.0), rotation=0.0, translation=0.0, flip=0.0)


@dataclass(frozen=True)
class Warp:
    """A 2x3 affine from image pixels to input pixels (OpenCV convention) and whether it mirrors."""

    matrix: np.ndarray
    flipped: bool


def random_warp(rng: np.random.Generator, image_hw: tuple[int, int], size: int, config: AugmentConfig) -> Warp:
    """Centre the image, fit its longer side into `size`, then zoom, rotate, shift and maybe flip."""
    height, width = image_hw
    zoom = size / max(height, width) * rng.uniform(*config.scale)
    angle = np.deg2rad(rng.uniform(-config.rotation, config.rotation))
    shift = rng.uniform(-1, 1, size=2) * config.translation * size / 512
    c, s = np.cos(angle) * zoom, np.sin(angle) * zoom
    centre_in = np.array([(width - 1) / 2, (height - 1) / 2])
    centre_out = np.array([(size - 1) / 2, (size - 1) / 2]) + shift
    linear = np.array([[c, -s], [s, c]])
    matrix = np.hstack([linear, (centre_out - linear @ centre_in)[:, None]])
    flipped = bool(rng.random() < config.flip)
    if flipped:
        matrix = np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0]]) @ np.vstack([matrix, [0, 0, 1]])
    return Warp(matrix=matrix, flipped=flipped)


def warp_image(image: np.ndarray, warp: Warp, size: int) -> np.ndarray:
    return cv2.warpAffine(image, warp.matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def warp_mask(mask: np.ndarray, warp: Warp, size: int) -> np.ndarray:
    """A bool mask warped like the image (nearest neighbour; outside the image is False)."""
    out = cv2.warpAffine(mask.astype(np.uint8), warp.matrix, (size, size), flags=cv2.INTER_NEAREST,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out.astype(bool)


def warp_keypoints(keypoints: np.ndarray, warp: Warp, flip_index: tuple[int, ...]) -> np.ndarray:
    """(P, K, 3) keypoints moved with the warp; a flip also swaps left and right joints.

    Unlabelled joints (visibility 0) stay at (0, 0, 0).
    """
    out = keypoints.copy()
    xy1 = np.concatenate([keypoints[..., :2], np.ones(keypoints.shape[:-1] + (1,), keypoints.dtype)], axis=-1)
    out[..., :2] = xy1 @ warp.matrix.T
    out[keypoints[..., 2] <= 0] = 0
    if warp.flipped:
        out = out[:, list(flip_index)]
    return out.astype(np.float32)
