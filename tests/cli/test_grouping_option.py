"""--max-reach: the demo model's grouping setting by default for its weights, the reference's (off) otherwise."""
import argparse

import pytest

from pose_stream.cli.model_args import grouping_params
from pose_stream.errors import PoseStreamError
from pose_stream.models.demo import DEMO_MAX_REACH, demo_model_path


@pytest.mark.parametrize(
    "weights, max_reach, expected",
    [
        ("demo", None, DEMO_MAX_REACH),  # the demo model's card turns it on
        ("demo", 0.0, None),  # 0: off
        ("demo", 0.3, 0.3),
        ("other.pth", None, None),  # a released checkpoint: the reference's grouping
        ("other.pth", 0.2, 0.2),
        (None, None, None),  # ONNX / TensorRT / Triton: no weights file to recognise
    ],
)
def test_grouping_params_from_the_options(weights, max_reach, expected):
    path = str(demo_model_path()) if weights == "demo" else weights
    assert grouping_params(argparse.Namespace(weights=path, max_reach=max_reach)).max_reach == expected


def test_an_out_of_range_reach_is_one_line():
    with pytest.raises(PoseStreamError) as err:
        grouping_params(argparse.Namespace(weights=None, max_reach=3.0))
    assert "--max-reach" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("subcommand", ["run", "eval"])
def test_the_option_is_parsed_and_a_negative_value_refused(subcommand, capsys):
    from pose_stream.cli.main import main

    args = ["--source", "demo"] if subcommand == "run" else ["--images", "x", "--annotations", "y.json"]
    with pytest.raises(SystemExit) as exit_:
        main([subcommand, *args, "--max-reach", "-1"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "--max-reach" in err and len(err.splitlines()) == 1, err
