"""Reading COCO-format person-keypoint datasets (ours or the real COCO) for training.

Layouts found by `find_annotations(DIR)`:
  DIR/annotations/person_keypoints.json + DIR/images/             (`pose-stream synth`)
  DIR/annotations/person_keypoints_train2017.json + DIR/train2017/ (COCO; the split name picks both)
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pose_stream.errors import PoseStreamError
from pose_stream.coco_format import decode_rle

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sample:
    """One training image.

    Attributes:
        image: (H, W, 3) uint8 BGR.
        keypoints: (P, K, 3) float32 x, y, visibility of the people with labelled keypoints.
        ignore: (H, W) bool, True on crowd regions and unlabelled people (no loss there).
    """

    image: np.ndarray
    keypoints: np.ndarray
    ignore: np.ndarray


def find_annotations(data_dir: str | Path, split: str | None = None) -> tuple[Path, Path]:
    """(annotation json, image folder) of a dataset folder; `split` picks e.g. "train2017" in COCO."""
    root = Path(data_dir)
    if not root.is_dir():
        raise PoseStreamError(f"dataset folder not found: {root}")
    ann_dir = root / "annotations"
    if split:
        candidates = [ann_dir / f"person_keypoints_{split}.json"]
        image_dirs = [root / split, root / "images" / split, root / "images"]
    else:
        candidates = [ann_dir / "person_keypoints.json", *sorted(ann_dir.glob("person_keypoints_train*.json"))]
        image_dirs = [root / "images"] + [root / c.stem.replace("person_keypoints_", "") for c in candidates[1:]]
    for ann in candidates:
        if ann.is_file():
            for images in image_dirs:
                if images.is_dir():
                    return ann, images
            raise PoseStreamError(f"{root}: found {ann.name} but no image folder (tried {', '.join(map(str, image_dirs))})")
    raise PoseStreamError(f"{root}: no person_keypoints*.json under annotations/ (make one: pose-stream synth --out {root})")


def annotation_mask(ann: dict, height: int, width: int) -> np.ndarray:
    """(H, W) bool pixels of an annotation's segmentation (polygons or RLE); empty when it has none."""
    seg = ann.get("segmentation")
    mask = np.zeros((height, width), dtype=np.uint8)
    if isinstance(seg, list):
        for polygon in seg:
            pts = np.round(np.asarray(polygon, dtype=np.float64).reshape(-1, 2)).astype(np.int32)
            if len(pts) >= 3:
                cv2.fillPoly(mask, [pts], 1)
        return mask.astype(bool)
    if isinstance(seg, dict):
        if isinstance(seg.get("counts"), list):
            return decode_rle(seg)
        from pose_stream._optional import require

        rle = dict(seg)
        rle["counts"] = rle["counts"].encode() if isinstance(rle["counts"], str) else rle["counts"]
        return require("pycocotools.mask", "reading compressed COCO masks").decode(rle).astype(bool)
    return mask.astype(bool)


class CocoKeypoints:
    """Indexable COCO keypoint dataset: `len(ds)`, `ds[i] -> Sample`.

    Images without any person with keypoints are skipped (as the reference does for training).
    """

    def __init__(self, data_dir: str | Path, split: str | None = None, num_joints: int = 17) -> None:
        self.annotation_file, self.image_dir = find_annotations(data_dir, split)
        try:
            document = json.loads(self.annotation_file.read_text())
            images = {img["id"]: img for img in document["images"]}
            annotations = document["annotations"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise PoseStreamError(f"{self.annotation_file} is not a COCO annotation file ({exc})") from None
        self.num_joints = num_joints
        by_image: dict[int, list[dict]] = {i: [] for i in images}
        for ann in annotations:
            if ann.get("image_id") in by_image:
                by_image[ann["image_id"]].append(ann)
        self._items = [
            (images[i], anns) for i, anns in by_image.items()
            if any(a.get("num_keypoints", 0) > 0 and not a.get("iscrowd", 0) for a in anns)
        ]
        if not self._items:
            raise PoseStreamError(f"{self.annotation_file}: no image has a person with keypoints")
        log.info("%s: %d training images", self.annotation_file, len(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> Sample:
        info, anns = self._items[index]
        path = self.image_dir / info["file_name"]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise PoseStreamError(f"cannot read image {path}")
        height, width = image.shape[:2]
        people, ignore = [], np.zeros((height, width), dtype=bool)
        for ann in anns:
            if ann.get("iscrowd", 0) or ann.get("num_keypoints", 0) == 0:
                # Crowds and unlabelled people are real people without targets: no penalty there.
                ignore |= annotation_mask(ann, height, width)
                continue
            kp = np.asarray(ann["keypoints"], dtype=np.float32).reshape(-1, 3)
            if kp.shape[0] != self.num_joints:
                raise PoseStreamError(f"{self.annotation_file}: annotation {ann.get('id')} has {kp.shape[0]} "
                                      f"keypoints, expected {self.num_joints}")
            people.append(kp)
        keypoints = np.stack(people) if people else np.zeros((0, self.num_joints, 3), np.float32)
        return Sample(image=image, keypoints=keypoints, ignore=ignore)
