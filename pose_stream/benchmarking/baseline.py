"""BASELINE (not a product path): a serial pipeline organised like the reference test script.

read -> resize (`preprocessing.preprocess`, the reference resize) -> PyTorch forward (plain, then flipped) ->
aggregation with F.interpolate -> NMS/top-k in PyTorch -> plain-Python grouping (people in a dict keyed by their
first tag value, a pure-Python Munkres assignment) -> adjust reading the heatmap tensor element by element ->
per-person refine (the maps copied to the host for every person, as the reference does) -> per-point inverse
affine.

It exists only so that `pose-stream bench` (and benchmarks/decode.py, for the grouping alone) can report the
product's speed-up as a measured ratio. It follows the behaviour in docs/higherhrnet-reference.md closely
enough to decode the same people, including the reference's organisation (and its tag-keyed dict, whose
collapse of equal tags the product does not copy).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pose_stream.benchmarking.hungarian import munkres_assignment
from pose_stream.input_size import MULTIPLE
from pose_stream.joints import COCO, JointSet
from pose_stream.poses import Poses
from pose_stream.decoding.preprocess import Transform, make_transform, preprocess


@dataclass(frozen=True)
class BaselineConfig:
    """Settings of the released COCO test configs (reference doc, Grouping)."""

    input_size: int = 512
    flip: bool = True
    joint_set: JointSet = COCO
    max_people: int = 30
    detection_threshold: float = 0.1
    tag_threshold: float = 1.0
    nms_kernel: int = 5

    def __post_init__(self) -> None:
        if self.input_size <= 0 or self.input_size % MULTIPLE:
            raise ValueError(f"input_size must be a positive multiple of {MULTIPLE}, got {self.input_size}")
        if self.nms_kernel % 2 == 0 or self.max_people <= 0:
            raise ValueError("nms_kernel must be odd and max_people positive")


def match_by_tag(tag_k: np.ndarray, loc_k: np.ndarray, val_k: np.ndarray, config: BaselineConfig) -> list[np.ndarray]:
    """The reference's plain-Python matching of top-k candidates into people.

    Args:
        tag_k: (K, M, L) tags, loc_k: (K, M, 2) x, y, val_k: (K, M) values of the candidates of each joint.
    Returns:
        per person float32 (K, 3 + L): x, y, value, tag of each joint (zeros where it has none), in the order
        the people were created.
    """
    num_joints, _, tag_dim = tag_k.shape
    people: dict[float, np.ndarray] = {}
    person_tags: dict[float, list[np.ndarray]] = {}

    def start_person(tag: np.ndarray, joint: np.ndarray, idx: int) -> None:
        key = float(tag[0])
        people.setdefault(key, np.zeros((num_joints, 3 + tag_dim)))[idx] = joint
        person_tags[key] = [tag]

    for idx in config.joint_set.visit_order:
        joints = np.concatenate((loc_k[idx], val_k[idx, :, None], tag_k[idx]), 1)
        keep = joints[:, 2] > config.detection_threshold
        joints, tags = joints[keep], tag_k[idx][keep]
        if len(joints) == 0:
            continue
        if not people:
            for tag, joint in zip(tags, joints):
                start_person(tag, joint, idx)
            continue
        keys = list(people)[: config.max_people]
        mean_tags = np.array([np.mean(person_tags[key], axis=0) for key in keys])
        distance = np.linalg.norm(joints[:, None, 3:] - mean_tags[None, :, :], ord=2, axis=2)
        cost = np.round(distance) * 100 - joints[:, 2:3]
        added, grouped = cost.shape
        if added > grouped:
            cost = np.concatenate((cost, np.zeros((added, added - grouped)) + 1e10), axis=1)
        for row, col in munkres_assignment(cost.tolist()):
            if row < added and col < grouped and distance[row][col] < config.tag_threshold:
                key = keys[col]
                people[key][idx] = joints[row]
                person_tags[key].append(tags[row])
            else:
                start_person(tags[row], joints[row], idx)
    return [person.astype(np.float32) for person in people.values()]


class ReferenceStyleBaseline:
    """The reference test script's serial pipeline around a HigherHRNet module. BASELINE, not a product path.

    Call it on a BGR image for Poses; its stages (prepare, infer, aggregate, group) are methods so that the
    benchmark can time each; `decode_outputs(...)` runs only aggregation and grouping on given raw outputs.
    """

    def __init__(self, model: nn.Module, config: BaselineConfig = BaselineConfig(), device: str = "cpu") -> None:
        self.config = config
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)

    def __call__(self, image_bgr: np.ndarray) -> Poses:
        tensor, transform = self.prepare(image_bgr)
        outputs, flipped = self.infer(tensor)
        heatmaps, tags = self.aggregate(outputs, flipped, transform.network_size)
        return self.group(heatmaps, tags, transform)

    def prepare(self, image_bgr: np.ndarray) -> tuple[torch.Tensor, Transform]:
        tensor, transform = preprocess(image_bgr, self.config.input_size)
        return torch.from_numpy(tensor).to(self.device), transform

    def infer(self, tensor: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
        """The plain pass, then the flipped pass (two separate forward calls, as the reference makes them)."""
        with torch.no_grad():
            outputs = list(self.model(tensor))
            flipped = list(self.model(torch.flip(tensor, [3]))) if self.config.flip else None
        return outputs, flipped

    def decode_outputs(
        self, outputs: list[np.ndarray], flipped: list[np.ndarray] | None, image_size: tuple[int, int]
    ) -> Poses:
        """Aggregation + grouping only, on raw outputs of a network input made from an image of (w, h)."""
        transform = make_transform(image_size, self.config.input_size)
        heatmaps, tags = self.aggregate(self.to_device(outputs), self.to_device(flipped), transform.network_size)
        return self.group(heatmaps, tags, transform)

    def to_device(self, outputs: list[np.ndarray] | None) -> list[torch.Tensor] | None:
        return None if outputs is None else [torch.from_numpy(o).to(self.device) for o in outputs]

    def aggregate(
        self, outputs: list[torch.Tensor], flipped: list[torch.Tensor] | None, network_size: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Heatmaps (1, K, H, W) and tags (1, K, H, W, L) at the network-input size."""
        k = self.config.joint_set.num_joints
        heatmaps, tag = self._merge_resolutions(outputs, k)
        tags = [tag]
        if flipped is not None:
            order = list(self.config.joint_set.flip_index)
            flip_heatmaps, flip_tag = self._merge_resolutions(flipped, k)
            heatmaps = (heatmaps + torch.flip(flip_heatmaps, [3])[:, order]) / 2.0
            tags.append(torch.flip(flip_tag, [3])[:, order])
        size = (network_size[1], network_size[0])
        heatmaps = F.interpolate(heatmaps, size=size, mode="bilinear", align_corners=False)
        tags = [F.interpolate(t, size=size, mode="bilinear", align_corners=False) for t in tags]
        return heatmaps, torch.stack(tags, dim=4)

    @staticmethod
    def _merge_resolutions(outputs: list[torch.Tensor], k: int) -> tuple[torch.Tensor, torch.Tensor]:
        low = F.interpolate(outputs[0], size=outputs[1].shape[2:], mode="bilinear", align_corners=False)
        return (low[:, :k] + outputs[1]) / 2.0, low[:, k:]

    def group(self, heatmaps: torch.Tensor, tags: torch.Tensor, transform: Transform) -> Poses:
        tag_k, loc_k, val_k = self._top_k(heatmaps, tags)
        people = match_by_tag(tag_k, loc_k, val_k, self.config)
        self._adjust(people, heatmaps[0])
        scores = [float(person[:, 2].mean()) for person in people]
        for index in range(len(people)):
            # The reference copies the full maps to the host for every person.
            people[index] = self._refine(heatmaps[0].cpu().numpy(), tags[0].cpu().numpy(), people[index])
        return self._to_image(people, scores, transform)

    def _top_k(self, heatmaps: torch.Tensor, tags: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        kernel = self.config.nms_kernel
        peaks = F.max_pool2d(heatmaps, kernel, 1, (kernel - 1) // 2)
        suppressed = heatmaps * (peaks == heatmaps).float()
        n, k, h, w = suppressed.shape
        values, index = suppressed.view(n, k, -1).topk(self.config.max_people, dim=2)
        flat_tags = tags.view(n, k, h * w, -1)
        tag_k = torch.stack([torch.gather(flat_tags[..., i], 2, index) for i in range(flat_tags.size(3))], dim=3)
        loc_k = torch.stack((index % w, index // w), dim=3)
        return tag_k[0].cpu().numpy(), loc_k[0].cpu().numpy(), values[0].cpu().numpy()

    @staticmethod
    def _adjust(people: list[np.ndarray], heatmaps: torch.Tensor) -> None:
        for person in people:
            for joint, row in enumerate(person):
                if row[2] <= 0:
                    continue
                x, y = float(row[0]), float(row[1])
                xi, yi = int(x), int(y)
                hm = heatmaps[joint]  # element-wise reads of a tensor, as the reference does
                h, w = hm.shape
                x += 0.25 if hm[yi, min(xi + 1, w - 1)] > hm[yi, max(xi - 1, 0)] else -0.25
                y += 0.25 if hm[min(yi + 1, h - 1), xi] > hm[max(yi - 1, 0), xi] else -0.25
                person[joint, 0:2] = (x + 0.5, y + 0.5)

    @staticmethod
    def _refine(heatmaps: np.ndarray, tags: np.ndarray, person: np.ndarray) -> np.ndarray:
        assigned = [j for j in range(person.shape[0]) if person[j, 2] > 0]
        mean_tag = np.mean([tags[j, int(person[j, 1]), int(person[j, 0])] for j in assigned], axis=0)
        found = []
        for joint in range(heatmaps.shape[0]):
            hm = heatmaps[joint]
            distance = ((tags[joint] - mean_tag[None, None, :]) ** 2).sum(axis=2) ** 0.5
            yi, xi = np.unravel_index(np.argmax(hm - np.round(distance)), hm.shape)
            value = hm[yi, xi]
            h, w = hm.shape
            x = xi + 0.5 + (0.25 if hm[yi, min(xi + 1, w - 1)] > hm[yi, max(xi - 1, 0)] else -0.25)
            y = yi + 0.5 + (0.25 if hm[min(yi + 1, h - 1), xi] > hm[max(yi - 1, 0), xi] else -0.25)
            found.append((x, y, value))
        for joint, (x, y, value) in enumerate(found):
            if value > 0 and person[joint, 2] == 0:
                person[joint, 0:3] = (x, y, value)
        return person

    def _to_image(self, people: list[np.ndarray], scores: list[float], transform: Transform) -> Poses:
        k = self.config.joint_set.num_joints
        if not people:
            return Poses.empty(k, self.config.joint_set.name)
        back = transform.inverse_matrix
        keypoints = np.zeros((len(people), k, 3), np.float32)
        for p, person in enumerate(people):
            for joint in range(k):
                x, y, value = person[joint, 0:3]
                keypoints[p, joint] = (*np.dot(back, np.array([x, y, 1.0])), value)
        return Poses(keypoints, np.asarray(scores, np.float32), self.config.joint_set.name)
