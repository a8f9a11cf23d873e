"""The reference preprocessing on a torch device equals OpenCV's, bit for bit (decoding/preprocess_torch.py)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from pose_stream.decoding.preprocess import Preprocessor, make_exact_transform, make_transform, warp_image
from pose_stream.decoding.preprocess_torch import TorchWarp

DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU")])]


def _cases(count: int, seed: int):
    rng = np.random.default_rng(seed)
    for trial in range(count):
        h, w = (int(v) for v in rng.integers(16, 720, 2))
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        if trial % 3 == 0:
            image = cv2.GaussianBlur(image, (7, 7), 2)  # smooth images as well as noise
        if trial % 2:
            transform = make_transform((w, h), int(rng.choice([64, 128, 256, 512])),
                                       float(rng.choice([0.5, 1.0, 2.0])), float(rng.choice([0.5, 1.0])))
        else:
            transform = make_exact_transform((w, h), (int(rng.choice([64, 128, 256])), int(rng.choice([64, 192, 384]))))
        yield image, transform


@pytest.mark.parametrize("device", DEVICES)
def test_the_warp_equals_opencv_bit_for_bit(device):
    warp = TorchWarp(device)
    for image, transform in _cases(40, seed=1):
        expected = warp_image(image, transform)
        got = warp.warp(torch.from_numpy(image).to(device), transform).cpu().numpy()
        np.testing.assert_array_equal(got, expected, err_msg=f"{image.shape} -> {transform.network_size}")


@pytest.mark.parametrize("device", DEVICES)
def test_the_network_input_equals_preprocess(device):
    warp = TorchWarp(device)
    for image, _ in _cases(8, seed=2):
        preprocessor = Preprocessor(256)
        expected, transform = preprocessor(image)
        got = warp(torch.from_numpy(image).to(device), transform).cpu().numpy()
        np.testing.assert_array_equal(got, expected[0])


def test_a_mutated_rounding_is_caught():
    """The comparison can fail: without the rounding delta of the fixed-point positions, pixels differ."""
    from pose_stream.decoding import preprocess_torch

    image, transform = next(_cases(1, seed=3))
    original = preprocess_torch.source_positions

    def truncating(matrix, size_wh):
        x, y = original(matrix, size_wh)
        return x - 1, y  # one 1/32 pixel off
    warp = TorchWarp("cpu")
    try:
        preprocess_torch.source_positions = truncating
        got = warp.warp(torch.from_numpy(image), transform).numpy()
    finally:
        preprocess_torch.source_positions = original
    assert (got != warp_image(image, transform)).any()
