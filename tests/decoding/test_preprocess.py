"""Reference resize: network sizes, the affine Transform, the warp and the normalisation."""
from __future__ import annotations

import numpy as np
import pytest

from pose_stream.errors import PoseStreamError
from pose_stream.decoding.preprocess import (
    IMAGENET_MEAN, IMAGENET_STD, Preprocessor, Transform, make_transform, preprocess, warp_image,
)


@pytest.mark.parametrize(
    "image_size, input_size, expected",
    [
        ((1920, 1080), 512, (960, 512)),   # the doc's example
        ((1080, 1920), 512, (512, 960)),   # portrait
        ((640, 480), 512, (704, 512)),     # 512 / 480 * 640 = 682.7 -> next multiple of 64
        ((512, 512), 512, (512, 512)),
        ((1280, 720), 640, (1152, 640)),   # 640 / 720 * 1280 = 1137.8 -> 1152
        ((300, 1000), 512, (512, 1728)),   # 512 / 300 * 1000 = 1706.7 -> 1728
    ],
)
def test_network_size(image_size, input_size, expected):
    t = make_transform(image_size, input_size)
    assert t.network_size == expected
    assert t.center == (int(image_size[0] / 2 + 0.5), int(image_size[1] / 2 + 0.5))


def test_multi_scale_sizes_follow_the_smallest_scale():
    # min_scale 0.5: the size for 0.5 is rounded to 64 first, the others are multiples of it
    sizes = {s: make_transform((1920, 1080), 512, s, 0.5).network_size for s in (2.0, 1.0, 0.5)}
    assert sizes[0.5] == (512, 256)  # 256 / 1080 * 1920 = 455.1 -> 512
    assert sizes[1.0] == (1024, 512)
    assert sizes[2.0] == (2048, 1024)


def test_scale_and_center_as_the_reference_defines_them():
    t = make_transform((1920, 1080), 512)
    assert t.scale == pytest.approx((960 / 512 * 1080 / 200, 1080 / 200))
    p = make_transform((1080, 1920), 512)
    assert p.scale == pytest.approx((1080 / 200, 960 / 512 * 1080 / 200))


@pytest.mark.parametrize("image_size", [(1920, 1080), (1080, 1920), (641, 479), (97, 300)])
def test_transform_round_trip_and_geometry(image_size):
    t = make_transform(image_size, 512)
    rng = np.random.default_rng(0)
    pts = rng.uniform(-50, 2000, (100, 2))
    np.testing.assert_allclose(t.to_network(t.to_image(pts)), pts, atol=1e-6)
    np.testing.assert_allclose(t.to_image(t.to_network(pts)), pts, atol=1e-6)
    # the center goes to the canvas centre; a similarity transform with the ratio scale[0] * 200 / net_w
    w, h = t.network_size
    np.testing.assert_allclose(t.to_network(np.array(t.center, float)), (w / 2, h / 2), atol=1e-4)
    ratio = t.scale[0] * 200 / w
    assert t.pixel_ratio == pytest.approx(ratio, rel=1e-5)
    step = t.to_image(np.array([[10.0, 20.0], [11.0, 20.0], [10.0, 21.0]]))
    np.testing.assert_allclose(step[1] - step[0], (ratio, 0), atol=1e-5)
    np.testing.assert_allclose(step[2] - step[0], (0, ratio), atol=1e-5)


def test_transform_is_frozen_and_validated():
    t = make_transform((640, 480))
    with pytest.raises(Exception):
        t.center = (0, 0)  # type: ignore[misc]
    with pytest.raises(ValueError):
        Transform((0, 0), (1.0, 1.0), (0, 512), (640, 480))


def _bilinear_reference(image: np.ndarray, t: Transform) -> np.ndarray:
    """Direct bilinear sampling: canvas pixel (x, y) reads the image at inverse(x, y), zeros outside."""
    w, h = t.network_size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    src = t.to_image(np.stack([xs, ys], -1))
    sx, sy = src[..., 0], src[..., 1]
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]
    padded = np.zeros((image.shape[0] + 4, image.shape[1] + 4, 3))
    padded[2:-2, 2:-2] = image

    def at(yy, xx):
        yy = np.clip(yy + 2, 0, padded.shape[0] - 1)
        xx = np.clip(xx + 2, 0, padded.shape[1] - 1)
        return padded[yy, xx]

    top = at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx
    bottom = at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx
    return top * (1 - fy) + bottom * fy


@pytest.mark.parametrize("image_size", [(480, 360), (300, 500)])
def test_warp_matches_direct_bilinear_sampling(image_size):
    rng = np.random.default_rng(1)
    w, h = image_size
    # smooth content, so OpenCV's 1/32-pixel fixed-point interpolation stays within a grey level or two
    yy, xx = np.mgrid[0:h, 0:w]
    image = np.stack([127 + 120 * np.sin(xx / 9.0 + c) * np.cos(yy / 13.0 - c) for c in range(3)], -1)
    image = np.clip(image + rng.normal(0, 1, image.shape), 0, 255).astype(np.uint8)
    t = make_transform(image_size, 256)
    warped = warp_image(image, t).astype(np.float64)
    expected = _bilinear_reference(image, t)
    interior = np.zeros(warped.shape[:2], bool)
    src = t.to_image(np.stack(np.mgrid[0:t.network_size[1], 0:t.network_size[0]][::-1], -1).astype(float))
    interior[(src[..., 0] > 1) & (src[..., 0] < w - 2) & (src[..., 1] > 1) & (src[..., 1] < h - 2)] = True
    assert interior.mean() > 0.5
    diff = np.abs(warped - expected)[interior]
    assert diff.max() <= 3, diff.max()
    assert diff.mean() < 0.6
    outside = (src[..., 0] < -2) | (src[..., 0] > w + 1) | (src[..., 1] < -2) | (src[..., 1] > h + 1)
    assert np.all(warped[outside] == 0)  # black border


def test_preprocess_normalises_rgb_like_totensor_and_normalize():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    tensor, t = preprocess(image, input_size=128)
    assert tensor.shape == (1, 3, 128, 192) and tensor.dtype == np.float32
    warped = warp_image(image, t)
    rgb = warped[..., ::-1].astype(np.float32) / np.float32(255)
    expected = (rgb - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
    np.testing.assert_array_equal(tensor[0], expected.transpose(2, 0, 1))


def test_preprocessor_caches_transforms_and_batches():
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, (90, 160, 3), dtype=np.uint8) for _ in range(3)]
    pre = Preprocessor(input_size=64)
    one, t1 = pre(frames[0])
    assert pre.transform_for((160, 90)) is t1
    batch, transforms = pre.batch(frames)
    assert batch.shape == (3, 3, 64, 128) and all(t is t1 for t in transforms)
    for frame, row in zip(frames, batch):
        np.testing.assert_array_equal(row, preprocess(frame, 64)[0][0])
    np.testing.assert_array_equal(one[0], batch[0])
    out = np.empty((3, 64, 128), np.float32)
    pre(frames[1], out=out)
    np.testing.assert_array_equal(out, batch[1])
    with pytest.raises(PoseStreamError, match="one network size"):
        pre.batch([frames[0], np.zeros((200, 90, 3), np.uint8)])


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((10, 10), np.uint8), "shape"),
        (np.zeros((10, 10, 4), np.uint8), "shape"),
        (np.zeros((10, 10, 3), np.float32), "uint8"),
        (np.zeros((0, 10, 3), np.uint8), "empty"),
        ([[0]], "numpy array"),
    ],
)
def test_bad_images_raise_one_line_errors(image, message):
    with pytest.raises(PoseStreamError, match=message):
        preprocess(image)
