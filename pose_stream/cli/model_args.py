"""The model options every subcommand that runs a network shares, defined once: --model, the model file
(--weights / --onnx / --engine), --backend, --device and --input-size (one meaning: pose_stream.input_size)."""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from pose_stream.cli.arguments import device_name, non_negative_float, positive_float
from pose_stream.devices import DEVICE_CHOICES
from pose_stream.engine.registry import BACKEND_CHOICES, BACKENDS
from pose_stream.input_size import InputSize

DEFAULT_MODEL = "w32_512"
INPUT_SIZE_HELP = ("S (the short side; the long side follows the image's aspect ratio) or HxW (exactly that), "
                   "multiples of 32")
FILE_OPTIONS = {"weights": ("--weights", "X.pth"), "onnx": ("--onnx", "X.onnx"), "engine": ("--engine", "X.plan")}


def add_model_arguments(parser: Any, *, model_default: str | None = DEFAULT_MODEL, model_help: str | None = None,
                        files: Sequence[str] = ("weights", "onnx", "engine"), one_file: bool = True,
                        file_help: dict[str, str] | None = None, backend: str | None = "one",
                        device: bool = True, input_size: str | None = None, triton: bool | None = None) -> None:
    """Add the shared options to `parser` (a parser or an argument group).

    files: which model-file options; one_file: they exclude each other. backend: "one" (a name from the
    registry, or auto), "list" (comma-separated names or all; the caller parses it) or None. input_size: the
    default shown in --help (None: no --input-size; "" for the model's own). triton: the --triton-* options
    (default: with a --backend).
    """
    parser.add_argument("--model", default=model_default,
                        help=model_help or f"model config (default: {model_default or 'see below'})")
    target = parser.add_mutually_exclusive_group() if one_file else parser
    for name in files:
        option, metavar = FILE_OPTIONS[name]
        spec = next(s for s in BACKENDS.values() if s.option == option)
        target.add_argument(option, metavar=metavar,
                            help=(file_help or {}).get(name, f"{spec.file_kind} for the {spec.framework} backend"))
    if backend == "one":
        # Checked by the registry (a one-line error naming the choices), not by argparse.
        parser.add_argument("--backend", metavar="{" + ",".join(BACKEND_CHOICES) + "}", default="auto",
                            help="inference backend (default: %(default)s: the one the model file is for; torch "
                                 "without one)")
    elif backend == "list":
        parser.add_argument("--backend", default="all", help=f"comma-separated: {', '.join(BACKENDS)}, or all "
                            "(every one present here; default)")
    if triton or (triton is None and backend is not None):
        parser.add_argument("--triton-url", metavar="HOST:PORT", default="localhost:8001",
                            help="the Triton server's gRPC endpoint, for --backend triton (default: %(default)s)")
        parser.add_argument("--triton-model", metavar="NAME", default="pose",
                            help="the model's name on the Triton server (default: %(default)s)")
        parser.add_argument("--triton-timeout", type=positive_float, default=2.0, metavar="SECONDS",
                            help="timeout of every call to the server (default: %(default)g)")
        parser.add_argument("--triton-shm", action="store_true",
                            help="exchange tensors through shared memory (the server on this host)")
    if device:
        parser.add_argument("--device", type=device_name, default="auto",
                            help=f"{DEVICE_CHOICES}, for the torch backends (default: %(default)s)")
    if input_size is not None:
        shown = f" (default: {input_size})" if input_size else " (default: the model's)"
        parser.add_argument("--input-size", metavar="S|HxW", default=input_size or None,
                            help=f"network input size: {INPUT_SIZE_HELP}{shown}")


def add_grouping_arguments(parser: Any) -> None:
    """--max-reach: the one grouping option not in the reference (GroupingParams.max_reach)."""
    parser.add_argument("--max-reach", type=non_negative_float, metavar="F",
                        help="grouping: a joint joins a person only within F times the network input's longer "
                             "side of one of that person's joints (default: 0.15 with the bundled demo model, off "
                             "otherwise, as in the reference; 0: off)")


def grouping_params(args: argparse.Namespace) -> Any:
    """The GroupingParams the options give: --max-reach, else the demo model's own setting for its weights."""
    from pose_stream.decoding.grouping_types import GroupingParams
    from pose_stream.errors import PoseStreamError
    from pose_stream.models.demo import DEMO_MAX_REACH, is_demo_weights

    reach = getattr(args, "max_reach", None)
    if reach is None:
        reach = DEMO_MAX_REACH if is_demo_weights(getattr(args, "weights", None)) else None
    try:
        return GroupingParams(max_reach=reach or None)
    except ValueError as exc:
        raise PoseStreamError(f"--max-reach: {exc}") from None


def triton_options(args: argparse.Namespace) -> Any:
    """The TritonOptions the --triton-* options give (checked), or None where the subcommand has none."""
    if not hasattr(args, "triton_url"):
        return None
    from pose_stream.engine.registry import TritonOptions

    return TritonOptions(url=args.triton_url, model=args.triton_model, timeout=args.triton_timeout,
                         shared_memory=args.triton_shm)


def parse_input_size(args: argparse.Namespace, option: str = "--input-size") -> InputSize | None:
    """args.input_size as an InputSize (None when it was not given and has no default)."""
    text = getattr(args, "input_size", None)
    return None if text is None else InputSize.parse(text, option)
