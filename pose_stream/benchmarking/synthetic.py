"""Synthetic people for benchmarks: stick-figure frames and the network outputs such people would produce.

The frames give the engine real images to chew on; the rendered outputs give decoding a load that follows
the number of people even when the network has random weights (whose heatmaps find nobody).
Coordinates are network-input pixels; a generated frame is exactly network-input sized.
"""
from __future__ import annotations

import importlib
import inspect
import logging

import cv2
import numpy as np

from pose_stream.joints import JointSet

log = logging.getLogger(__name__)

# A standing figure in a unit box (x right, y down); CrowdPose's head and neck included.
_TEMPLATE = {
    "nose": (0.50, 0.08), "left_eye": (0.54, 0.06), "right_eye": (0.46, 0.06), "left_ear": (0.58, 0.08),
    "right_ear": (0.42, 0.08), "head": (0.50, 0.03), "neck": (0.50, 0.17),
    "left_shoulder": (0.64, 0.20), "right_shoulder": (0.36, 0.20), "left_elbow": (0.70, 0.36),
    "right_elbow": (0.30, 0.36), "left_wrist": (0.72, 0.50), "right_wrist": (0.28, 0.50),
    "left_hip": (0.58, 0.52), "right_hip": (0.42, 0.52), "left_knee": (0.60, 0.74),
    "right_knee": (0.40, 0.74), "left_ankle": (0.61, 0.96), "right_ankle": (0.39, 0.96),
}


def make_people(count: int, size: tuple[int, int], joint_set: JointSet, rng: np.random.Generator) -> np.ndarray:
    """(count, K, 2) joint positions of standing figures, 15% to 60% of the frame height, inside a (w, h) frame."""
    width, height = size
    template = np.array([_TEMPLATE[name] for name in joint_set.names], np.float64)
    people = np.zeros((count, joint_set.num_joints, 2), np.float32)
    for p in range(count):
        figure_h = rng.uniform(0.15, 0.6) * height
        figure_w = figure_h * rng.uniform(0.35, 0.55)
        x0 = rng.uniform(0, max(width - figure_w, 1))
        y0 = rng.uniform(0, max(height - figure_h, 1))
        jitter = rng.normal(0, 0.02, template.shape)
        people[p] = (template + jitter) * (figure_w, figure_h) + (x0, y0)
    return np.clip(people, 0, (width - 1, height - 1))


def draw_people(frame: np.ndarray, people: np.ndarray, joint_set: JointSet) -> np.ndarray:
    """Stick figures drawn in place on a BGR frame; returns the frame."""
    for person in people:
        thickness = max(2, int((person[:, 1].max() - person[:, 1].min()) / 40))
        for limb, (a, b) in enumerate(joint_set.skeleton):
            cv2.line(frame, tuple(int(v) for v in person[a]), tuple(int(v) for v in person[b]),
                     joint_set.limb_color(limb), thickness, cv2.LINE_AA)
        for joint, xy in enumerate(person):
            cv2.circle(frame, (int(xy[0]), int(xy[1])), thickness + 1, joint_set.joint_color(joint), -1, cv2.LINE_AA)
    return frame


def stick_figure_frame(people: np.ndarray, size: tuple[int, int], joint_set: JointSet,
                       rng: np.random.Generator) -> np.ndarray:
    """A (h, w, 3) BGR frame: a noisy grey background with the people drawn on it."""
    width, height = size
    frame = rng.integers(60, 120, (height, width, 3), dtype=np.uint8)
    return draw_people(frame, people, joint_set)


def demo_world_frames(people: int, size: tuple[int, int], count: int, seed: int) -> list[np.ndarray] | None:
    """Frames from the demo's synthetic world (pose_stream.train.synthetic.demo_frames) when it is installed.

    Returns None where the module is missing or its `demo_frames` takes arguments this adapter does not know.
    """
    try:
        synthetic = importlib.import_module("pose_stream.train.synthetic")
    except ImportError:
        return None
    make = getattr(synthetic, "demo_frames", None)
    if make is None:
        return None
    aliases = {"people": people, "num_people": people, "n_people": people, "size": size, "frame_size": size,
               "image_size": size, "seed": seed, "frames": count, "num_frames": count, "count": count}
    params = inspect.signature(make).parameters
    kwargs = {name: aliases[name] for name in params if name in aliases}
    missing = [n for n, p in params.items() if p.default is inspect.Parameter.empty and n not in kwargs
               and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if missing:
        log.warning("demo_frames needs %s, which the benchmark does not know; drawing stick figures", missing)
        return None
    frames = []
    for item in make(**kwargs):
        frame = item if isinstance(item, np.ndarray) else item[0]
        frames.append(cv2.resize(frame, size) if frame.shape[1::-1] != tuple(size) else frame)
        if len(frames) == count:
            break
    return frames


def render_outputs(
    people: np.ndarray, network_size: tuple[int, int], joint_set: JointSet, flipped: bool = False,
    sigma: float = 2.0, tag_spacing: float = 3.0,
) -> list[np.ndarray]:
    """Raw HigherHRNet outputs [out0 (1, 2K, H/4, W/4), out1 (1, K, H/2, W/2)] for people (N, K, 2) in network pixels.

    Heatmaps: unit Gaussians (sigma in map pixels) at every joint, at both resolutions. Tags (out0 channels K..2K):
    person p's value p * tag_spacing in a 3x3 patch around each joint. flipped=True renders what the network
    gives for the horizontally flipped input (mirrored maps, channels in flip order).
    """
    width, height = network_size
    k = joint_set.num_joints
    order = np.array(joint_set.flip_index) if flipped else np.arange(k)
    out0 = np.zeros((1, 2 * k, height // 4, width // 4), np.float32)
    out1 = np.zeros((1, k, height // 2, width // 2), np.float32)
    for factor, maps in ((4, out0[0, :k]), (2, out1[0])):
        map_w = maps.shape[2]
        for p, person in enumerate(people):
            for channel, joint in enumerate(order):
                # Continuous image x maps to map x / factor - 0.5 (bilinear, align_corners=False).
                cx, cy = person[joint] / factor - 0.5
                if flipped:
                    cx = map_w - 1 - cx
                _splat_gaussian(maps[channel], cx, cy, sigma)
                if factor == 4:
                    _splat_tag(out0[0, k + channel], cx, cy, (p + 1) * tag_spacing)
    return [out0, out1]


def _splat_gaussian(heatmap: np.ndarray, cx: float, cy: float, sigma: float) -> None:
    radius = int(3 * sigma) + 1
    h, w = heatmap.shape
    x0, x1 = max(int(cx) - radius, 0), min(int(cx) + radius + 1, w)
    y0, y1 = max(int(cy) - radius, 0), min(int(cy) + radius + 1, h)
    if x0 >= x1 or y0 >= y1:
        return
    xs = np.arange(x0, x1)[None, :] - cx
    ys = np.arange(y0, y1)[:, None] - cy
    blob = np.exp(-(xs ** 2 + ys ** 2) / (2 * sigma ** 2))
    np.maximum(heatmap[y0:y1, x0:x1], blob, out=heatmap[y0:y1, x0:x1])


def _splat_tag(tag_map: np.ndarray, cx: float, cy: float, value: float) -> None:
    h, w = tag_map.shape
    x, y = int(round(cx)), int(round(cy))
    tag_map[max(y - 1, 0):min(y + 2, h), max(x - 1, 0):min(x + 2, w)] = value
