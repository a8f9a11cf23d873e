"""Running an estimator over the images of a COCO keypoints set, and comparing two backends on it."""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pose_stream.errors import PoseStreamError
from pose_stream.evaluation.annotations import KeypointAnnotations
from pose_stream.evaluation.coco import STAT_NAMES, EvalReport
from pose_stream.poses import Poses

log = logging.getLogger(__name__)


def image_files(annotations: KeypointAnnotations, images_dir: str | os.PathLike,
                limit: int | None = None) -> list[tuple[int, Path]]:
    """(image id, path) of every annotated image (the first `limit`), all checked to exist."""
    folder = Path(images_dir)
    if not folder.is_dir():
        raise PoseStreamError(f"images folder not found: {folder}")
    images = annotations.images[:limit] if limit else annotations.images
    if not images:
        raise PoseStreamError(f"{annotations.path} lists no images")
    items = [(image["id"], folder / image["file_name"]) for image in images]
    missing = [path for _, path in items if not path.is_file()]
    if missing:
        raise PoseStreamError(f"{len(missing)} of {len(items)} images are missing from {folder}, e.g. {missing[0].name}")
    return items


def predict_images(estimator, items: Sequence[tuple[int, Path]], progress: bool = True,
                   description: str = "images") -> dict[int, Poses]:
    """Poses per image id from `estimator.predict` on each image (read with OpenCV, BGR)."""
    import cv2
    from tqdm import tqdm

    predictions: dict[int, Poses] = {}
    for image_id, path in tqdm(items, desc=description, unit="image", disable=not progress):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if image is None:
            raise PoseStreamError(f"cannot read image {path}")
        predictions[image_id] = estimator.predict(image)
    return predictions


@dataclass(frozen=True)
class Comparison:
    """The same set scored with two backends; differences are second minus first."""

    first_label: str
    first: EvalReport
    second_label: str
    second: EvalReport

    @property
    def ap_difference(self) -> float:
        return self.second.ap - self.first.ap

    def table(self) -> str:
        rows = [f"| metric | {self.first_label} | {self.second_label} | difference |", "| --- | --- | --- | --- |"]
        for name in STAT_NAMES:
            a, b = self.first.stats[name], self.second.stats[name]
            diff = "n/a" if a < 0 or b < 0 else f"{b - a:+.4f}"
            rows.append(f"| {name} | {_stat(a)} | {_stat(b)} | {diff} |")
        return "\n".join(rows)


def _stat(value: float) -> str:
    return "n/a" if value < 0 else f"{value:.4f}"
