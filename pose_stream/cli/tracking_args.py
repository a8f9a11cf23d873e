"""Options of `pose-stream run` for tracking people (`--no-track`, `--tracker`) and smoothing joints (`--smooth`)."""
from __future__ import annotations

import argparse

from pose_stream.cli.arguments import non_negative_float, positive_float
from pose_stream.errors import PoseStreamError
from pose_stream.tracking import TRACKERS, SmoothingConfig, TrackingConfig


def add_tracking_arguments(group: argparse._ArgumentGroup) -> None:
    defaults, smooth = TrackingConfig(), SmoothingConfig()
    group.add_argument("--no-track", dest="track", action="store_false",
                       help="do not track people (default: on videos, streams and the demo each person gets a "
                            "track_id that stays with them while they are in view)")
    group.add_argument("--tracker", choices=TRACKERS, default=defaults.tracker,
                       help="norfair: joints followed by Kalman filters, people matched by keypoint similarity; "
                            "bytetrack: boxes around the joints matched by overlap (default: %(default)s)")
    group.add_argument("--track-lost", type=non_negative_float, default=defaults.keep_lost_seconds, metavar="SECONDS",
                       help="someone not found keeps their track id this long (default: %(default)g)")
    group.add_argument("--smooth", action="store_true",
                       help="steady the joints of tracked people with a One-Euro filter (adds a little lag)")
    group.add_argument("--smooth-min-cutoff", type=positive_float, default=smooth.min_cutoff, metavar="HZ",
                       help="cutoff of still joints: lower is steadier and lags more (default: %(default)g)")
    group.add_argument("--smooth-beta", type=non_negative_float, default=smooth.beta, metavar="B",
                       help="how much faster joints are followed more closely (default: %(default)g)")
    group.add_argument("--smooth-d-cutoff", type=positive_float, default=smooth.d_cutoff, metavar="HZ",
                       help="cutoff of the speed estimate (default: %(default)g)")


def tracking_configs(args: argparse.Namespace) -> tuple[TrackingConfig | None, SmoothingConfig | None]:
    """(tracking, smoothing) as the options say; PoseStreamError for a combination that cannot work."""
    if args.smooth and not args.track:
        raise PoseStreamError("--smooth follows tracked people: it cannot be combined with --no-track")
    tracking = TrackingConfig(tracker=args.tracker, keep_lost_seconds=args.track_lost) if args.track else None
    smoothing = (SmoothingConfig(args.smooth_min_cutoff, args.smooth_beta, args.smooth_d_cutoff)
                 if args.smooth else None)
    return tracking, smoothing
