"""Entry point of `pose-stream`: dispatches to subcommands; `pose-stream --source X` means `run`.

Each subcommand module provides `register(subparsers)` (adds its parser and sets `func`) and keeps
heavy imports (torch, onnxruntime, tensorrt) inside the function that runs it, so `--help` is fast.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable

from pose_stream.cli.arguments import OneLineErrorParser
from pose_stream.cli.signals import STOP_SIGNALS
from pose_stream.errors import PoseStreamError
from pose_stream.redact import MaskingFilter, mask_credentials

# (subcommand, module): the order is the order `--help` lists them.
SUBCOMMANDS: list[tuple[str, str]] = [
    ("run", "pose_stream.cli.run"),
    ("export", "pose_stream.cli.export"),
    ("build-engine", "pose_stream.cli.build_engine"),
    ("triton-repo", "pose_stream.cli.triton_repo"),
    ("bench", "pose_stream.cli.bench"),
    ("eval", "pose_stream.cli.eval"),
    ("synth", "pose_stream.cli.synth"),
    ("train", "pose_stream.cli.train"),
    ("average", "pose_stream.cli.average"),
    ("recalibrate", "pose_stream.cli.recalibrate"),
]
DEFAULT_SUBCOMMAND = "run"

EPILOG = """\
examples:
  pose-stream --source demo                      play the synthetic demo with the bundled model
  pose-stream --source webcam --weights pose_higher_hrnet_w32_512.pth
  pose-stream --source rtsp://user:pass@cam/stream --weights pose_higher_hrnet_w32_512.pth --json poses.jsonl
  pose-stream export --weights pose_higher_hrnet_w32_512.pth --model w32_512 -o w32.onnx
  pose-stream build-engine --onnx w32.onnx --input-size 512x960        TensorRT FP16 engine (GPU)
  pose-stream bench --backend onnxruntime --people 10 --frames 200
  pose-stream eval --images val2017 --annotations person_keypoints_val2017.json --weights w32.pth

Run `pose-stream SUBCOMMAND --help` for the options of each subcommand.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="pose-stream",
        description="Real-time multi-person 2D pose estimation (HigherHRNet) on live video.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    subparsers = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    for _, module in SUBCOMMANDS:
        importlib.import_module(module).register(subparsers)
    return parser


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for handler in logging.getLogger().handlers:
        handler.addFilter(MaskingFilter())


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line as a Namespace (`func` is the subcommand to run; None: help was printed). argparse exits
    by itself (status 2) on bad options."""
    argv = list(sys.argv[1:] if argv is None else argv)
    names = {name for name, _ in SUBCOMMANDS}
    first = next((a for a in argv if not a.startswith("-") or a in ("-h", "--help")), None)
    if DEFAULT_SUBCOMMAND in names and argv and first not in names and first not in ("-h", "--help"):
        argv.insert(0, DEFAULT_SUBCOMMAND)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        args.func = None
    return args


def main(argv: list[str] | None = None) -> int:
    return execute(parse_arguments(argv))


def execute(args: argparse.Namespace) -> int:
    """Run the parsed subcommand; its domain errors become one line and exit status 1."""
    if args.func is None:
        return 2
    _configure_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except PoseStreamError as exc:
        print(f"pose-stream: error: {mask_credentials(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pose-stream: interrupted", file=sys.stderr)
        return 130


class _StartUp:
    """Counts the signals that come while the program is still loading its modules and reading its options."""

    def __init__(self) -> None:
        self.signals = 0

    def __call__(self, count: int) -> None:
        self.signals = count


def console_main(prepare: Callable[[], None] | None = None) -> int:
    """The `pose-stream` program: `main` with Ctrl-C and SIGTERM handled from the first moment to the last, so
    that a signal at any time is a request to stop and never a crash (pose_stream.cli.signals). A signal while it
    starts up (imports, options; `prepare` is a test harness's own set-up) means: do not start, exit 0."""
    STOP_SIGNALS.install()
    try:
        start_up = _StartUp()
        with STOP_SIGNALS.listening(start_up):
            if prepare is not None:
                prepare()
            args = parse_arguments()
        if start_up.signals:
            print("pose-stream: stopped before starting", file=sys.stderr)
            return 0
        return execute(args)
    finally:
        STOP_SIGNALS.finished()


if __name__ == "__main__":
    sys.exit(console_main())
