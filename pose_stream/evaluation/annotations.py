"""Loading and validating a COCO-format person-keypoints annotation file.

Checks happen here, once, so that evaluation and the `eval` command can report a bad file in one line
instead of failing deep inside pycocotools.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pose_stream.errors import PoseStreamError
from pose_stream.joints import JOINT_SETS, JointSet, get_joint_set

log = logging.getLogger(__name__)

PERSON_CATEGORY_ID = 1


@dataclass(frozen=True)
class KeypointAnnotations:
    """A validated COCO person-keypoints dataset (the parsed json).

    Attributes:
        path: where it was read from ("<memory>" for a dict).
        dataset: the parsed json; every annotation has keypoints (3K values), area, bbox, iscrowd, num_keypoints.
        joint_set: the layout the keypoint count selects (17 -> COCO, 14 -> CrowdPose).
    """

    path: str
    dataset: dict[str, Any]
    joint_set: JointSet

    @property
    def images(self) -> list[dict[str, Any]]:
        return self.dataset["images"]

    @property
    def image_ids(self) -> list[int]:
        return [image["id"] for image in self.images]

    def to_coco(self):
        """A pycocotools COCO object over this dataset (its console chatter goes to the debug log)."""
        from pose_stream._optional import require

        coco_module = require("pycocotools.coco", "COCO keypoint evaluation")
        coco = coco_module.COCO()
        coco.dataset = self.dataset
        with quiet_stdout("pycocotools index"):
            coco.createIndex()
        return coco


@contextlib.contextmanager
def quiet_stdout(what: str):
    """Send what pycocotools prints to the debug log instead of the console."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield buffer
    text = buffer.getvalue().strip()
    if text:
        log.debug("%s:\n%s", what, text)


def load_keypoint_annotations(
    source: str | os.PathLike | dict[str, Any], joint_set: str | JointSet | None = None
) -> KeypointAnnotations:
    """Read and validate a COCO person_keypoints json (path or already-parsed dict).

    `joint_set` (name or JointSet) is checked against the file's keypoint count; None infers it.
    Missing `iscrowd` defaults to 0 and missing `num_keypoints` is counted from the visibility flags.
    Raises PoseStreamError naming the first problem.
    """
    if isinstance(source, dict):
        path, dataset = "<memory>", json.loads(json.dumps(source))
    else:
        path = str(source)
        if not Path(path).is_file():
            raise PoseStreamError(f"annotations file not found: {path}")
        try:
            dataset = json.loads(Path(path).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PoseStreamError(f"{path} is not a JSON file: {exc}") from None
    where = path
    if not isinstance(dataset, dict) or not all(isinstance(dataset.get(k), list) for k in ("images", "annotations", "categories")):
        raise PoseStreamError(f"{where} is not a COCO annotations file (needs 'images', 'annotations', 'categories' lists)")
    person = next((c for c in dataset["categories"] if isinstance(c, dict) and c.get("keypoints")), None)
    if person is None:
        raise PoseStreamError(f"{where} is not a COCO keypoints file: no category has a 'keypoints' list")
    num_joints = len(person["keypoints"])
    layout = _joint_set_for(num_joints, joint_set, where)
    image_ids = set()
    for image in dataset["images"]:
        if not isinstance(image, dict) or "id" not in image or "file_name" not in image:
            raise PoseStreamError(f"{where}: every image needs an 'id' and a 'file_name'")
        image_ids.add(image["id"])
    for index, ann in enumerate(dataset["annotations"]):
        _check_annotation(ann, index, num_joints, image_ids, where)
    return KeypointAnnotations(path=path, dataset=dataset, joint_set=layout)


def _joint_set_for(num_joints: int, wanted: str | JointSet | None, where: str) -> JointSet:
    if wanted is not None:
        layout = wanted if isinstance(wanted, JointSet) else _named_joint_set(wanted)
        if layout.num_joints != num_joints:
            raise PoseStreamError(
                f"{where} has {num_joints} keypoints per person, but the {layout.name} layout has {layout.num_joints}"
            )
        return layout
    matches = [js for js in JOINT_SETS.values() if js.num_joints == num_joints]
    if not matches:
        known = ", ".join(f"{js.name} ({js.num_joints})" for js in JOINT_SETS.values())
        raise PoseStreamError(f"{where} has {num_joints} keypoints per person; known layouts: {known}")
    return matches[0]


def _named_joint_set(name: str) -> JointSet:
    try:
        return get_joint_set(name)
    except ValueError as exc:
        raise PoseStreamError(str(exc)) from None


def _check_annotation(ann: Any, index: int, num_joints: int, image_ids: set, where: str) -> None:
    if not isinstance(ann, dict):
        raise PoseStreamError(f"{where}: annotation #{index} is not an object")
    for key in ("image_id", "keypoints", "area", "bbox"):
        if key not in ann:
            raise PoseStreamError(f"{where}: annotation #{index} has no '{key}' (not a COCO keypoints file?)")
    if ann["image_id"] not in image_ids:
        raise PoseStreamError(f"{where}: annotation #{index} refers to image id {ann['image_id']!r}, which is not listed")
    keypoints = ann["keypoints"]
    if not isinstance(keypoints, list) or len(keypoints) != 3 * num_joints:
        raise PoseStreamError(f"{where}: annotation #{index} needs {3 * num_joints} keypoint values, has {len(keypoints)}")
    ann.setdefault("iscrowd", 0)
    ann.setdefault("num_keypoints", sum(1 for v in keypoints[2::3] if v > 0))
    ann.setdefault("category_id", PERSON_CATEGORY_ID)
    ann.setdefault("id", index + 1)
