"""End to end: network outputs rendered from known poses decode back to those poses (within a pixel)."""
from __future__ import annotations

import numpy as np
import pytest

from pose_stream.decoding import Decoder, ScaleOutputs, decode, to_poses
from pose_stream.engine.base import Backend, BackendInfo
from pose_stream.errors import PoseStreamError
from pose_stream.estimator import PoseEstimator
from pose_stream.joints import COCO, CROWDPOSE, JointSet
from pose_stream.synthetic import outputs as synthetic
from pose_stream.decoding.preprocess import make_transform

NOISE = 0.01


def render(people: synthetic.SyntheticPeople, image_size, joint_set: JointSet = COCO, *, flip=True, factor=1.0,
           min_scale=1.0, rng=None, input_size=512):
    """Network outputs (and flipped outputs) for people given in image pixels."""
    rng = rng if rng is not None else np.random.default_rng(0)
    t = make_transform(image_size, input_size, factor, min_scale)
    net = people.to_network(image_size, input_size, factor, min_scale)
    outputs = synthetic.render_outputs(net, t.network_size, joint_set.num_joints, noise=NOISE, rng=rng)
    flipped = synthetic.render_flipped_outputs(net, t.network_size, joint_set, noise=NOISE, rng=rng) if flip else None
    return outputs, flipped


def people_for(rng, count, image_size, joint_set: JointSet = COCO, **kwargs) -> synthetic.SyntheticPeople:
    # "touching the border": the outermost joints 3 network pixels from it (closer, no heatmap can place them)
    gap = 3.0 * make_transform(image_size).pixel_ratio
    return synthetic.random_people(rng, count, image_size, joint_set, border_gap=gap, **kwargs)


def match_people(poses, people, image_size) -> np.ndarray:
    """For each known person, the largest visible-joint error (network pixels) of its nearest decoded person;
    asserts that no decoded person is the nearest of two known people."""
    ratio = make_transform(image_size).pixel_ratio
    errors, chosen = [], []
    for p in range(len(people)):
        d = np.linalg.norm(poses.keypoints[:, :, :2] - people.keypoints[p], axis=2) / ratio
        worst = np.where(people.visible[p], d, 0.0).max(axis=1)
        chosen.append(int(np.argmin(worst)))
        errors.append(worst.min())
    assert len(set(chosen)) == len(chosen), "two known people matched the same decoded person"
    return np.array(errors)


@pytest.mark.parametrize(
    "count, image_size, flip",
    [
        (0, (640, 480), True),
        (1, (640, 480), False),      # one large person
        (1, (1080, 1920), True),     # portrait
        (30, (1920, 1080), True),    # landscape crowd, small people
        (30, (480, 640), False),
        (30, (512, 512), True),
    ],
)
def test_decode_recovers_known_poses(count, image_size, flip):
    rng = np.random.default_rng(count * 7 + image_size[0])
    # Hidden joints only with flip (2-D tags). With 1-D tags on a line, a joint missing from one person and
    # present in another makes the minimum-cost assignment shift a chain of joints to their neighbours in tag
    # order (a chain costs no more than the direct pairing after rounding): the reference does the same.
    people = people_for(rng, count, image_size, hidden_fraction=0.1 if flip else 0.0)
    outputs, flipped = render(people, image_size, flip=flip, rng=rng)
    poses = decode(outputs, flipped, image_size=image_size)
    assert poses.keypoints.shape == (count, 17, 3) and poses.scores.shape == (count,)
    assert poses.joint_set == "coco"
    if count:
        errors = match_people(poses, people, image_size)
        assert errors.max() <= 1.0, errors.max()
        assert np.all(poses.scores > 0.2)
        # refine fills the hidden joints (with whatever the maps offer): every joint has a value
        assert np.all(poses.keypoints[:, :, 2] > 0)


def test_45_people_only_the_strongest_30_per_joint_are_candidates():
    rng = np.random.default_rng(45)
    size = (960, 512)
    people = people_for(rng, 45, size)
    strength = np.where(np.arange(45) < 30, 0.9, 0.5)  # the 30 strong people fill every joint's top 30
    people = synthetic.SyntheticPeople(people.keypoints, people.visible, people.tags, people.flipped_tags, strength)
    poses = decode(*render(people, size, rng=rng), image_size=size)
    assert len(poses) == 30
    errors = match_people(poses, synthetic.SyntheticPeople(
        people.keypoints[:30], people.visible[:30], people.tags[:30], people.flipped_tags[:30], strength[:30]
    ), size)
    assert errors.max() <= 1.0


def test_45_people_with_mixed_strengths_give_more_than_30_people():
    # Each joint's top 30 comes from a different subset of people: people created after the first 30 take no
    # part in matching, so they stay fragments; the output is not capped at 30.
    rng = np.random.default_rng(46)
    size = (512, 512)
    people = people_for(rng, 45, size)
    poses = decode(*render(people, size, rng=rng), image_size=size)
    assert len(poses) > 30
    ratio = make_transform(size).pixel_ratio
    for person in poses.keypoints:
        found = person[:, 2] > 0.1  # joints from the heatmap peaks (matched, or refined onto a peak)
        d = np.linalg.norm(person[None, :, :2] - people.keypoints, axis=2) / ratio
        nearest = np.argmin(np.where(found, d, 0).max(axis=1))
        assert np.all(d[nearest][found] <= 1.0)


def test_multi_scale_decoding():
    rng = np.random.default_rng(3)
    size = (640, 480)
    factors = (2.0, 1.0, 0.5)
    people = people_for(rng, 6, size)
    scales = []
    for factor in factors:
        outputs, flipped = render(people, size, factor=factor, min_scale=min(factors), rng=rng)
        scales.append(ScaleOutputs(outputs, flipped, factor))
    transform = make_transform(size, 512, 1.0, min(factors))
    poses = Decoder("coco").decode(scales, transform)
    assert len(poses) == 6
    assert match_people(poses, people, size).max() <= 1.0


def test_crowdpose_joint_set():
    rng = np.random.default_rng(4)
    size = (800, 600)
    people = people_for(rng, 8, size, CROWDPOSE)
    poses = decode(*render(people, size, CROWDPOSE, rng=rng), image_size=size, dataset="crowdpose")
    assert poses.keypoints.shape == (8, 14, 3) and poses.joint_set == "crowdpose"
    assert match_people(poses, people, size).max() <= 1.0


@pytest.mark.parametrize("count, hidden", [(7, 0.2), (2, 0.05)])  # many and few joints for refine to find
def test_decode_equals_the_reference_pipeline(count, hidden):
    # Numba aggregation + Numba grouping against the two NumPy references (aggregation and grouping).
    from pose_stream.decoding import group_ref
    from pose_stream.decoding.aggregate_ref import ScaleOutputs, aggregate_reference

    rng = np.random.default_rng(12)
    size = (320, 240)
    transform = make_transform(size, 256)
    people = synthetic.random_people(rng, count, size, border_gap=3.0 * transform.pixel_ratio,
                                     hidden_fraction=hidden)
    outputs, flipped = render(people, size, rng=rng, input_size=256)
    poses = decode(outputs, flipped, image_size=size, input_size=256)
    w, h = transform.network_size
    cands, maps = aggregate_reference([ScaleOutputs(tuple(outputs), tuple(flipped), 1.0)], COCO.flip_index, (h, w))
    grouped = group_ref.group(cands, maps, COCO.visit_order)
    expected = to_poses(grouped.keypoints, grouped.scores, transform, COCO)
    assert len(poses) >= count
    np.testing.assert_array_equal(poses.keypoints, expected.keypoints)
    np.testing.assert_array_equal(poses.scores, expected.scores)


def test_decode_rejects_outputs_of_another_size():
    outputs = [np.zeros((1, 34, 128, 128), np.float32), np.zeros((1, 17, 256, 256), np.float32)]
    with pytest.raises(PoseStreamError, match="expected"):
        decode(outputs, image_size=(1920, 1080))  # needs 960x512 outputs
    with pytest.raises(PoseStreamError, match="two network outputs"):
        decode(outputs[:1], image_size=(512, 512))
    with pytest.raises(PoseStreamError, match="flipped"):
        decode(outputs, [outputs[0], np.zeros((1, 17, 8, 8), np.float32)], image_size=(512, 512))


# ------------------------------------------------------------------------------------------ PoseEstimator
class SyntheticBackend(Backend):
    """A 'network' that outputs renderings of known people for whatever input size it is given."""

    def __init__(self, people: synthetic.SyntheticPeople, image_size, factors, flip: bool) -> None:
        self.people, self.image_size, self.flip = people, image_size, flip
        self.sizes = {make_transform(image_size, 512, f, min(factors)).network_size: f for f in factors}
        self.min_scale = min(factors)
        self.num_joints = 17
        self.info = BackendInfo("synthetic", "cpu", "fp32")
        self.calls: list[tuple[int, ...]] = []
        self.closed = False

    @property
    def input_shape(self):
        return (None, 3, None, None)

    def infer(self, batch):
        self.calls.append(batch.shape)
        factor = self.sizes.get((batch.shape[3], batch.shape[2]))
        if factor is None:  # an image of another size: nobody in it
            n, _, h, w = batch.shape
            return [np.zeros((n, 34, h // 4, w // 4), np.float32), np.zeros((n, 17, h // 2, w // 2), np.float32)]
        rows0, rows1 = [], []
        for row in range(batch.shape[0]):
            outputs, flipped = render(self.people, self.image_size, factor=factor, min_scale=self.min_scale,
                                      rng=np.random.default_rng(row % 2))  # the same per image
            out = flipped if (self.flip and row % 2 == 1) else outputs
            rows0.append(out[0])
            rows1.append(out[1])
        return [np.concatenate(rows0), np.concatenate(rows1)]

    def close(self):
        self.closed = True


@pytest.fixture
def estimator_with(monkeypatch):
    def make(people, image_size, scales=(1.0,), flip=True):
        backend = SyntheticBackend(people, image_size, scales, flip)
        monkeypatch.setattr(PoseEstimator, "_create_backend", lambda self: backend)
        return PoseEstimator("w32_512", scales=scales, flip=flip), backend
    return make


def test_estimator_stages_and_predict(estimator_with):
    rng = np.random.default_rng(5)
    size = (640, 480)
    people = people_for(rng, 5, size)
    image = np.zeros((size[1], size[0], 3), np.uint8)
    estimator, backend = estimator_with(people, size)
    with estimator:
        prepared = estimator.prepare(image)
        assert [x.shape for x in prepared.inputs] == [(2, 3, 512, 704)]
        np.testing.assert_array_equal(prepared.inputs[0][1], prepared.inputs[0][0][:, :, ::-1])
        raw = estimator.infer(prepared)
        aggregated = estimator.aggregate(raw)
        poses = estimator.group(aggregated)
        assert len(poses) == 5 and match_people(poses, people, size).max() <= 1.0
        assert estimator.backend_info.name == "synthetic" and estimator.joint_set is COCO
        again = estimator.predict(image)
        np.testing.assert_array_equal(again.keypoints, poses.keypoints)
    assert backend.closed
    with pytest.raises(PoseStreamError, match="closed"):
        estimator.predict(image)


def test_predict_batch_shares_backend_calls(estimator_with):
    rng = np.random.default_rng(6)
    size = (640, 480)
    people = people_for(rng, 4, size)
    image = np.zeros((size[1], size[0], 3), np.uint8)
    other = np.zeros((300, 500, 3), np.uint8)  # another network size (896x512): a call of its own
    estimator, backend = estimator_with(people, size)
    single = estimator.predict(image)
    backend.calls.clear()
    batch = estimator.predict_batch([image, image, other])
    assert sorted(backend.calls) == sorted([(4, 3, 512, 704), (2, 3, 512, 896)])
    assert len(batch[2]) == 0
    for poses in batch[:2]:
        np.testing.assert_array_equal(poses.keypoints, single.keypoints)


def test_estimator_multi_scale(estimator_with):
    rng = np.random.default_rng(8)
    size = (640, 480)
    people = people_for(rng, 4, size)
    estimator, backend = estimator_with(people, size, scales=(1.0, 0.5))
    poses = estimator.predict(np.zeros((size[1], size[0], 3), np.uint8))
    assert len(backend.calls) == 2
    assert len(poses) == 4 and match_people(poses, people, size).max() <= 1.0


def test_estimator_names_a_test_scale_the_network_cannot_take():
    # 256 at scale 0.75 rounds to 192, so scale 1 is 256 x 341 for a 320x256 image: not a multiple of 32.
    estimator = PoseEstimator("small_w16", input_size=256, scales=(1.0, 0.75))
    with pytest.raises(PoseStreamError, match=r"test scale 1 makes a 341x256 network input .* multiples of 32"):
        estimator.prepare(np.zeros((256, 320, 3), np.uint8))
    assert [x.shape for x in PoseEstimator("small_w16", input_size=256, scales=(1.0, 0.5)).prepare(
        np.zeros((256, 320, 3), np.uint8)).inputs] == [(2, 3, 256, 384), (2, 3, 128, 192)]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"model": "nope"}, "unknown model"),
        ({"backend": "magic"}, "unknown backend"),
        ({"backend": "onnxruntime"}, "onnx=PATH"),
        ({"backend": "tensorrt"}, "engine=PATH"),
        ({"scales": (2.0, 0.5)}, "scale 1.0"),
        ({"scales": ()}, "scales"),
    ],
)
def test_estimator_rejects_bad_settings(kwargs, message):
    with pytest.raises(PoseStreamError, match=message):
        PoseEstimator(**kwargs)


def test_estimator_with_the_torch_backend_runs_end_to_end():
    # A tiny random network: no people, but every stage runs on real outputs.
    with PoseEstimator("tiny_w8", input_size=128, device="cpu", eager=True) as estimator:
        assert estimator.backend_info.name == "torch"
        poses = estimator.predict(np.zeros((100, 150, 3), np.uint8))
        assert poses.keypoints.shape[1:] == (17, 3)


def test_public_names_import_lazily():
    import pose_stream

    assert pose_stream.decode is decode and pose_stream.PoseEstimator is PoseEstimator
    assert pose_stream.Transform.__name__ == "Transform" and callable(pose_stream.preprocess)
    assert pose_stream.Poses.empty().keypoints.shape == (0, 17, 3)


def test_decoder_threads_give_the_same_people():
    import numba

    rng = np.random.default_rng(14)
    size = (640, 480)
    people = people_for(rng, 6, size, hidden_fraction=0.2)
    outputs, flipped = render(people, size, rng=rng)
    transform = make_transform(size)
    before = numba.get_num_threads()
    one = Decoder("coco", threads=1).decode([ScaleOutputs(outputs, flipped)], transform)
    two = Decoder("coco", threads=2).decode([ScaleOutputs(outputs, flipped)], transform)
    assert numba.get_num_threads() == before  # restored for the calling thread
    np.testing.assert_array_equal(one.keypoints, two.keypoints)
    np.testing.assert_array_equal(one.scores, two.scores)
    with pytest.raises(PoseStreamError, match="threads"):
        Decoder("coco", threads=0)
