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


# ---- the eval command: the real PoseEstimator, its network the oracle where a perfect detector is needed ----
ORACLE_INPUT_SIZE = 256


def make_figure_set(tmp_path, rng: np.random.Generator, num_images: int = 3):
    """Images with one or two known people, registered with the oracle network (see oracle_backend)."""
    import oracle_backend

    from pose_stream.kernels.synthetic import random_people

    image_dir = tmp_path / "figures"
    image_dir.mkdir()
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        people = random_people(rng, int(rng.integers(1, 3)), (IMAGE_W, IMAGE_H), COCO, touch_borders=False)
        file_name = f"{image_id:03d}.png"
        cv2.imwrite(str(image_dir / file_name), rng.integers(0, 255, (IMAGE_H, IMAGE_W, 3), dtype=np.uint8))
        oracle_backend.register(cv2.imread(str(image_dir / file_name)), people, ORACLE_INPUT_SIZE)
        images.append({"id": image_id, "file_name": file_name, "width": IMAGE_W, "height": IMAGE_H})
        for person in people.keypoints:
            (x0, y0), (x1, y1) = person.min(0), person.max(0)
            keypoints = np.concatenate([person, np.full((17, 1), 2.0)], 1)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                                "keypoints": keypoints.reshape(-1).tolist(), "num_keypoints": 17,
                                "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                                "area": float((x1 - x0) * (y1 - y0))})
    categories = [{"id": 1, "name": "person", "keypoints": list(COCO.names), "skeleton": []}]
    path = tmp_path / "figures.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return image_dir, path


@pytest.fixture
def tiny_weights(tmp_path):
    import torch

    from pose_stream.models import build_model

    path = tmp_path / "tiny.pth"
    torch.save(build_model("tiny_w8").state_dict(), path)
    return path


def eval_argv(image_dir, annotations, weights, *extra) -> list[str]:
    return ["eval", "--images", str(image_dir), "--annotations", str(annotations), "--weights", str(weights),
            "--model", "tiny_w8", "--input-size", str(ORACLE_INPUT_SIZE), "--device", "cpu", "--no-progress", *extra]


def test_eval_command_finds_rendered_people_and_writes_results(tmp_path, rng, monkeypatch, capsys, tiny_weights):
    import oracle_backend

    from pose_stream.cli.main import main

    oracle_backend.install(monkeypatch)
    image_dir, annotations = make_figure_set(tmp_path, rng)
    results = tmp_path / "results.json"
    assert main(eval_argv(image_dir, annotations, tiny_weights, "--results", str(results))) == 0
    out = capsys.readouterr().out
    assert "| AP @ OKS 0.50:0.95 (AP) | 1.000 |" in out and "coco sigmas" in out
    written = json.loads(results.read_text())
    assert len(written) == len(json.loads(annotations.read_text())["annotations"])
    np.testing.assert_allclose(pycocotools_stats(annotations, written, COCO.sigmas)[0], 1.0)


def test_eval_command_with_a_real_network_reports_what_pycocotools_computes(tmp_path, rng, capsys, tiny_model):
    """No oracle: tiny_w8 with random O(1) weights through PoseEstimator; whatever it finds is scored faithfully."""
    import torch

    from pose_stream.cli.main import main

    weights = tmp_path / "tiny_random.pth"
    torch.save(tiny_model.state_dict(), weights)
    image_dir, annotations = make_figure_set(tmp_path, rng, num_images=2)
    results = tmp_path / "results.json"
    assert main(eval_argv(image_dir, annotations, weights, "--results", str(results))) == 0
    out = capsys.readouterr().out
    written = json.loads(results.read_text())
    assert written, "the O(1) random network finds (spurious) people, so there is something to score"
    assert all(len(r["keypoints"]) == 51 and r["image_id"] in (1, 2) for r in written)
    printed = float(next(l for l in out.splitlines() if "(AP) |" in l).split("|")[2])
    assert printed == pytest.approx(pycocotools_stats(annotations, written, COCO.sigmas)[0], abs=5e-4)


def test_eval_command_compares_two_backends(tmp_path, rng, monkeypatch, capsys, tiny_weights):
    import oracle_backend
    import torch

    from pose_stream.cli.main import main

    oracle_backend.install(monkeypatch)  # its FP16 moves every joint by 5 % of its person's height: AP drops
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # torch-fp16 is offered on CUDA only
    image_dir, annotations = make_figure_set(tmp_path, rng)
    results = tmp_path / "fp32.json"
    argv = eval_argv(image_dir, annotations, tiny_weights, "--backend", "torch", "--compare-backend", "torch-fp16",
                     "--results", str(results))
    argv[argv.index("--device") + 1] = "auto"
    assert main(argv) == 0
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.startswith("AP difference (torch-fp16 (fp16) - torch (fp32)):"))
    fp16 = pycocotools_stats(annotations, json.loads((tmp_path / "fp32.torch-fp16.json").read_text()), COCO.sigmas)[0]
    assert fp16 < 1.0 and float(line.rsplit(":", 1)[1]) == pytest.approx(fp16 - 1.0, abs=1e-4)


@pytest.mark.parametrize("change, message", [
    (dict(images="nowhere"), "images folder not found"),
    (dict(annotations="missing.json"), "annotations file not found"),
    (dict(weights="missing.pth"), "--weights file not found"),
    (dict(annotations="instances.json"), "not a COCO keypoints file"),
    (dict(images="empty"), "images are missing from"),
    (dict(model="crowdpose_w32_512"), "uses the coco layout, but model crowdpose_w32_512 predicts crowdpose"),
    (dict(backend="caffe"), "unknown backend 'caffe'"),
    (dict(backend="onnxruntime"), "backend onnxruntime needs --onnx"),
    (dict(scales="2,x"), "--scales takes comma-separated numbers"),
])
def test_eval_command_errors_are_one_line(tmp_path, rng, monkeypatch, capsys, tiny_weights, change, message):
    from pose_stream.cli.main import main

    annotations, _ = make_keypoint_set(tmp_path, COCO, rng, num_images=1)
    image_dir = tmp_path / "images"
    (tmp_path / "empty").mkdir()
    (tmp_path / "instances.json").write_text(json.dumps({"images": [], "annotations": [], "categories": [{"id": 1}]}))
    options = dict(images=str(image_dir), annotations=str(annotations), weights=str(tiny_weights), model="tiny_w8")
    options.update(change)
    monkeypatch.chdir(tmp_path)
    argv = ["eval"] + [arg for key, value in options.items() for arg in (f"--{key}", value)]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pose-stream: error: ") and message in err[0]


def test_eval_with_the_demo_model_on_a_synthetic_set(tmp_path, capsys):
    """The real chain: PoseEstimator + the shipped demo model on a held-out set of the synthetic world."""
    synthetic = pytest.importorskip("pose_stream.train.synthetic", reason="the synthetic world (demo) is not merged yet")
    demo = pytest.importorskip("pose_stream.train.demo", reason="the demo model (demo) is not merged yet")
    try:
        weights = demo.demo_model_path()
    except PoseStreamError as exc:
        pytest.skip(str(exc))
    from pose_stream.cli.main import main

    annotations = synthetic.write_coco_dataset(tmp_path, num_images=8, seed=12345, progress=False)
    code = main(["eval", "--images", str(tmp_path / synthetic.IMAGE_DIR), "--annotations", str(annotations),
                 "--weights", str(weights), "--model", demo.DEMO_MODEL_NAME, "--input-size", str(demo.DEMO_INPUT_SIZE),
                 "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    ap = float(next(l for l in out.splitlines() if "(AP) |" in l).split("|")[2])
    # Far above a random network (AP ~0), though below the demo issue's 0.80 target (see README, "How good the
    # demo model is"); a regression anywhere in preprocess/decode/eval drops it towards 0.
    assert ap >= 0.2
