"""COCO keypoint evaluation: pycocotools agreement, joint-set sigmas, results format, the eval command."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from pose_stream.errors import PoseStreamError
from pose_stream.evaluation import STAT_NAMES, evaluate, load_keypoint_annotations, poses_to_results, write_results
from pose_stream.joints import COCO, CROWDPOSE, JointSet
from pose_stream.poses import Poses

IMAGE_W, IMAGE_H = 320, 240


def make_keypoint_set(tmp_path, joint_set: JointSet, rng: np.random.Generator, num_images: int = 4):
    """A small COCO-format set: tiny PNGs and a person_keypoints json; returns (json path, gt Poses per image id)."""
    images, annotations, truth = [], [], {}
    image_dir = tmp_path / "images"
    image_dir.mkdir(exist_ok=True)
    for image_id in range(1, num_images + 1):
        file_name = f"{image_id:04d}.png"
        cv2.imwrite(str(image_dir / file_name), rng.integers(0, 255, (IMAGE_H, IMAGE_W, 3), dtype=np.uint8))
        images.append({"id": image_id, "file_name": file_name, "width": IMAGE_W, "height": IMAGE_H})
        people = []
        for _ in range(int(rng.integers(1, 4))):
            w, h = rng.uniform(40, 150), rng.uniform(60, 200)
            x0, y0 = rng.uniform(0, IMAGE_W - w), rng.uniform(0, IMAGE_H - h)
            xy = np.stack([x0 + rng.uniform(0, w, joint_set.num_joints), y0 + rng.uniform(0, h, joint_set.num_joints)], 1)
            visible = np.where(rng.random(joint_set.num_joints) < 0.85, 2, 0)
            visible[:3] = 2  # at least a few labelled joints per person
            keypoints = np.concatenate([xy, visible[:, None]], 1)
            keypoints[visible == 0, :2] = 0
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                "keypoints": [float(v) for v in keypoints.reshape(-1)], "num_keypoints": int((visible > 0).sum()),
                "bbox": [x0, y0, w, h], "area": w * h,
            })
            people.append(np.concatenate([xy, np.ones((joint_set.num_joints, 1))], 1))
        truth[image_id] = Poses(np.array(people, np.float32), np.ones(len(people), np.float32), joint_set.name)
    categories = [{"id": 1, "name": "person", "supercategory": "person", "keypoints": list(joint_set.names),
                   "skeleton": [[a + 1, b + 1] for a, b in joint_set.skeleton]}]
    path = tmp_path / f"person_keypoints_{joint_set.name}.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path, truth


def perturb(truth: dict[int, Poses], rng: np.random.Generator, pixels: float) -> dict[int, Poses]:
    out = {}
    for image_id, poses in truth.items():
        keypoints = poses.keypoints.copy()
        keypoints[..., :2] += rng.normal(0, pixels, keypoints[..., :2].shape)
        out[image_id] = Poses(keypoints, rng.uniform(0.2, 1.0, len(poses)).astype(np.float32), poses.joint_set)
    return out


def pycocotools_stats(annotation_path, results, sigmas) -> np.ndarray:
    """The numbers pycocotools gives when driven directly, as a user of it would."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = COCO(str(annotation_path))
    dt = gt.loadRes(json.loads(json.dumps(results)))
    evaluator = COCOeval(gt, dt, "keypoints")
    evaluator.params.kpt_oks_sigmas = np.asarray(sigmas)
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    return np.asarray(evaluator.stats)


def test_perfect_predictions_score_one(tmp_path, rng):
    path, truth = make_keypoint_set(tmp_path, COCO, rng)
    report = evaluate(truth, path)
    assert report.ap == pytest.approx(1.0) and report.stats["AR"] == pytest.approx(1.0)
    assert list(report.stats) == list(STAT_NAMES) and report.joint_set == "coco"
    assert report.num_images == 4 and report.num_results == sum(len(p) for p in truth.values())


def test_perturbed_predictions_score_lower_and_match_pycocotools(tmp_path, rng, capsys):
    path, truth = make_keypoint_set(tmp_path, COCO, rng)
    predictions = perturb(truth, rng, pixels=4.0)
    report = evaluate(predictions, path)
    assert capsys.readouterr().out == ""  # pycocotools' prints go to the log, not the console
    assert 0.0 <= report.ap < 1.0
    direct = pycocotools_stats(path, poses_to_results(predictions), COCO.sigmas)
    np.testing.assert_allclose([report.stats[n] for n in STAT_NAMES], direct, rtol=0, atol=1e-12)
    # The COCO sigmas are pycocotools' own defaults, so the default evaluator agrees too.
    from pycocotools.cocoeval import Params

    np.testing.assert_allclose(Params(iouType="keypoints").kpt_oks_sigmas, COCO.sigmas)


def test_crowdpose_uses_its_fourteen_sigmas(tmp_path, rng):
    path, truth = make_keypoint_set(tmp_path, CROWDPOSE, rng)
    predictions = perturb(truth, rng, pixels=3.0)
    report = evaluate(predictions, path)
    assert report.joint_set == "crowdpose" and len(CROWDPOSE.sigmas) == 14
    results = poses_to_results(predictions)
    ours = np.array([report.stats[n] for n in STAT_NAMES])
    np.testing.assert_allclose(ours, pycocotools_stats(path, results, CROWDPOSE.sigmas), atol=1e-12)
    # Other sigmas give other numbers, so the match above is not a coincidence.
    assert not np.allclose(ours, pycocotools_stats(path, results, np.full(14, 0.025)))
    assert evaluate(truth, path, joint_set="crowdpose").ap == pytest.approx(1.0)


def test_results_json_is_coco_keypoint_results(tmp_path, rng):
    path, truth = make_keypoint_set(tmp_path, COCO, rng)
    out = write_results(truth, tmp_path / "results.json")
    results = json.loads(out.read_text())
    assert len(results) == sum(len(p) for p in truth.values())
    for result in results:
        assert set(result) == {"image_id", "category_id", "keypoints", "score"}
        assert result["category_id"] == 1 and len(result["keypoints"]) == 51
        assert isinstance(result["image_id"], int) and isinstance(result["score"], float)
    first = truth[results[0]["image_id"]]
    np.testing.assert_allclose(np.reshape(results[0]["keypoints"], (17, 3)), first.keypoints[0], atol=1e-3)
    # The written file evaluates to the same numbers as the poses it came from.
    assert evaluate(results, path).stats == evaluate(truth, path).stats


def test_no_predictions_score_zero(tmp_path, rng):
    path, truth = make_keypoint_set(tmp_path, COCO, rng)
    empty = {image_id: Poses.empty(17) for image_id in truth}
    report = evaluate(empty, path)
    assert report.ap == 0.0 and report.num_results == 0


def test_bad_annotation_files_are_one_line_errors(tmp_path, rng):
    with pytest.raises(PoseStreamError, match="annotations file not found"):
        load_keypoint_annotations(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(PoseStreamError, match="is not a JSON file"):
        load_keypoint_annotations(bad)
    instances = tmp_path / "instances.json"
    instances.write_text(json.dumps({"images": [], "annotations": [], "categories": [{"id": 1, "name": "person"}]}))
    with pytest.raises(PoseStreamError, match="not a COCO keypoints file"):
        load_keypoint_annotations(instances)
    path, truth = make_keypoint_set(tmp_path, COCO, rng)
    with pytest.raises(PoseStreamError, match="17 keypoints per person, but the crowdpose layout has 14"):
        load_keypoint_annotations(path, "crowdpose")
    crowd = {i: Poses(np.zeros((1, 14, 3)), np.ones(1), "crowdpose") for i in truth}
    with pytest.raises(PoseStreamError, match="coco layout needs 51"):
        evaluate(crowd, path)
