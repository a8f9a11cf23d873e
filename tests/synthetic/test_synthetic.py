"""The synthetic world: determinism, anatomy, visibility, COCO export, the animated demo source."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pose_stream.errors import PoseStreamError
from pose_stream.joints import COCO
from pose_stream.synthetic.animation import demo_frames
from pose_stream.coco_format import decode_rle, encode_rle
from pose_stream.synthetic.figure import LimbAngles, Placement, PoseAngles, Proportions
from pose_stream.synthetic.render import Appearance, Person, draw_people, visibility
from pose_stream.synthetic.scenes import SceneConfig, synthetic_image
from pose_stream.train.synthetic import write_coco_dataset

NAME = {n: i for i, n in enumerate(COCO.names)}


def _standing(yaw: float = 0.0, x: float = 100.0, height: float = 160.0) -> Person:
    look = Appearance(skin=(150, 190, 230), hair=(30, 30, 30), shirt=(40, 40, 200), pants=(200, 60, 30),
                      shoes=(20, 20, 20), short_sleeves=False)
    pose = PoseAngles(yaw=yaw, left_arm=LimbAngles(abduct=0.3), right_arm=LimbAngles(abduct=0.3))
    return Person(pose, Proportions(), look, Placement(x, 100.0, height))


def test_same_seed_same_image_other_seed_other_image():
    a, b, c = synthetic_image(3, 7), synthetic_image(3, 7), synthetic_image(4, 7)
    assert np.array_equal(a.image, b.image)
    assert len(a.people) == len(b.people)
    for pa, pb in zip(a.people, b.people):
        assert np.array_equal(pa.keypoints, pb.keypoints) and pa.bbox == pb.bbox
    assert a.image.shape != c.image.shape or not np.array_equal(a.image, c.image)


def test_standing_figure_is_anatomically_ordered():
    kp = _standing().keypoints_2d
    y = {n: kp[NAME[n], 1] for n in NAME}
    assert y["left_eye"] < y["nose"] < y["left_shoulder"] < y["left_elbow"] < y["left_wrist"]
    assert y["left_shoulder"] < y["left_hip"] < y["left_knee"] < y["left_ankle"]
    # Facing the camera, the person's left side is on the image's right.
    for joint in ("eye", "ear", "shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
        assert kp[NAME[f"left_{joint}"], 0] > kp[NAME[f"right_{joint}"], 0], joint
    shoulders = kp[NAME["left_shoulder"], 0] - kp[NAME["right_shoulder"], 0]
    hips = kp[NAME["left_hip"], 0] - kp[NAME["right_hip"], 0]
    assert shoulders > hips > 0
    assert 0.85 * 160 < kp[:, 1].max() - kp[:, 1].min() < 160  # ears-to-ankles spans most of the height


def test_keypoints_lie_on_the_drawn_figure():
    person = _standing(yaw=0.4)
    image = np.zeros((240, 200, 3), np.uint8)
    owner = draw_people(image, [person])
    kp = visibility([person], owner)[0]
    labelled = kp[:, 2] > 0
    assert labelled.sum() >= 15
    px = np.round(kp[labelled, :2]).astype(int)
    assert (owner[px[:, 1], px[:, 0]] == 1).all()
    assert (image[px[:, 1], px[:, 0]].sum(axis=1) > 0).all()


def test_side_view_hides_the_far_face_keypoints():
    kp = visibility([_standing(yaw=np.pi / 2)], draw_people(np.zeros((240, 200, 3), np.uint8), [_standing(yaw=np.pi / 2)]))[0]
    # Facing image right, the right side is towards the camera.
    assert kp[NAME["right_eye"], 2] > 0 and kp[NAME["right_ear"], 2] > 0
    assert kp[NAME["left_eye"], 2] == 0 and kp[NAME["left_ear"], 2] == 0


def test_a_person_behind_another_has_hidden_keypoints():
    far, near = _standing(x=100.0), _standing(x=110.0)
    owner = draw_people(np.zeros((240, 220, 3), np.uint8), [far, near])
    kp = visibility([far, near], owner)
    assert (kp[0, :, 2] == 1).sum() >= 5  # mostly covered by the near one
    assert (kp[1, :, 2] == 2).sum() == 17


def test_keypoints_outside_the_image_are_unlabelled():
    person = _standing(x=-30.0)  # the right half stands outside the left border
    owner = draw_people(np.zeros((240, 200, 3), np.uint8), [person])
    kp = visibility([person], owner)[0]
    xy = person.keypoints_2d
    outside = np.round(xy[:, 0]) < 0
    assert outside.any() and (~outside).any()
    assert (kp[outside] == 0).all() and (kp[~outside, 2] > 0).all()


def test_visible_keypoints_lie_on_their_person_in_random_scenes():
    for index in range(6):
        scene = synthetic_image(11, index)
        h, w = scene.image.shape[:2]
        for person in scene.people:
            seen = person.keypoints[:, 2] == 2
            px = np.round(person.keypoints[seen, :2]).astype(int)
            assert person.mask[px[:, 1], px[:, 0]].all()
            x, y, bw, bh = person.bbox
            assert 0 <= x and 0 <= y and x + bw <= w and y + bh <= h and person.area == person.mask.sum()


def test_rle_round_trip_matches_pycocotools():
    mask_utils = pytest.importorskip("pycocotools.mask")
    rng = np.random.default_rng(0)
    mask = rng.random((13, 17)) < 0.3
    mask[0, 0] = True  # a mask starting with foreground needs a leading zero run
    rle = encode_rle(mask)
    assert rle["counts"][0] == 0
    assert np.array_equal(decode_rle(rle), mask)
    compressed = mask_utils.frPyObjects(rle, *rle["size"])
    assert np.array_equal(mask_utils.decode(compressed).astype(bool), mask)


def test_coco_export_loads_in_pycocotools(tmp_path):
    coco_api = pytest.importorskip("pycocotools.coco")
    path = write_coco_dataset(tmp_path, 5, seed=2, progress=False)
    doc = json.loads(path.read_text())
    assert doc["categories"][0]["keypoints"] == list(COCO.names)
    coco = coco_api.COCO(str(path))
    assert len(coco.getImgIds()) == 5 and (tmp_path / "images" / "000004.jpg").is_file()
    anns = coco.loadAnns(coco.getAnnIds())
    assert anns
    for ann in anns:
        kp = np.array(ann["keypoints"]).reshape(17, 3)
        assert ann["num_keypoints"] == int((kp[:, 2] > 0).sum()) > 0
        assert set(np.unique(kp[:, 2])) <= {0, 1, 2}
        assert (kp[kp[:, 2] == 0, :2] == 0).all()
        assert coco.annToMask(ann).sum() == ann["area"]
        img = coco.loadImgs(ann["image_id"])[0]
        x, y, w, h = ann["bbox"]
        assert x >= 0 and y >= 0 and x + w <= img["width"] and y + h <= img["height"]


def test_coco_export_in_several_processes_writes_the_same_files(tmp_path):
    serial = write_coco_dataset(tmp_path / "serial", 7, seed=5, progress=False)
    parallel = write_coco_dataset(tmp_path / "parallel", 7, seed=5, progress=False, workers=2)
    assert parallel.read_text() == serial.read_text()
    for index in range(7):
        name = f"images/{index:06d}.jpg"
        assert (tmp_path / "parallel" / name).read_bytes() == (tmp_path / "serial" / name).read_bytes()
    with pytest.raises(ValueError, match="workers"):
        write_coco_dataset(tmp_path / "none", 1, workers=0)


def test_coco_export_names_an_image_it_cannot_write(tmp_path, monkeypatch):
    import pose_stream.train.synthetic as synthetic

    monkeypatch.setattr(synthetic.cv2, "imwrite", lambda *args, **kwargs: False)
    with pytest.raises(PoseStreamError, match=r"cannot write .*000000\.jpg"):
        write_coco_dataset(tmp_path, 2, progress=False)


def test_scene_config_rejects_nonsense():
    with pytest.raises(ValueError):
        SceneConfig(max_people=0)
    with pytest.raises(ValueError):
        SceneConfig(sizes=((16, 16),))


def test_demo_frames_are_deterministic_and_animated():
    a = list(demo_frames(width=320, height=192, seed=5, num_frames=12))
    b = list(demo_frames(width=320, height=192, seed=5, num_frames=12))
    assert len(a) == 12
    assert a[0].image.shape == (192, 320, 3) and a[0].image.dtype == np.uint8
    assert all(np.array_equal(x.image, y.image) and np.array_equal(x.keypoints, y.keypoints) for x, y in zip(a, b))
    image, keypoints, ids, positions = a[-1]  # a NamedTuple: unpacks like (image, keypoints, ids, positions)
    assert keypoints.ndim == 3 and keypoints.shape[1:] == (17, 3) and len(keypoints) >= 1
    assert ids.shape == (len(keypoints),) and len(set(ids.tolist())) == len(ids)
    assert positions.shape == (len(keypoints), 17, 2)
    labelled = keypoints[:, :, 2] > 0  # labelled joints are where they project; the others keep a position too
    assert np.allclose(positions[labelled], keypoints[labelled][:, :2]) and not labelled.all()
    assert all(np.array_equal(x.ids, y.ids) for x, y in zip(a, b))
    assert not np.array_equal(a[0].image, a[-1].image)  # people move


def test_demo_people_leave_and_new_ones_enter():
    """Over 40 s of video the walkers cross the frame: the set of people on screen changes."""
    counts, seen_left_and_right, on_screen = [], set(), []
    for frame in demo_frames(width=160, height=96, fps=5, seed=1, num_frames=200):
        counts.append(len(frame.keypoints))
        on_screen.append({int(i) for i, person in zip(frame.ids, frame.keypoints) if (person[:, 2] > 0).any()})
        for person in frame.keypoints:
            labelled = person[person[:, 2] > 0]
            if len(labelled):
                seen_left_and_right.add(bool(labelled[:, 0].mean() < 80))
    assert min(counts) >= 1
    assert on_screen[0] - on_screen[-1] and on_screen[-1] - on_screen[0]  # some left, others came in
    assert seen_left_and_right == {True, False}


def test_synth_cli_writes_a_dataset(tmp_path):
    from pose_stream.cli.main import main

    assert main(["synth", "--out", str(tmp_path), "--images", "2", "--seed", "9"]) == 0
    assert len(json.loads((tmp_path / "annotations" / "person_keypoints.json").read_text())["images"]) == 2
    assert main(["synth", "--out", str(tmp_path), "--images", "0"]) == 1


def test_demo_people_keep_their_identity_from_frame_to_frame():
    from pose_stream.synthetic.animation import demo_frames as animated

    frames = list(animated(num_frames=150, seed=0))
    assert all(len(f.ids) == len(f.keypoints) and len(set(f.ids.tolist())) == len(f.ids) for f in frames)
    seen = set()
    for before, after in zip(frames, frames[1:]):
        for i, person in enumerate(after.ids):
            if person in before.ids:
                j = int(np.flatnonzero(before.ids == person)[0])
                both = (before.keypoints[j, :, 2] > 0) & (after.keypoints[i, :, 2] > 0)
                if both.any():  # one person moves a little between frames, never jumps to another
                    step = np.linalg.norm(after.keypoints[i, both, :2] - before.keypoints[j, both, :2], axis=1)
                    assert np.median(step) < 15, (person, np.median(step))
        seen.update(after.ids.tolist())
    assert len(seen) > len(frames[0].ids)  # people came in during the clip


def test_sensor_noise_is_gaussian_at_its_sigma_and_changes_from_frame_to_frame():
    from pose_stream.synthetic.background import SensorNoise

    grey = np.full((90, 160, 3), 128, np.uint8)
    noise = SensorNoise(np.random.default_rng(3), 160, 90, sigma=2.0)
    frames = [noise.add(grey).astype(np.float64) - 128 for _ in range(6)]
    for frame in frames:
        assert abs(frame.mean()) < 0.1 and 1.85 < frame.std() < 2.15
    assert all(not np.array_equal(a, b) for a, b in zip(frames, frames[1:]))
    bright = noise.add(np.full((90, 160, 3), 255, np.uint8))
    assert bright.dtype == np.uint8 and bright.max() == 255 and bright.min() < 255  # clipped, not wrapped
    again = SensorNoise(np.random.default_rng(3), 160, 90, sigma=2.0)
    assert np.array_equal(again.add(grey), frames[0].astype(np.int16) + 128)  # the same stream, the same noise
