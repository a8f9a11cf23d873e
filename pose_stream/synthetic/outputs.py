"""Synthetic HigherHRNet outputs rendered from known poses, for decoding tests and benchmarks.

What a well-trained network would output for given people: Gaussian heatmaps (sigma 2 in map pixels) at 1/4
and 1/2 of the network input, each person's tag value on the tag channels around its joints, optional noise;
the flipped pass rendered from the mirrored people (joints swapped with the flip index) with their own tags.

Coordinates: a point x in network-input pixels (pixel i covers [i, i + 1)) sits at x / stride - 0.5 in the
index space of a map with that stride. The reference decodes a full-resolution peak at pixel i as i + 0.5
(+- 0.25), so rendering at x / stride - 0.5 makes decoding return x.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from pose_stream.joints import JointSet, get_joint_set
from pose_stream.decoding.types import AggregatedMaps, Candidates
from pose_stream.decoding.preprocess import make_transform

# A person facing the camera, height 1 (feet at y = 1); the person's left is on the image's right.
_TEMPLATE = {
    "nose": (0.0, 0.06), "left_eye": (0.03, 0.045), "right_eye": (-0.03, 0.045),
    "left_ear": (0.06, 0.06), "right_ear": (-0.06, 0.06), "head": (0.0, 0.0), "neck": (0.0, 0.15),
    "left_shoulder": (0.12, 0.2), "right_shoulder": (-0.12, 0.2),
    "left_elbow": (0.16, 0.36), "right_elbow": (-0.16, 0.36),
    "left_wrist": (0.18, 0.5), "right_wrist": (-0.18, 0.5),
    "left_hip": (0.08, 0.53), "right_hip": (-0.08, 0.53),
    "left_knee": (0.09, 0.75), "right_knee": (-0.09, 0.75),
    "left_ankle": (0.09, 0.97), "right_ankle": (-0.09, 0.97),
}


@dataclass(frozen=True)
class SyntheticPeople:
    """Known people. Shapes: P people, K joints.

    Attributes:
        keypoints: float64 (P, K, 2) x, y (image pixels, or network-input pixels after `to_network`).
        visible: bool (P, K) joints that are drawn into the heatmaps.
        tags: float64 (P,) each person's tag value in the plain pass.
        flipped_tags: float64 (P,) each person's tag value in the flipped pass.
        strength: float64 (P,) peak height of the person's heatmap Gaussians.
    """

    keypoints: np.ndarray
    visible: np.ndarray
    tags: np.ndarray
    flipped_tags: np.ndarray
    strength: np.ndarray

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    def with_keypoints(self, keypoints: np.ndarray) -> "SyntheticPeople":
        return SyntheticPeople(keypoints, self.visible, self.tags, self.flipped_tags, self.strength)

    def with_tags(self, tags: np.ndarray) -> "SyntheticPeople":
        return SyntheticPeople(self.keypoints, self.visible, tags, self.flipped_tags, self.strength)

    def to_network(self, image_size: tuple[int, int], input_size: int = 512, scale_factor: float = 1.0,
                   min_scale: float = 1.0) -> "SyntheticPeople":
        """The same people in the network-input pixels of the reference resize."""
        transform = make_transform(image_size, input_size, scale_factor, min_scale)
        return self.with_keypoints(transform.to_network(self.keypoints))

    def mirrored(self, width: float, flip_index: Sequence[int]) -> "SyntheticPeople":
        """As seen in the horizontally flipped image of this width: x -> width - x, and joint j of the mirror
        is the original joint flip_index[j] (a mirrored left wrist looks like a right wrist)."""
        index = np.asarray(flip_index)
        keypoints = self.keypoints[:, index].copy()
        keypoints[..., 0] = width - keypoints[..., 0]
        return SyntheticPeople(keypoints, self.visible[:, index], self.flipped_tags, self.tags, self.strength)


def random_people(
    rng: np.random.Generator,
    count: int,
    image_size: tuple[int, int],
    joint_set: JointSet | str = "coco",
    *,
    height_range: tuple[float, float] = (0.4, 1.0),
    hidden_fraction: float = 0.0,
    touch_borders: bool = True,
    tag_spacing: float = 2.0,
    border_gap: float = 4.0,
) -> SyntheticPeople:
    """`count` people on a jittered grid over the image, one per cell, so that the same joint of two people is
    at least a cell apart (their Gaussians do not pull each other's peaks).

    Args:
        height_range: person size as a fraction of the largest that fits its cell (with a margin), so one
            person nearly fills the image and 45 people are small.
        hidden_fraction: share of joints left out of the heatmaps (refine fills them).
        touch_borders: move people of the outer cells against the image border: their outermost joint
            border_gap image pixels from it. (Within half a quarter-resolution pixel of the border, about 2
            network-input pixels, a heatmap cannot place a peak: upsampling is flat there.)
        tag_spacing: distance between the tag values of two people.
    """
    joints = get_joint_set(joint_set) if isinstance(joint_set, str) else joint_set
    template = np.array([_TEMPLATE[name] for name in joints.names], np.float64)
    template -= (template.min(axis=0) + template.max(axis=0)) / 2  # centre the box on 0
    w, h = image_size
    cols = max(1, int(np.ceil(np.sqrt(count * w / h))))
    rows = max(1, int(np.ceil(count / cols)))
    cell_w, cell_h = w / cols, h / rows
    cells = rng.permutation(rows * cols)[:count]
    # A margin inside each cell keeps the same joint of two people apart (tag discs and Gaussians separate).
    margin_x, margin_y = 0.15 * cell_w, 0.1 * cell_h
    keypoints = np.zeros((count, joints.num_joints, 2))
    for p, cell in enumerate(cells):
        row, col = divmod(int(cell), cols)
        extent = template.max(axis=0) - template.min(axis=0)
        fit = min((cell_w - 2 * margin_x) / extent[0], (cell_h - 2 * margin_y) / extent[1])
        size = rng.uniform(*height_range) * fit
        pose = template * size + rng.normal(0, 0.01 * size, template.shape)
        lo, hi = pose.min(axis=0), pose.max(axis=0)
        x0, x1 = col * cell_w + margin_x - lo[0], (col + 1) * cell_w - margin_x - hi[0]
        y0, y1 = row * cell_h + margin_y - lo[1], (row + 1) * cell_h - margin_y - hi[1]
        cx, cy = rng.uniform(x0, max(x0, x1)), rng.uniform(y0, max(y0, y1))
        if touch_borders:
            if col == 0:
                cx = border_gap - lo[0]
            elif col == cols - 1:
                cx = w - border_gap - hi[0]
            if row == 0:
                cy = border_gap - lo[1]
            elif row == rows - 1:
                cy = h - border_gap - hi[1]
        keypoints[p] = pose + (cx, cy)
    keypoints[..., 0] = np.clip(keypoints[..., 0], border_gap, w - border_gap)
    keypoints[..., 1] = np.clip(keypoints[..., 1], border_gap, h - border_gap)
    visible = rng.random((count, joints.num_joints)) >= hidden_fraction
    visible[np.arange(count), rng.integers(0, joints.num_joints, count)] = True  # nobody fully hidden
    order = rng.permutation(count)
    tags = tag_spacing * (order - count / 2.0) + 0.25
    flipped_tags = tag_spacing * (rng.permutation(count) - count / 2.0) - 0.25
    return SyntheticPeople(keypoints, visible, tags, flipped_tags, rng.uniform(0.6, 1.0, count))


def _render(
    people: SyntheticPeople, num_joints: int, stride: int, map_hw: tuple[int, int], sigma: float,
    tag_radius: float | None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Heatmaps (K, h, w) (max over people) and, with tag_radius, tag maps (K, h, w) at one map stride."""
    h, w = map_hw
    heat = np.zeros((num_joints, h, w), np.float32)
    tags = np.zeros((num_joints, h, w), np.float32) if tag_radius is not None else None
    reach = int(np.ceil(4 * sigma))
    for p in range(len(people)):
        for j in range(num_joints):
            if not people.visible[p, j]:
                continue
            cx, cy = people.keypoints[p, j] / stride - 0.5
            x0, x1 = max(int(cx) - reach, 0), min(int(cx) + reach + 2, w)
            y0, y1 = max(int(cy) - reach, 0), min(int(cy) + reach + 2, h)
            if x0 >= x1 or y0 >= y1:
                continue
            xs, ys = np.arange(x0, x1), np.arange(y0, y1)
            d2 = (xs[None, :] - cx) ** 2 + (ys[:, None] - cy) ** 2
            blob = (people.strength[p] * np.exp(-d2 / (2 * sigma**2))).astype(np.float32)
            np.maximum(heat[j, y0:y1, x0:x1], blob, out=heat[j, y0:y1, x0:x1])
            if tags is not None:
                disc = d2 <= tag_radius**2
                tags[j, y0:y1, x0:x1][disc] = people.tags[p]
    return heat, tags


def render_outputs(
    people: SyntheticPeople,
    network_size: tuple[int, int],
    num_joints: int,
    *,
    sigma: float = 2.0,
    noise: float = 0.0,
    rng: np.random.Generator | None = None,
    tag_radius: float = 2.0,
) -> list[np.ndarray]:
    """Network outputs [out0 (1, 2K, H/4, W/4), out1 (1, K, H/2, W/2)] for people in network-input pixels."""
    w, h = network_size
    heat4, tags4 = _render(people, num_joints, 4, (h // 4, w // 4), sigma, tag_radius)
    heat2, _ = _render(people, num_joints, 2, (h // 2, w // 2), sigma, None)
    out0 = np.concatenate([heat4, tags4])[None]
    out1 = heat2[None]
    if noise > 0:
        rng = rng if rng is not None else np.random.default_rng(0)
        out0 = out0 + rng.normal(0, noise, out0.shape).astype(np.float32)
        out1 = out1 + rng.normal(0, noise, out1.shape).astype(np.float32)
    return [np.ascontiguousarray(out0, np.float32), np.ascontiguousarray(out1, np.float32)]


def render_flipped_outputs(
    people: SyntheticPeople, network_size: tuple[int, int], joint_set: JointSet, **kwargs
) -> list[np.ndarray]:
    """What the network returns for the flipped input: the mirrored people rendered, not flipped back."""
    mirrored = people.mirrored(network_size[0], joint_set.flip_index)
    return render_outputs(mirrored, network_size, joint_set.num_joints, **kwargs)


def render_maps(
    people: SyntheticPeople,
    network_size: tuple[int, int],
    num_joints: int,
    *,
    tag_dim: int = 2,
    sigma: float = 4.0,
    noise: float = 0.0,
    rng: np.random.Generator | None = None,
    max_people: int = 30,
) -> tuple[Candidates, AggregatedMaps]:
    """Aggregated-looking full-resolution maps and their candidates, without running an aggregation.

    For grouping tests and benchmarks. Candidates are each visible person's peak pixel (the maximum of its
    5x5 neighbourhood), strongest first, then the weakest pixels of the map as filler up to max_people.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    w, h = network_size
    heat, plain = _render(people, num_joints, 1, (h, w), sigma, tag_radius=sigma)
    if noise > 0:
        heat += rng.normal(0, noise, heat.shape).astype(np.float32)
    # the flipped pass's tags (the people's flipped_tags) for the other tag dimensions
    _, flipped = _render(people.with_tags(people.flipped_tags), num_joints, 1, (h, w), sigma, tag_radius=sigma)
    tags = np.stack([plain] + [flipped] * (tag_dim - 1), axis=3)
    if noise > 0:
        tags += rng.normal(0, noise, tags.shape).astype(np.float32)
    maps = AggregatedMaps(np.ascontiguousarray(heat), np.ascontiguousarray(tags, np.float32))
    return _peak_candidates(maps, people, max_people), maps


def _peak_candidates(maps: AggregatedMaps, people: SyntheticPeople, max_people: int) -> Candidates:
    k, h, w = maps.heatmaps.shape
    flat = maps.heatmaps.reshape(k, -1)
    index = np.zeros((k, max_people), np.int64)
    for j in range(k):
        peaks = []
        for p in np.flatnonzero(people.visible[:, j]):
            cx, cy = np.clip(np.rint(people.keypoints[p, j] - 0.5).astype(int), 0, (w - 1, h - 1))
            y0, x0 = max(cy - 2, 0), max(cx - 2, 0)
            window = maps.heatmaps[j, y0:cy + 3, x0:cx + 3]
            dy, dx = np.unravel_index(np.argmax(window), window.shape)
            peaks.append((y0 + dy) * w + x0 + dx)
        peaks = sorted(set(peaks), key=lambda i: (-flat[j, i], i))[:max_people]
        taken = set(peaks)
        lowest = np.argsort(flat[j], kind="stable")[: 2 * max_people]
        filler = [int(i) for i in lowest if int(i) not in taken][: max_people - len(peaks)]
        index[j] = np.array(peaks + sorted(filler, key=lambda i: (-flat[j, i], i)), np.int64)
    x, y = (index % w).astype(np.int32), (index // w).astype(np.int32)
    value = np.take_along_axis(flat, index, axis=1).astype(np.float32)
    tags = maps.tags[np.arange(k)[:, None], y, x]
    return Candidates(x, y, value, np.ascontiguousarray(tags, np.float32))
