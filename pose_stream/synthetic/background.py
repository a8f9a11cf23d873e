"""Textured, mildly cluttered backgrounds for the synthetic world.

Clutter is kept moderate and mostly blob- and box-shaped so that figures stay the most limb-like
things in the picture: a small network must be able to learn the world in an hour of CPU time.
"""
from __future__ import annotations

import cv2
import numpy as np


def _gradient(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    a, b = rng.integers(20, 236, size=(2, 3))
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (np.cos(angle) * xx / width + np.sin(angle) * yy / height)
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    return a[None, None, :] * (1 - t[..., None]) + b[None, None, :] * t[..., None]


def _smooth_noise(rng: np.random.Generator, width: int, height: int, cell: int, amplitude: float) -> np.ndarray:
    small = rng.normal(0, amplitude, size=(max(2, height // cell), max(2, width // cell), 3)).astype(np.float32)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def _stripes(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A floor- or wall-like periodic texture (tiles or planks)."""
    period = rng.uniform(12, 60)
    angle = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    u = (np.cos(angle) * xx + np.sin(angle) * yy) / period
    wave = (np.sin(2 * np.pi * u) > 0.0).astype(np.float32) if rng.random() < 0.5 else np.sin(2 * np.pi * u)
    return (wave[..., None] - 0.5) * rng.uniform(10, 35)


def _clutter(rng: np.random.Generator, image: np.ndarray, count: int) -> None:
    height, width = image.shape[:2]
    scale = min(width, height)
    for _ in range(count):
        color = tuple(int(v) for v in rng.integers(0, 256, size=3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        kind = rng.random()
        if kind < 0.4:
            w, h = (rng.uniform(0.05, 0.4, size=2) * scale).astype(int)
            cv2.rectangle(image, (x, y), (x + int(w), y + int(h)), color, -1)
        elif kind < 0.75:
            axes = tuple(int(v) for v in rng.uniform(0.02, 0.2, size=2) * scale)
            cv2.ellipse(image, (x, y), axes, float(rng.uniform(0, 180)), 0, 360, color, -1, cv2.LINE_AA)
        elif kind < 0.9:
            n = int(rng.integers(3, 7))
            pts = (np.array([x, y]) + rng.normal(0, 0.08 * scale, size=(n, 2))).astype(np.int32)
            cv2.fillPoly(image, [cv2.convexHull(pts)], color, cv2.LINE_AA)
        else:  # a few thin straight lines: edges of furniture, cables
            x2, y2 = x + int(rng.normal(0, 0.3 * scale)), y + int(rng.normal(0, 0.3 * scale))
            cv2.line(image, (x, y), (x2, y2), color, int(rng.integers(1, 4)), cv2.LINE_AA)


def random_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """(height, width, 3) uint8 BGR: gradient + smooth noise + optional stripes + a few shapes."""
    image = _gradient(rng, width, height)
    image += _smooth_noise(rng, width, height, cell=int(rng.integers(16, 64)), amplitude=rng.uniform(5, 30))
    if rng.random() < 0.35:
        image += _stripes(rng, width, height)
    image = np.clip(image, 0, 255).astype(np.uint8)
    _clutter(rng, image, int(rng.integers(2, 12)))
    if rng.random() < 0.5:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.8, 2.5))
    return image


def add_sensor_noise(rng: np.random.Generator, image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian pixel noise, as a camera adds it on top of everything."""
    noisy = image.astype(np.float32) + rng.normal(0, sigma, size=image.shape).astype(np.float32)
    return np.clip(noisy, 0, 255).astype(np.uint8)


class SensorNoise:
    """Gaussian sensor noise for a video: one field of noise twice the frame's size, drawn once, and each frame
    adds a window of it at a random offset. It looks like fresh noise at about 1/50 of the cost of drawing a
    new field (0.14 ms against 7 ms at 640x360): the demo renders 25 frames a second beside the network."""

    def __init__(self, rng: np.random.Generator, width: int, height: int, sigma: float) -> None:
        field = rng.normal(0, sigma, size=(2 * height, 2 * width, 3))
        self._field = np.clip(np.round(field), -127, 127).astype(np.int16)
        self._rng, self.width, self.height = rng, width, height

    def add(self, image: np.ndarray) -> np.ndarray:
        """image (H, W, 3) uint8 of the size given -> a noisy copy."""
        y, x = (int(v) for v in self._rng.integers(0, (self.height, self.width)))
        noisy = image.astype(np.int16)
        noisy += self._field[y:y + self.height, x:x + self.width]
        return np.clip(noisy, 0, 255).astype(np.uint8)
