"""The one input-size rule: S or HxW, multiples of 32, the same parser and message in every subcommand."""
from __future__ import annotations

import numpy as np
import pytest

from pose_stream.decoding.preprocess import Preprocessor, make_exact_transform, make_transform
from pose_stream.errors import PoseStreamError
from pose_stream.input_size import InputSize, parse_input_sizes, square_side


@pytest.mark.parametrize("text, short, exact, hw", [
    ("512", 512, None, (512, 512)),
    (" 640 ", 640, None, (640, 640)),
    ("512x960", None, (512, 960), (512, 960)),
    ("256X320", None, (256, 320), (256, 320)),
    (384, 384, None, (384, 384)),
])
def test_accepted(text, short, exact, hw):
    size = InputSize.parse(text)
    assert (size.short, size.exact, size.hw) == (short, exact, hw)
    assert InputSize.parse(str(size)) == size


@pytest.mark.parametrize("text, fragment", [
    ("500", "bad --input-size 500: it must be a multiple of 32, at least 64"),
    ("32", "at least 64"),
    ("100x96", "bad --input-size 100x96: height and width must be multiples of 32"),
    ("512x0", "height and width must be multiples of 32"),
    ("big", "bad --input-size 'big': expected S or HEIGHTxWIDTH"),
    ("1x2x3", "expected S or HEIGHTxWIDTH"),
    ("", "expected S or HEIGHTxWIDTH"),
])
def test_refused_with_one_line(text, fragment):
    with pytest.raises(PoseStreamError) as err:
        InputSize.parse(text)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_lists_and_square_subcommands():
    assert [s.hw for s in parse_input_sizes("512x960, 640")] == [(512, 960), (640, 640)]
    assert square_side("320") == 320 and square_side("256x256") == 256 and square_side(None) is None
    with pytest.raises(PoseStreamError, match="training inputs are square"):
        square_side("256x320")


@pytest.mark.parametrize("image_size, network_hw", [((1920, 1080), (512, 960)), ((640, 480), (512, 512)),
                                                   ((480, 640), (512, 960)), ((333, 777), (256, 256))])
def test_an_exact_size_fits_the_whole_image_centred_and_maps_back(image_size, network_hw):
    w, h = image_size
    t = make_exact_transform(image_size, network_hw)
    assert t.network_size == (network_hw[1], network_hw[0])
    corners = t.to_network(np.array([[0.0, 0.0], [w, h]]))
    net_h, net_w = network_hw
    # inside the canvas, up to the half image pixel of the reference's integer centre
    slack = 0.5 * min(net_w / w, net_h / h) + 1e-6
    assert (corners >= -slack).all() and corners[1, 0] <= net_w + slack and corners[1, 1] <= net_h + slack
    # one side fills the canvas (within the reference's integer centre), the other is centred
    span = corners[1] - corners[0]
    assert np.isclose(span[0], net_w, atol=1.0) or np.isclose(span[1], net_h, atol=1.0)
    points = np.array([[10.0, 20.0], [w - 3.0, h / 2]])
    np.testing.assert_allclose(t.to_image(t.to_network(points)), points, atol=1e-6)


def test_an_exact_size_of_the_reference_shape_is_the_reference_resize():
    """For a 16:9 frame, 512x960 exactly is what S = 512 gives: the same canvas and the same pixels."""
    image = np.random.default_rng(0).integers(0, 255, (1080, 1920, 3), dtype=np.uint8)
    exact, t1 = Preprocessor(512, exact=(512, 960))(image)
    short, t2 = Preprocessor(512)(image)
    assert t1.network_size == t2.network_size == make_transform((1920, 1080), 512).network_size
    np.testing.assert_array_equal(exact, short)
