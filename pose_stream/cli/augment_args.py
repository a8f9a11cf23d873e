"""The training-augmentation options, shared by `train` and `recalibrate` (which must see what training saw)."""
from __future__ import annotations

import argparse

from pose_stream.cli.arguments import non_negative_float, positive_float
from pose_stream.train.augment import AugmentConfig

_DEFAULT = AugmentConfig()


def add_augment_arguments(p: argparse.ArgumentParser) -> None:
    """--scale MIN MAX and --rotation, with AugmentConfig's defaults."""
    p.add_argument("--scale", type=positive_float, nargs=2, metavar=("MIN", "MAX"), default=_DEFAULT.scale,
                   help="random zoom range, 1 = longer image side fits the input (default: %s %s)" % _DEFAULT.scale)
    p.add_argument("--rotation", type=non_negative_float, default=_DEFAULT.rotation,
                   help="largest random rotation, degrees (default: %(default)s)")


def augment_from_args(args: argparse.Namespace) -> AugmentConfig:
    """The AugmentConfig of the parsed options (ValueError on a bad range)."""
    return AugmentConfig(scale=tuple(args.scale), rotation=args.rotation)
