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

    from pose_stream.synthetic.outputs import random_people

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
    from pose_stream.models import demo
    from pose_stream.train import synthetic

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
    # Far above a random network (AP ~0), though below the demo model's held-out AP (docs/demo-model.md); a
    # regression anywhere in preprocess/decode/eval drops it towards 0.
    assert ap >= 0.2


def _shift_joints(truth: dict[int, Poses], joints, dx: float, dy: float) -> dict[int, Poses]:
    out = {}
    for image_id, poses in truth.items():
        keypoints = poses.keypoints.copy()
        keypoints[:, joints, 0] += dx
        keypoints[:, joints, 1] += dy
        out[image_id] = Poses(keypoints, poses.scores, poses.joint_set)
    return out


def _shifted_labels(path, joints, dx: float, dy: float) -> list[dict]:
    """COCO results equal to the labels (same float64 values) but with `joints` moved."""
    results = []
    for ann in json.loads(path.read_text())["annotations"]:
        kp = np.array(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
        kp[joints, 0] += dx
        kp[joints, 1] += dy
        kp[:, 2] = 1.0
        results.append({"image_id": ann["image_id"], "category_id": 1, "keypoints": kp.reshape(-1).tolist(),
                        "score": 1.0})
    return results


def _breakdown_ap(rows) -> dict[str, float]:
    return {row.change: row.stats["AP"] for row in rows}


@pytest.mark.parametrize("joint_set, group, wrong_group", [
    (COCO, "head", "elbows and wrists"),
    (COCO, "knees and ankles", "head"),
    (CROWDPOSE, "head", "shoulders and hips"),
])
def test_breakdown_restores_exactly_the_group_that_was_moved(tmp_path, rng, joint_set, group, wrong_group):
    from pose_stream.evaluation.breakdown import ap_breakdown, group_joints

    path, _ = make_keypoint_set(tmp_path, joint_set, rng, num_images=5)
    # Bit-equal labels elsewhere: a person's OKS can sit exactly on a COCO threshold (12 of 15 joints exact
    # and 3 far off is 0.8), where float32 rounding would flip the match.
    ap = _breakdown_ap(ap_breakdown(_shifted_labels(path, group_joints(joint_set, group), 40.0, -30.0), path))
    assert ap["as predicted"] < 0.95
    assert ap[f"{group} exact"] == pytest.approx(1.0)
    assert ap["every matched person exact"] == pytest.approx(1.0)
    assert ap[f"{wrong_group} exact"] == pytest.approx(ap["as predicted"])


def test_breakdown_groups_name_the_right_joints():
    from pose_stream.evaluation.breakdown import group_joints

    assert [COCO.names[j] for j in group_joints(COCO, "head")] == ["nose", "left_eye", "right_eye", "left_ear", "right_ear"]
    assert [CROWDPOSE.names[j] for j in group_joints(CROWDPOSE, "head")] == ["head", "neck"]
    assert len(group_joints(COCO, "elbows and wrists")) == 4 and len(group_joints(CROWDPOSE, "knees and ankles")) == 4


def test_breakdown_hidden_and_size_rows(tmp_path, rng):
    from pose_stream.evaluation.breakdown import ap_breakdown

    path, truth = make_keypoint_set(tmp_path, COCO, rng, num_images=6)
    document = json.loads(path.read_text())
    hidden = {}  # (image id, person index in that image) -> joints marked hidden (v=1)
    seen: dict[int, int] = {}
    for ann in document["annotations"]:
        person = seen.get(ann["image_id"], 0)
        seen[ann["image_id"]] = person + 1
        kp = np.array(ann["keypoints"]).reshape(-1, 3)
        joints = [j for j in (5, 9, 14) if kp[j, 2] > 0]
        kp[joints, 2] = 1
        ann["keypoints"] = kp.reshape(-1).tolist()
        hidden[(ann["image_id"], person)] = joints
    path.write_text(json.dumps(document))
    wrong = {}
    for image_id, poses in truth.items():
        keypoints = poses.keypoints.copy()
        for person in range(len(keypoints)):
            keypoints[person, hidden[(image_id, person)], :2] += (45.0, 40.0)
        wrong[image_id] = Poses(keypoints, poses.scores, poses.joint_set)
    ap = _breakdown_ap(ap_breakdown(wrong, path))
    assert ap["as predicted"] < 0.95 and ap["hidden (v=1) joints exact"] == pytest.approx(1.0)
    # Every person here is 2,400-30,000 px^2: no small ones, so that row changes nothing.
    assert ap["small (< 32^2) people exact"] == pytest.approx(ap["as predicted"])
    assert ap["medium people exact"] > ap["as predicted"]


def test_joint_offsets_measure_a_steady_shift(tmp_path, rng):
    from pose_stream.evaluation.breakdown import joint_offsets

    path, truth = make_keypoint_set(tmp_path, COCO, rng)
    shifted = _shift_joints(truth, list(range(17)), 1.5, -0.5)
    shifted = _shift_joints(shifted, [3], 30.0, 0.0)  # a gross miss: left out of the offsets, not averaged in
    table = joint_offsets(shifted, path)
    labelled = np.array([np.array(a["keypoints"]).reshape(-1, 3)[:, 2] == 2
                         for a in json.loads(path.read_text())["annotations"]])
    steady = [j for j in range(17) if j != 3]
    np.testing.assert_allclose(table[steady, 0], 1.5, atol=2e-3)  # float32 Poses
    np.testing.assert_allclose(table[steady, 1], -0.5, atol=2e-3)  # float32 Poses
    np.testing.assert_allclose(table[steady, 2], np.hypot(1.5, 0.5), atol=2e-3)  # float32 Poses
    np.testing.assert_array_equal(table[steady, 3], labelled[:, steady].sum(0))
    assert table[3, 3] == 0 and np.isnan(table[3, 0])


def test_eval_command_breakdown(tmp_path, rng, monkeypatch, capsys, tiny_weights):
    import oracle_backend

    from pose_stream.cli.main import main

    oracle_backend.install(monkeypatch)
    image_dir, annotations = make_figure_set(tmp_path, rng)
    assert main(eval_argv(image_dir, annotations, tiny_weights, "--breakdown")) == 0
    out = capsys.readouterr().out
    assert "Where the AP goes" in out
    assert "| as predicted | 1.000 | +0.000 |" in out and "| every matched person exact | 1.000 | +0.000 |" in out
    assert "| nose |" in out and "| right_ankle |" in out
