"""Writing COCO person-keypoint annotations: the JSON layout and uncompressed RLE masks."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pose_stream.joints import JointSet


@dataclass(frozen=True)
class PersonAnnotation:
    """One person in one image, in COCO terms.

    Attributes:
        keypoints: (K, 3) float32 x, y, visibility (0 unlabelled, 1 hidden, 2 seen).
        bbox: (x, y, w, h) of the visible pixels.
        area: number of visible pixels (COCO's segmentation area).
        mask: (H, W) bool visible pixels, or None.
    """

    keypoints: np.ndarray
    bbox: tuple[float, float, float, float]
    area: float
    mask: np.ndarray | None = None

    @property
    def num_keypoints(self) -> int:
        return int((self.keypoints[:, 2] > 0).sum())


def encode_rle(mask: np.ndarray) -> dict:
    """Uncompressed COCO RLE of a bool mask: run lengths in column-major order, starting with zeros."""
    flat = np.asarray(mask, dtype=bool).flatten(order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


def decode_rle(rle: dict) -> np.ndarray:
    """Inverse of encode_rle (uncompressed RLE only)."""
    height, width = rle["size"]
    values = np.zeros(len(rle["counts"]), dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, rle["counts"])
    return flat.reshape((height, width), order="F")


def categories(joint_set: JointSet) -> list[dict]:
    return [{
        "id": 1, "name": "person", "supercategory": "person",
        "keypoints": list(joint_set.names),
        "skeleton": [[a + 1, b + 1] for a, b in joint_set.skeleton],  # COCO numbers joints from 1
    }]


def annotation_record(person: PersonAnnotation, ann_id: int, image_id: int) -> dict:
    kp = np.round(person.keypoints.astype(np.float64), 2)
    record = {
        "id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
        "keypoints": [float(v) if i % 3 < 2 else int(v) for i, v in enumerate(kp.reshape(-1))],
        "num_keypoints": person.num_keypoints,
        "bbox": [round(float(v), 2) for v in person.bbox],
        "area": float(person.area),
    }
    if person.mask is not None:
        record["segmentation"] = encode_rle(person.mask)
    return record
