"""Training: targets and losses against hand-computed values, augmentation consistency, a tiny run."""
from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import torch

from pose_stream.joints import COCO
from pose_stream.train.augment import NO_AUGMENTATION, AugmentConfig, random_warp, warp_image, warp_keypoints
from pose_stream.train.coco_dataset import CocoKeypoints
from pose_stream.train.losses import ae_loss, heatmap_loss
from pose_stream.train.targets import gaussian_heatmaps, joint_indices, loss_mask


def _one_joint(x: float, y: float, joint: int = 3, v: float = 2.0) -> np.ndarray:
    kp = np.zeros((1, 17, 3), np.float32)
    kp[0, joint] = (x, y, v)
    return kp


def test_gaussian_peak_at_quarter_resolution():
    # Input x = 42, y = 26 -> centre 42/4 - 0.5 = 10.0, 26/4 - 0.5 = 6.0 on the 1/4 map.
    hm = gaussian_heatmaps(_one_joint(42, 26), size=64, stride=4, sigma=2.0)
    assert hm.shape == (17, 64, 64) and np.count_nonzero(hm[np.arange(17) != 3]) == 0
    assert hm[3, 6, 10] == pytest.approx(1.0)
    assert hm[3, 6, 11] == pytest.approx(math.exp(-1 / 8))
    assert hm[3, 8, 9] == pytest.approx(math.exp(-(4 + 1) / 8))
    assert np.unravel_index(hm[3].argmax(), hm[3].shape) == (6, 10)
    wide = gaussian_heatmaps(_one_joint(42, 26), size=(32, 96), stride=4, sigma=2.0)
    assert wide.shape == (17, 32, 96) and np.array_equal(wide[3, :, :64], hm[3, :32])


def test_gaussian_peak_at_half_resolution_between_pixels():
    # At 1/2 the centre is 42/2 - 0.5 = 20.5, 26/2 - 0.5 = 12.5: four pixels share the maximum.
    hm = gaussian_heatmaps(_one_joint(42, 26), size=128, stride=2, sigma=2.0)[3]
    corner = math.exp(-(0.25 + 0.25) / 8)
    for y, x in ((12, 20), (12, 21), (13, 20), (13, 21)):
        assert hm[y, x] == pytest.approx(corner)
    assert hm.max() == pytest.approx(corner)
    assert hm[12, 23] == pytest.approx(math.exp(-(2.5**2 + 0.25) / 8))


def test_heatmaps_skip_unlabelled_and_outside_joints_and_take_the_max_of_people():
    kp = np.concatenate([_one_joint(42, 26), _one_joint(46, 26), _one_joint(10, 10, v=0), _one_joint(300, 10)])
    hm = gaussian_heatmaps(kp, size=64, stride=4, sigma=2.0)[3]
    assert hm[6, 10] == pytest.approx(1.0) and hm[6, 11] == pytest.approx(1.0)  # max, not sum
    assert hm[2, 2] == 0.0  # the unlabelled joint at (10, 10) left nothing
    assert np.count_nonzero(hm[:, 40:]) == 0  # the joint at x = 300 lies outside the 256 input


def test_loss_mask_zeroes_covered_output_pixels():
    ignore = np.zeros((256, 256), bool)
    ignore[0:16, 0:16] = True  # exactly 4 x 4 pixels at 1/4, 8 x 8 at 1/2
    ignore[100:102, 100:102] = True  # a quarter of one 1/4 pixel: still counts
    m4, m2 = loss_mask(ignore, 64), loss_mask(ignore, 128)
    assert m4.sum() == 64 * 64 - 16 and (m4[:4, :4] == 0).all() and m4[25, 25] == 1
    assert m2.sum() == 128 * 128 - 64 - 1 and m2[50, 50] == 0


def test_joint_indices_for_tags():
    kp = np.concatenate([_one_joint(42, 26), _one_joint(5, 7, joint=0), _one_joint(5, 7, joint=1, v=0)])
    j = joint_indices(kp, size=64, stride=4, max_people=4)
    assert j.shape == (4, 17, 2)
    assert tuple(j[0, 3]) == (6 * 64 + 10, 1)
    assert tuple(j[1, 0]) == (1 * 64 + 1, 1)
    assert j[2].sum() == 0 and j[3].sum() == 0
    assert joint_indices(kp, size=64, stride=4, max_people=1).shape == (1, 17, 2)


def test_heatmap_loss_respects_the_mask():
    pred, target = torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 2)
    pred[0, 0, 0, 0], pred[0, 1, 1, 1] = 2.0, 1.0
    mask = torch.ones(1, 2, 2)
    assert float(heatmap_loss(pred, target, mask)) == pytest.approx((4 + 1) / 8)
    mask[0, 0, 0] = 0
    assert float(heatmap_loss(pred, target, mask)) == pytest.approx(1 / 8)


def test_ae_loss_hand_computed():
    tags = torch.zeros(2, 2, 2, 2)  # N = 2 images, K = 2 joints, 2 x 2 maps
    tags[0, 0] = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    tags[0, 1] = torch.tensor([[0.0, 5.0], [6.0, 7.0]])
    joints = torch.zeros(2, 3, 2, 2, dtype=torch.long)
    # Image 0: person A = joint 0 at index 0 (tag 1) + joint 1 at index 1 (tag 5): mean 3, pull 4.
    #          person B = joint 0 at index 3 (tag 4): mean 4, pull 0. Push = exp(-(3 - 4)^2).
    joints[0, 0, 0] = torch.tensor([0, 1])
    joints[0, 0, 1] = torch.tensor([1, 1])
    joints[0, 1, 0] = torch.tensor([3, 1])
    # Image 1: one person (tags 0, 0): no pairs -> push 0, pull 0.
    joints[1, 0, 0] = torch.tensor([2, 1])
    push, pull = ae_loss(tags, joints)
    assert float(push) == pytest.approx(math.exp(-1.0) / 2)  # batch mean of (e^-1, 0)
    assert float(pull) == pytest.approx((4 + 0) / 2 / 2)  # image 0: mean(4, 0) = 2; batch mean (2, 0)


def test_ae_loss_three_people_push_is_mean_over_pairs():
    tags = torch.tensor([0.0, 1.0, 3.0]).reshape(1, 1, 1, 3)
    joints = torch.tensor([[[[0, 1]], [[1, 1]], [[2, 1]]]])
    push, pull = ae_loss(tags, joints)
    assert float(pull) == 0.0
    assert float(push) == pytest.approx((math.exp(-1) + math.exp(-9) + math.exp(-4)) / 3)


def test_ae_loss_gradient_pulls_together_and_pushes_apart():
    tags = torch.tensor([0.0, 0.2, 0.5], requires_grad=True)
    joints = torch.tensor([[[[0, 1], [1, 1]], [[2, 1], [0, 0]]]])  # person A: tags 0, 0.2; person B: 0.5
    push, pull = ae_loss(tags.reshape(1, 1, 1, 3).expand(1, 2, 1, 3), joints)
    (push + pull).backward()
    assert tags.grad[2] < 0  # B's tag moves up, away from A


@pytest.mark.parametrize("seed", range(4))
def test_warp_moves_keypoints_with_the_image(seed):
    """A bright dot drawn at a keypoint lands where warp_keypoints says, flipped or not."""
    rng = np.random.default_rng(seed)
    image = np.zeros((180, 240, 3), np.uint8)
    kp = np.zeros((1, 17, 3), np.float32)
    kp[0, 5] = (60.0, 50.0, 2)  # left shoulder
    cv2.circle(image, (60, 50), 3, (255, 255, 255), -1)
    warp = random_warp(rng, image.shape[:2], 128, AugmentConfig(flip=0.5))
    out = warp_keypoints(kp, warp, COCO.flip_index)
    warped = warp_image(image, warp, 128)[..., 0].astype(np.float64)
    ys, xs = np.nonzero(warped > 0)
    centre = np.array([(xs * warped[ys, xs]).sum(), (ys * warped[ys, xs]).sum()]) / warped[ys, xs].sum()
    channel = 6 if warp.flipped else 5  # a mirrored left shoulder is a right shoulder
    assert out[0, channel, 2] == 2 and out[0, 11 - channel, 2] == 0
    assert np.allclose(out[0, channel, :2], centre, atol=0.6)


def _tiny_dataset(tmp_path, images=8):
    from pose_stream.synthetic.scenes import SceneConfig
    from pose_stream.train.synthetic import write_coco_dataset

    config = SceneConfig(sizes=((128, 128),), max_people=2, min_height=40, small_fraction=0.0)
    write_coco_dataset(tmp_path / "data", images, seed=3, config=config, progress=False)
    return tmp_path / "data"


def test_dataset_turns_crowds_and_unlabelled_people_into_ignore_regions(tmp_path):
    data = _tiny_dataset(tmp_path, images=1)
    path = data / "annotations" / "person_keypoints.json"
    doc = json.loads(path.read_text())
    image_id = doc["images"][0]["id"]
    doc["annotations"] += [
        {"id": 90, "image_id": image_id, "category_id": 1, "iscrowd": 1, "num_keypoints": 0, "keypoints": [0] * 51,
         "segmentation": {"size": [128, 128], "counts": [0, 10, 128 * 128 - 10]}, "bbox": [0, 0, 1, 10], "area": 10},
        {"id": 91, "image_id": image_id, "category_id": 1, "iscrowd": 0, "num_keypoints": 0, "keypoints": [0] * 51,
         "segmentation": [[100, 100, 110, 100, 110, 110, 100, 110]], "bbox": [100, 100, 10, 10], "area": 100},
    ]
    path.write_text(json.dumps(doc))
    sample = CocoKeypoints(data)[0]
    assert sample.ignore[:10, 0].all() and not sample.ignore[10:, 0].any()
    assert sample.ignore[105, 105] and not sample.ignore[90, 90]
    assert len(sample.keypoints) == sum(1 for a in doc["annotations"] if a["num_keypoints"] > 0)


def test_tiny_model_trains_and_checkpoints_resume(tmp_path):
    from pose_stream.models import build_model, load_checkpoint
    from pose_stream.train.trainer import TrainConfig, state_path, train

    data = _tiny_dataset(tmp_path, images=4)  # one batch: every step sees the same four images
    out = tmp_path / "tiny.pth"
    config = TrainConfig(data=str(data), out=str(out), model="tiny_w8", epochs=20, batch_size=4, lr=3e-3,
                         final_lr_fraction=1.0, augment=NO_AUGMENTATION, threads=1, ae_factor=0.01, save_every=10)
    result = train(config, progress=False)
    losses = [h["total"] for h in result.history]
    heatmap = [h["heatmap4"] + h["heatmap2"] for h in result.history]
    assert result.steps == 20 and len(losses) == 20
    assert np.mean(losses[-3:]) < 0.85 * np.mean(losses[:3])
    assert np.mean(heatmap[-3:]) < 0.85 * np.mean(heatmap[:3])
    model = load_checkpoint(build_model("tiny_w8"), out)  # released key format, strict
    assert set(model.state_dict()) == set(torch.load(out, weights_only=True))
    assert state_path(out).is_file()

    resumed = train(TrainConfig(**{**config.__dict__, "epochs": 21, "resume": True}), progress=False)
    assert resumed.steps == 21 and len(resumed.history) == 21 and resumed.history[:20] == result.history


def test_train_cli_reports_bad_data(tmp_path, capsys):
    from pose_stream.cli.main import main

    assert main(["train", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "x.pth")]) == 1
    assert "dataset folder not found" in capsys.readouterr().err


def test_worker_initializer_leaves_opencv_one_thread():
    import cv2

    from pose_stream.train.workers import one_opencv_thread

    before = cv2.getNumThreads()
    try:
        one_opencv_thread(3)
        assert cv2.getNumThreads() == 1
    finally:
        cv2.setNumThreads(before)
