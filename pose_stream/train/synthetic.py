"""Writing the synthetic world's still scenes (`pose_stream.synthetic.scenes`) as a COCO keypoint dataset."""
from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
from pathlib import Path

import cv2

from pose_stream.coco_format import annotation_record, categories
from pose_stream.errors import PoseStreamError
from pose_stream.joints import COCO
from pose_stream.synthetic.scenes import SceneConfig, synthetic_image
from pose_stream.train.workers import one_opencv_thread

log = logging.getLogger(__name__)

ANNOTATION_FILE = "annotations/person_keypoints.json"
IMAGE_DIR = "images"


def _write_scene(job: tuple[Path, int, int, SceneConfig]) -> tuple[dict, list[dict]]:
    """Render and save image `index`; returns its image record and its annotation records (ids filled later)."""
    out, seed, index, config = job
    scene = synthetic_image(seed, index, config)
    name = f"{index:06d}.jpg"
    if not cv2.imwrite(str(out / IMAGE_DIR / name), scene.image, [cv2.IMWRITE_JPEG_QUALITY, 95]):
        raise PoseStreamError(f"cannot write {out / IMAGE_DIR / name} (is the disk full or the folder read-only?)")
    height, width = scene.image.shape[:2]
    image_id = index + 1
    image = {"id": image_id, "file_name": name, "width": width, "height": height}
    return image, [annotation_record(person, 0, image_id) for person in scene.people]


def write_coco_dataset(out_dir: str | Path, num_images: int, seed: int = 0, config: SceneConfig = SceneConfig(),
                       progress: bool = True, workers: int = 1) -> Path:
    """Render `num_images` scenes into out_dir/images/*.jpg plus out_dir/annotations/person_keypoints.json.

    `workers` > 1 renders in that many processes; the files are the same as with one (every image is a pure
    function of (seed, index), and annotation ids are numbered here in image order).
    Returns the annotation file's path.
    """
    from tqdm import tqdm

    if num_images < 1:
        raise ValueError("num_images must be at least 1")
    if workers < 1:
        raise ValueError("workers must be at least 1")
    out = Path(out_dir)
    (out / IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    (out / ANNOTATION_FILE).parent.mkdir(parents=True, exist_ok=True)
    jobs = ((out, seed, index, config) for index in range(num_images))
    images, annotations = [], []
    with contextlib.ExitStack() as stack:
        if workers > 1:
            pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(workers, one_opencv_thread))
            scenes = pool.imap(_write_scene, jobs, chunksize=16)
        else:
            scenes = map(_write_scene, jobs)
        for image, records in tqdm(scenes, total=num_images, desc="synth", unit="img", disable=not progress):
            images.append(image)
            for record in records:
                annotations.append({**record, "id": len(annotations) + 1})
    document = {
        "info": {"description": f"pose-stream synthetic people, seed {seed}", "version": "1"},
        "images": images, "annotations": annotations, "categories": categories(COCO),
    }
    path = out / ANNOTATION_FILE
    path.write_text(json.dumps(document, separators=(",", ":")))
    log.info("wrote %d images, %d people to %s", len(images), len(annotations), out)
    return path
